//! Generic searches ([`ims_domain::query`]) as SQL: each aggregate gives a column map
//! (domain field name → SQL expression and its type), and this module turns conditions,
//! sort and page into a `WHERE` clause, an `ORDER BY` and a literal `LIMIT`/`OFFSET`.
//! Every value is a bound parameter; field names only select expressions from the map.
//! Portable SQL only (`LIKE`, `IN`, `IS NULL`, `COUNT(*)`).

use ims_domain::query::{Condition, Found, Op, Query, SortDir, Value};
use ims_domain::{Error, Result};

use crate::Catalog;
use crate::codec::{to_u64, ts};
use crate::sql::{Arg, Sql, bind, col};

/// How a column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text.
    Text,
    /// BIGINT.
    Int,
    /// Fixed-width UTC text (`codec::ts`).
    Time,
    /// 0/1.
    Flag,
}

/// One aggregate's searchable columns.
pub(crate) struct ColumnMap {
    /// Domain field name, SQL expression, kind.
    pub(crate) columns: &'static [(&'static str, &'static str, Kind)],
    /// For `properties.<name>` fields: the SQL expression of a property's value given
    /// the placeholder of its (bound) name.
    pub(crate) property: Option<fn(&str) -> String>,
    /// The tie-breaking unique key expression (last sort key).
    pub(crate) key: &'static str,
    /// The default sort expression (before the key).
    pub(crate) default_sort: &'static str,
}

impl ColumnMap {
    fn column(&self, sql: &mut Sql, field: &str) -> Result<(String, Kind)> {
        if let Some((_, expr, kind)) = self.columns.iter().find(|(f, _, _)| *f == field) {
            return Ok(((*expr).to_string(), *kind));
        }
        if let (Some(prop), Some(name)) = (self.property, field.strip_prefix("properties.")) {
            let p = sql.arg(Arg::Text(name.to_string()));
            return Ok((prop(&p), Kind::Text));
        }
        Err(Error::invalid(format!("unknown query field {field}")))
    }

    /// Appends ` AND <condition>` for each condition to `sql`.
    pub(crate) fn conditions(&self, sql: &mut Sql, conditions: &[Condition]) -> Result<()> {
        for c in conditions {
            let cond = self.condition(sql, c)?;
            sql.text.push_str(&format!(" AND ({cond})"));
        }
        Ok(())
    }

    fn condition(&self, sql: &mut Sql, c: &Condition) -> Result<String> {
        let (expr, kind) = self.column(sql, &c.field)?;
        let mut values = Vec::with_capacity(c.values.len());
        for v in &c.values {
            let a = arg(kind, &c.field, v)?;
            values.push(sql.arg(a));
        }
        let one = || values.first().cloned().unwrap_or_default();
        Ok(match c.op {
            Op::Eq => format!("{expr} = {}", one()),
            Op::Ne => format!("{expr} <> {}", one()),
            Op::Gt => format!("{expr} > {}", one()),
            Op::Lt => format!("{expr} < {}", one()),
            Op::Ge => format!("{expr} >= {}", one()),
            Op::Le => format!("{expr} <= {}", one()),
            Op::In => format!("{expr} IN ({})", values.join(", ")),
            Op::NotIn => format!("{expr} NOT IN ({})", values.join(", ")),
            Op::Like => format!("{expr} LIKE {}", one()),
            Op::NotLike => format!("{expr} NOT LIKE {}", one()),
            Op::IsNull => format!("{expr} IS NULL"),
            Op::NotNull => format!("{expr} IS NOT NULL"),
        })
    }

    /// ` ORDER BY … LIMIT n OFFSET m` for `q` (the numbers are validated integers,
    /// written as literals so that the planner can stop early on an index walk).
    pub(crate) fn order_and_page(&self, sql: &mut Sql, q: &Query) -> Result<()> {
        let (first, dir) = match &q.sort {
            Some(s) => (self.column(sql, &s.field)?.0, s.dir),
            None => (self.default_sort.to_string(), SortDir::Asc),
        };
        let d = if dir == SortDir::Asc { "ASC" } else { "DESC" };
        sql.text.push_str(&format!(
            " ORDER BY {first} {d}, {} {d} LIMIT {} OFFSET {}",
            self.key, q.page.limit, q.page.start
        ));
        Ok(())
    }
}

/// Runs one aggregate's search: a `COUNT(*)` when `q` asks for a total, then, unless
/// only counting, the page. `filtered(select)` builds `SELECT <select> FROM … WHERE …`
/// with the caller's scope and `q`'s conditions, so the count and the page match the
/// same rows; `page` orders, pages, runs and decodes the page's statement.
pub(crate) async fn search<T>(
    catalog: &Catalog,
    q: &Query,
    columns: &str,
    filtered: impl Fn(&str) -> Result<Sql>,
    page: impl AsyncFnOnce(Sql) -> Result<Vec<T>>,
) -> Result<Found<T>> {
    let total = if q.count_only || q.with_total {
        let sql = filtered("COUNT(*) AS n")?;
        let row = bind(sqlx::query(sqlx::AssertSqlSafe(sql.text)), sql.args)
            .fetch_one(&catalog.pool)
            .await
            .map_err(crate::db_err)?;
        Some(to_u64(col::<i64>(&row, "n")?))
    } else {
        None
    };
    if q.count_only {
        return Ok(Found {
            items: Vec::new(),
            total,
        });
    }
    let items = page(filtered(columns)?).await?;
    Ok(Found { items, total })
}

/// The least string above every string that starts with `prefix`, in code point order
/// (which is UTF-8 byte order, SQLite's `BINARY` and PostgreSQL's `C` collation): the
/// prefix with its last character incremented, trailing `char::MAX`es dropped. `None`
/// when nothing bounds them (an empty prefix, or one of `char::MAX`es only).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value; surrogates are no chars, so 0xD7FF is followed by 0xE000.
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A value as bound for a column of `kind`: integers given as text are parsed; anything
/// else that does not fit is invalid input.
fn arg(kind: Kind, field: &str, v: &Value) -> Result<Arg> {
    let bad = || Error::invalid(format!("invalid value for query field {field}"));
    Ok(match (kind, v) {
        (Kind::Text, Value::Text(t)) => Arg::Text(t.clone()),
        (Kind::Text, Value::Int(n)) => Arg::Text(n.to_string()),
        (Kind::Int, Value::Int(n)) => Arg::Int(*n),
        (Kind::Int, Value::Text(t)) => Arg::Int(t.parse().map_err(|_| bad())?),
        (Kind::Flag, Value::Int(n)) => Arg::Int(i64::from(*n != 0)),
        (Kind::Flag, Value::Text(t)) => match t.as_str() {
            "true" => Arg::Int(1),
            "false" => Arg::Int(0),
            _ => return Err(bad()),
        },
        (Kind::Time, Value::Time(t)) => Arg::Text(ts(*t)),
        (Kind::Text, Value::Time(t)) => Arg::Text(ts(*t)),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_domain::query::{Page, Sort};

    const MAP: ColumnMap = ColumnMap {
        columns: &[
            ("name", "t.name", Kind::Text),
            ("size", "t.size", Kind::Int),
        ],
        property: Some(|p| format!("(SELECT v FROM props WHERE k = {p})")),
        key: "t.id",
        default_sort: "t.created_at",
    };

    fn query(conditions: Vec<Condition>, sort: Option<Sort>) -> Query {
        Query {
            conditions,
            sort,
            page: Page {
                start: 5,
                limit: 10,
            },
            count_only: false,
            with_total: false,
        }
    }

    #[test]
    fn conditions_bind_every_value_and_map_fields() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE 1=1");
        let q = query(
            vec![
                Condition::new(
                    "name",
                    Op::In,
                    vec![Value::Text("a".into()), Value::Text("b".into())],
                )
                .unwrap(),
                Condition::new("size", Op::Ge, vec![Value::Text("7".into())]).unwrap(),
                Condition::new("properties.os", Op::IsNull, vec![]).unwrap(),
            ],
            Some(Sort {
                field: "size".into(),
                dir: SortDir::Desc,
            }),
        );
        MAP.conditions(&mut sql, &q.conditions).unwrap();
        MAP.order_and_page(&mut sql, &q).unwrap();
        assert_eq!(
            sql.text,
            "SELECT 1 FROM t WHERE 1=1 AND (t.name IN ($1, $2)) AND (t.size >= $3) AND ((SELECT v FROM props WHERE k = $4) IS NULL) ORDER BY t.size DESC, t.id DESC LIMIT 10 OFFSET 5"
        );
        assert_eq!(sql.args.len(), 4);
        assert!(matches!(sql.args[2], Arg::Int(7)));
    }

    #[test]
    fn prefix_upper_bounds_are_above_every_extension_and_nothing_less() {
        assert_eq!(prefix_upper_bound("zsb-1").as_deref(), Some("zsb-2"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        for p in ["zsb-1", "a\u{D7FF}", "\u{7F}", "é", "x\u{FFFF}"] {
            let hi = prefix_upper_bound(p).unwrap();
            for tail in ["", "\u{10FFFF}\u{10FFFF}", "~", "\u{0}"] {
                let s = format!("{p}{tail}");
                assert!(s.as_str() >= p && s < hi, "{s:?} not in [{p:?}, {hi:?})");
                assert_eq!(s.as_bytes() < hi.as_bytes(), s < hi, "byte order");
            }
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_invalid() {
        let mut sql = Sql::new("");
        let bad_field = vec![Condition::new("nope", Op::IsNull, vec![]).unwrap()];
        assert!(matches!(
            MAP.conditions(&mut sql, &bad_field),
            Err(Error::InvalidInput(_))
        ));
        let bad_value =
            vec![Condition::new("size", Op::Eq, vec![Value::Text("x".into())]).unwrap()];
        assert!(matches!(
            MAP.conditions(&mut sql, &bad_value),
            Err(Error::InvalidInput(_))
        ));
    }
}
