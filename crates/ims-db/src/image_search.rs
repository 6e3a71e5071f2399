//! Generic image searches (`ImageRepo::search`): the image column map for
//! [`crate::query`], the caller's scope as in image lists, one SELECT for the page and
//! one COUNT when a total is asked for.

use ims_domain::Result;
use ims_domain::image::Image;
use ims_domain::listing::{ListQuery, ListScope};
use ims_domain::query::{Found, Query};

use crate::Catalog;
use crate::images::IMAGE_COLUMNS;
use crate::query::{ColumnMap, Kind};
use crate::sql::{Sql, bind};

/// Image fields (`ims_domain::image::search::FIELDS`) to columns, `status` being
/// compared as `status` (the column or an expression over it, see [`IMAGES_SQLITE`]).
const fn image_columns(status: &'static str) -> [(&'static str, &'static str, Kind); 15] {
    [
        ("id", "i.id", Kind::Text),
        ("name", "i.name", Kind::Text),
        ("status", status, Kind::Text),
        ("visibility", "i.visibility", Kind::Text),
        ("owner", "i.owner", Kind::Text),
        ("disk_format", "i.disk_format", Kind::Text),
        ("container_format", "i.container_format", Kind::Text),
        ("size", "i.size", Kind::Int),
        ("virtual_size", "i.virtual_size", Kind::Int),
        ("checksum", "i.checksum", Kind::Text),
        ("min_disk", "i.min_disk", Kind::Int),
        ("min_ram", "i.min_ram", Kind::Int),
        ("protected", "i.protected", Kind::Flag),
        ("created_at", "i.created_at", Kind::Time),
        ("updated_at", "i.updated_at", Kind::Time),
    ]
}

/// The image column map with the plain `status` column (PostgreSQL).
const IMAGES: ColumnMap = ColumnMap {
    columns: &image_columns("i.status"),
    property: Some(property),
    key: "i.id",
    default_sort: "i.created_at",
};

/// The same on SQLite, except that `status` is compared as an expression: with the
/// column itself SQLite answers a status condition through the status index and sorts
/// every match (15 ms at 10,000 images), where walking the creation-order index and
/// stopping after the page is what a page of a broad status needs (3 ms). PostgreSQL
/// plans both well with the plain column.
const IMAGES_SQLITE: ColumnMap = ColumnMap {
    columns: &image_columns("(i.status || '')"),
    ..IMAGES
};

fn property(name: &str) -> String {
    format!("(SELECT p.value FROM image_properties p WHERE p.image_id = i.id AND p.name = {name})")
}

fn map(catalog: &Catalog) -> &'static ColumnMap {
    match catalog.backend {
        crate::Backend::Sqlite => &IMAGES_SQLITE,
        crate::Backend::Postgres => &IMAGES,
    }
}

/// The WHERE part shared by the page and the count: not dead, in scope, conditions.
fn filtered(catalog: &Catalog, select: &str, q: &Query, scope: &ListScope) -> Result<Sql> {
    let mut sql = Sql::new(format!(
        "SELECT {select} FROM images i WHERE i.status NOT IN ('deleted', 'killed')"
    ));
    crate::listing::scope_sql(&mut sql, catalog.backend, &ListQuery::default(), scope);
    map(catalog).conditions(&mut sql, &q.conditions)?;
    Ok(sql)
}

pub(crate) async fn search(
    catalog: &Catalog,
    q: &Query,
    scope: &ListScope,
) -> Result<Found<Image>> {
    let filtered = |select: &str| filtered(catalog, select, q, scope);
    crate::query::search(catalog, q, IMAGE_COLUMNS, filtered, async |mut sql| {
        if catalog.backend == crate::Backend::Sqlite
            && q.sort.as_ref().is_none_or(|s| s.field == "created_at")
        {
            // As in image lists: a no-op range on the sort index's leading column makes
            // SQLite walk that index and stop after the page instead of sorting every match.
            sql.text.push_str(" AND i.created_at > ''");
        }
        map(catalog).order_and_page(&mut sql, q)?;
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.args)
            .fetch_all(&catalog.pool)
            .await
            .map_err(crate::db_err)?;
        catalog.images_from_rows(&rows).await
    })
    .await
}
