//! Generic search requests over one aggregate: conditions, a sort key and a page.
//!
//! A dialect parses its own query syntax (ZStack's `q=` conditions, …) into a [`Query`]
//! whose field names are the aggregate's *domain* field names (for images see
//! `image::search::FIELDS`), never wire names. The catalog adapter turns a query into
//! one SQL statement through a per-aggregate column map, so conditions, order and page
//! are applied by the database: nothing is filtered in memory.

use time::OffsetDateTime;

pub use crate::image::listing::SortDir;

use crate::error::{Error, Result};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (rows where the field is null do not match, as in SQL).
    Ne,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater than or equal.
    Ge,
    /// Less than or equal.
    Le,
    /// One of the values.
    In,
    /// None of the values.
    NotIn,
    /// Matches a pattern with `%` (any run) and `_` (one character) wildcards.
    Like,
    /// Does not match the pattern.
    NotLike,
    /// The field has no value.
    IsNull,
    /// The field has a value.
    NotNull,
}

impl Op {
    /// How many values the operator takes: `None` for one or more (`In`, `NotIn`).
    pub fn arity(self) -> Option<usize> {
        match self {
            Op::IsNull | Op::NotNull => Some(0),
            Op::In | Op::NotIn => None,
            _ => Some(1),
        }
    }
}

/// A value compared with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A point in time.
    Time(OffsetDateTime),
}

/// The literal text every value matching the [`Op::Like`] pattern `pattern` starts with:
/// everything before its first wildcard (`%` or `_`; patterns have no escape character).
/// Empty when the pattern starts with a wildcard. Adapters use it to turn a prefix
/// pattern into an index range; the pattern itself still decides what matches.
pub fn like_prefix(pattern: &str) -> &str {
    let end = pattern.find(['%', '_']).unwrap_or(pattern.len());
    &pattern[..end]
}

/// One condition; all conditions of a query must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// A domain field name of the aggregate, or `properties.<name>` where the aggregate
    /// has free-form properties.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// Its values (none for null tests, one or more for `In`/`NotIn`, else one).
    pub values: Vec<Value>,
}

impl Condition {
    /// A condition, its number of values checked against the operator.
    pub fn new(field: impl Into<String>, op: Op, values: Vec<Value>) -> Result<Self> {
        let ok = match op.arity() {
            Some(n) => values.len() == n,
            None => !values.is_empty(),
        };
        if !ok {
            return Err(Error::invalid(format!(
                "wrong number of values for operator {op:?}"
            )));
        }
        Ok(Condition {
            field: field.into(),
            op,
            values,
        })
    }
}

/// The order of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// A domain field name.
    pub field: String,
    /// Direction.
    pub dir: SortDir,
}

/// Which slice of the matching rows to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub start: u64,
    /// Rows at most.
    pub limit: u64,
}

/// The largest page any query may ask for: a page is held in memory.
pub const MAX_LIMIT: u64 = 100_000;

/// A search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
    /// The order; without one, creation order (then id).
    pub sort: Option<Sort>,
    /// The page.
    pub page: Page,
    /// Only count the matches; return no rows.
    pub count_only: bool,
    /// Count the matches as well as returning the page.
    pub with_total: bool,
}

/// What a query found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    /// The page of matches (empty when only counting).
    pub items: Vec<T>,
    /// The number of matches across all pages, when asked for.
    pub total: Option<u64>,
}

/// The fields one aggregate can be searched and sorted by.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// The plain field names.
    pub names: &'static [&'static str],
    /// Whether `properties.<name>` fields exist.
    pub properties: bool,
}

impl Fields {
    /// Whether `field` names a searchable field.
    pub fn knows(&self, field: &str) -> bool {
        self.names.contains(&field)
            || (self.properties
                && field
                    .strip_prefix("properties.")
                    .is_some_and(|p| !p.is_empty()))
    }

    /// Checks every field of `q` and its page size.
    pub fn check(&self, q: &Query) -> Result<()> {
        let unknown = q
            .conditions
            .iter()
            .map(|c| c.field.as_str())
            .chain(q.sort.iter().map(|s| s.field.as_str()))
            .find(|f| !self.knows(f));
        if let Some(f) = unknown {
            return Err(Error::invalid(format!("unknown query field {f}")));
        }
        if q.page.limit > MAX_LIMIT {
            return Err(Error::invalid(format!("limit must be at most {MAX_LIMIT}")));
        }
        // Databases take a signed 64-bit offset; a larger one is the caller's mistake.
        if q.page.start > i64::MAX as u64 {
            return Err(Error::invalid(format!(
                "start must be at most {}",
                i64::MAX
            )));
        }
        for c in &q.conditions {
            crate::text::check("query", &c.field)?;
            for v in &c.values {
                if let Value::Text(t) = v {
                    crate::text::check("query", t)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_prefixes_stop_at_the_first_wildcard() {
        assert_eq!(like_prefix("zsb-1%"), "zsb-1");
        assert_eq!(like_prefix("ab_c%"), "ab");
        assert_eq!(like_prefix("%ab"), "");
        assert_eq!(like_prefix("_ab"), "");
        assert_eq!(like_prefix("exact"), "exact");
        assert_eq!(like_prefix("ünï%"), "ünï");
    }

    #[test]
    fn conditions_check_their_number_of_values() {
        assert!(Condition::new("name", Op::IsNull, vec![]).is_ok());
        assert!(Condition::new("name", Op::IsNull, vec![Value::Int(1)]).is_err());
        assert!(Condition::new("name", Op::In, vec![]).is_err());
        assert!(Condition::new("name", Op::Eq, vec![Value::Int(1), Value::Int(2)]).is_err());
    }

    #[test]
    fn fields_refuse_unknown_names_and_huge_pages() {
        let f = Fields {
            names: &["name"],
            properties: true,
        };
        let mut q = Query {
            conditions: vec![Condition::new("name", Op::Eq, vec![Value::Int(1)]).unwrap()],
            sort: None,
            page: Page {
                start: 0,
                limit: 10,
            },
            count_only: false,
            with_total: false,
        };
        assert!(f.check(&q).is_ok());
        q.conditions
            .push(Condition::new("properties.x", Op::IsNull, vec![]).unwrap());
        assert!(f.check(&q).is_ok());
        q.conditions
            .push(Condition::new("nope", Op::IsNull, vec![]).unwrap());
        assert!(f.check(&q).is_err());
        q.conditions.pop();
        q.conditions
            .push(Condition::new("properties.", Op::IsNull, vec![]).unwrap());
        assert!(f.check(&q).is_err());
        q.conditions.pop();
        q.page.limit = MAX_LIMIT + 1;
        assert!(f.check(&q).is_err());
        q.page.limit = 10;
        q.page.start = u64::MAX;
        assert!(f.check(&q).is_err());
    }
}
