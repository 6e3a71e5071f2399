//! Generic image searches (`ImageRepo::search`): the image column map for
//! [`crate::query`], the caller's scope as in image lists, one SELECT for the page and
//! one COUNT when a total is asked for.
//!
//! Name prefixes on SQLite: `name LIKE 'p%'` cannot use an index there (SQLite's `LIKE`
//! ignores ASCII case, the `images_name` index does not), so such a search walked the
//! creation-order index and tested every row until the page was full: 8,000 rows and
//! 5–18 ms for `zsb-1%` among 10,000 images whose matches are the oldest. When the range
//! of `lower(name)` that the prefix allows (index `images_name_lower`, migration 0011)
//! holds few rows, it is added as an extra condition and SQLite answers from that
//! range instead (the `LIKE` still decides what matches). When it holds many, the
//! range would be a full scan and sort of most images (17 ms at 10,000) where the
//! creation-order walk stops after a page (0.3 ms), so it is left out; a probe that
//! counts at most [`PREFIX_RANGE_ROWS`] + 1 index entries decides. PostgreSQL needs
//! none of this: its `LIKE` is case-sensitive and its planner turns a constant prefix
//! into a range over `images_name` itself (C collation).

use ims_domain::Result;
use ims_domain::image::Image;
use ims_domain::listing::{ListQuery, ListScope};
use ims_domain::query::{Found, Op, Query, Value, like_prefix};

use crate::Catalog;
use crate::codec::to_u64;
use crate::images::IMAGE_COLUMNS;
use crate::query::{ColumnMap, Kind, prefix_upper_bound};
use crate::sql::{Arg, Sql, bind, col};

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

/// The most index entries a name-prefix range may hold for a SQLite search to go
/// through it. Through the range a search costs about 2 µs per entry (the row, its
/// conditions, the sort), so at most ~4 ms; past this the creation-order walk is kept.
pub(crate) const PREFIX_RANGE_ROWS: u64 = 2_000;

/// A range of `lower(i.name)`: from `lo` (inclusive) to `hi` (exclusive, none = open).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameRange {
    lo: String,
    hi: Option<String>,
}

impl NameRange {
    /// The range of `lower(name)` that every name matching the SQLite `LIKE` pattern
    /// `pattern` lies in; `None` when the pattern starts with a wildcard. SQLite's
    /// `LIKE` and `lower()` both fold ASCII letters only, so a name matches only if its
    /// `lower()` starts with the prefix's ASCII lower case.
    fn of_like(pattern: &str) -> Option<NameRange> {
        let lo = like_prefix(pattern).to_ascii_lowercase();
        if lo.is_empty() {
            return None;
        }
        let hi = prefix_upper_bound(&lo);
        Some(NameRange { lo, hi })
    }

    /// Appends `lower(i.name) >= lo [AND lower(i.name) < hi]` to `sql`'s text.
    fn push(&self, sql: &mut Sql, prefix: &str) {
        let lo = sql.arg(Arg::Text(self.lo.clone()));
        sql.text.push_str(&format!("{prefix}lower(i.name) >= {lo}"));
        if let Some(hi) = &self.hi {
            let hi = sql.arg(Arg::Text(hi.clone()));
            sql.text.push_str(&format!(" AND lower(i.name) < {hi}"));
        }
    }
}

/// SQLite: the name-prefix ranges worth searching through (see the module docs), one
/// bounded probe each; none on PostgreSQL.
async fn name_ranges(catalog: &Catalog, q: &Query) -> Result<Vec<NameRange>> {
    if catalog.backend != crate::Backend::Sqlite {
        return Ok(Vec::new());
    }
    let mut narrow = Vec::new();
    for c in &q.conditions {
        let (true, Op::Like, [Value::Text(pattern)]) =
            (c.field == "name", c.op, c.values.as_slice())
        else {
            continue;
        };
        let Some(range) = NameRange::of_like(pattern) else {
            continue;
        };
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM (SELECT 1 FROM images i WHERE ");
        range.push(&mut sql, "");
        sql.text
            .push_str(&format!(" LIMIT {}) t", PREFIX_RANGE_ROWS + 1));
        let row = bind(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.args)
            .fetch_one(&catalog.pool)
            .await
            .map_err(crate::db_err)?;
        if to_u64(col::<i64>(&row, "n")?) <= PREFIX_RANGE_ROWS {
            narrow.push(range);
        }
    }
    Ok(narrow)
}

/// The WHERE part shared by the page and the count: not dead, in scope, conditions,
/// and the name ranges that let SQLite use an index for them.
fn filtered(
    catalog: &Catalog,
    select: &str,
    q: &Query,
    scope: &ListScope,
    ranges: &[NameRange],
) -> Result<Sql> {
    let mut sql = Sql::new(format!(
        "SELECT {select} FROM images i WHERE i.status NOT IN ('deleted', 'killed')"
    ));
    crate::listing::scope_sql(&mut sql, catalog.backend, &ListQuery::default(), scope);
    map(catalog).conditions(&mut sql, &q.conditions)?;
    for r in ranges {
        r.push(&mut sql, " AND ");
    }
    Ok(sql)
}

/// Orders and pages a filtered page statement.
fn order_and_page(catalog: &Catalog, sql: &mut Sql, q: &Query) -> Result<()> {
    if catalog.backend == crate::Backend::Sqlite
        && q.sort.as_ref().is_none_or(|s| s.field == "created_at")
    {
        // As in image lists: a no-op range on the sort index's leading column makes
        // SQLite walk that index and stop after the page instead of sorting every match.
        sql.text.push_str(" AND i.created_at > ''");
    }
    map(catalog).order_and_page(sql, q)
}

pub(crate) async fn search(
    catalog: &Catalog,
    q: &Query,
    scope: &ListScope,
) -> Result<Found<Image>> {
    // Fields are checked before any probe runs: an unknown one is invalid input.
    map(catalog).conditions(&mut Sql::new(""), &q.conditions)?;
    let ranges = name_ranges(catalog, q).await?;
    let filtered = |select: &str| filtered(catalog, select, q, scope, &ranges);
    crate::query::search(catalog, q, IMAGE_COLUMNS, filtered, async |mut sql| {
        order_and_page(catalog, &mut sql, q)?;
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.args)
            .fetch_all(&catalog.pool)
            .await
            .map_err(crate::db_err)?;
        catalog.images_from_rows(&rows).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_domain::query::{Condition, Page, Sort, SortDir};

    /// The plan SQLite (the bundled version) chooses for the benchmark's page statement.
    async fn plan(catalog: &Catalog, q: &Query, ranges: &[NameRange]) -> String {
        let mut sql = filtered(catalog, IMAGE_COLUMNS, q, &ListScope::Everything, ranges).unwrap();
        order_and_page(catalog, &mut sql, q).unwrap();
        let rows = bind(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {}",
                sql.text
            ))),
            sql.args,
        )
        .fetch_all(&catalog.pool)
        .await
        .unwrap();
        rows.iter()
            .map(|r| col::<String>(r, "detail").unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[tokio::test]
    async fn sqlite_searches_a_narrow_name_prefix_through_its_range_and_others_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::connect(&crate::sqlite_url(&dir.path().join("c.sqlite")))
            .await
            .unwrap();
        let text =
            |f: &str, op, v: &str| Condition::new(f, op, vec![Value::Text(v.into())]).unwrap();
        let q = Query {
            conditions: vec![
                text("name", Op::Like, "zsb-1%"),
                text("disk_format", Op::Eq, "qcow2"),
                text("properties.virtual_env_type", Op::Eq, "DataImage"),
            ],
            sort: Some(Sort {
                field: "created_at".into(),
                dir: SortDir::Desc,
            }),
            page: Page {
                start: 0,
                limit: 25,
            },
            count_only: false,
            with_total: false,
        };
        // An empty catalog: the probe finds the range narrow.
        let ranges = name_ranges(&catalog, &q).await.unwrap();
        assert_eq!(ranges, vec![NameRange::of_like("zsb-1%").unwrap()]);
        let through_range = plan(&catalog, &q, &ranges).await;
        assert!(
            through_range.contains("USING INDEX images_name_lower"),
            "{through_range}"
        );
        let by_age = plan(&catalog, &q, &[]).await;
        assert!(by_age.contains("USING INDEX images_created"), "{by_age}");
        // One name more than PREFIX_RANGE_ROWS in the range (any case): too broad.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {}) \
             INSERT INTO images (id, name, status, visibility, created_at, updated_at) \
             SELECT 'id-' || k, CASE k % 2 WHEN 0 THEN 'ZSB-1' ELSE 'zsb-1' END || k, \
             'queued', 'private', '2026-01-01', '2026-01-01' FROM n",
            PREFIX_RANGE_ROWS
        )))
        .execute(&catalog.pool)
        .await
        .unwrap();
        assert_eq!(name_ranges(&catalog, &q).await.unwrap(), ranges);
        sqlx::query("INSERT INTO images (id, name, status, visibility, created_at, updated_at) VALUES ('last', 'zSb-1x', 'queued', 'private', '2026-01-01', '2026-01-01')")
            .execute(&catalog.pool)
            .await
            .unwrap();
        assert_eq!(name_ranges(&catalog, &q).await.unwrap(), vec![]);
    }

    #[test]
    fn name_ranges_fold_ascii_only_and_stop_at_wildcards() {
        let r = NameRange::of_like("ZsB-1%").unwrap();
        assert_eq!((r.lo.as_str(), r.hi.as_deref()), ("zsb-1", Some("zsb-2")));
        let r = NameRange::of_like("Ä_x%").unwrap();
        assert_eq!((r.lo.as_str(), r.hi.as_deref()), ("Ä", Some("Å")));
        assert_eq!(NameRange::of_like("%zsb"), None);
        assert_eq!(NameRange::of_like("_"), None);
        let mut sql = Sql::new("x");
        NameRange::of_like("ab%").unwrap().push(&mut sql, " AND ");
        assert_eq!(sql.text, "x AND lower(i.name) >= $1 AND lower(i.name) < $2");
    }
}
