//! Generic volume searches (`VolumeRepo::search`): the volume column map for
//! [`crate::query`], one SELECT for the page and one COUNT when a total is asked for.

use ims_domain::Result;
use ims_domain::query::{Found, Query};
use ims_domain::volume::Volume;

use crate::Catalog;
use crate::query::{ColumnMap, Kind};
use crate::sql::{Arg, Run, Sql, bind};

/// Volume fields (`ims_domain::volume::search::FIELDS`) to columns.
const VOLUMES: ColumnMap = ColumnMap {
    columns: &[
        ("id", "id", Kind::Text),
        ("name", "name", Kind::Text),
        ("description", "description", Kind::Text),
        ("status", "status", Kind::Text),
        ("size", "size", Kind::Int),
        ("format", "format", Kind::Text),
        ("source_image", "source_image", Kind::Text),
        ("created_at", "created_at", Kind::Time),
        ("updated_at", "updated_at", Kind::Time),
    ],
    property: None,
    key: "id",
    default_sort: "created_at",
};

/// The WHERE part shared by the page and the count: not expunged, in scope, conditions.
fn filtered(select: &str, project: Option<&str>, q: &Query) -> Result<Sql> {
    let mut sql = Sql::new(format!(
        "SELECT {select} FROM volumes WHERE status <> 'expunged'"
    ));
    if let Some(project) = project {
        let p = sql.arg(Arg::Text(project.to_string()));
        sql.text.push_str(&format!(" AND project_id = {p}"));
    }
    VOLUMES.conditions(&mut sql, &q.conditions)?;
    Ok(sql)
}

pub(crate) async fn search(
    catalog: &Catalog,
    project: Option<&str>,
    q: &Query,
) -> Result<Found<Volume>> {
    let filtered = |select: &str| filtered(select, project, q);
    crate::query::search(
        catalog,
        q,
        crate::volumes::COLUMNS,
        filtered,
        async |mut sql| {
            VOLUMES.order_and_page(&mut sql, q)?;
            bind(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.args)
                .fetch_each(&catalog.pool, crate::volumes::from_row)
                .await
        },
    )
    .await
}
