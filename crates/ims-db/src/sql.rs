//! SQL text with numbered placeholders, its bound arguments, and keyset paging, shared by
//! the catalog's list queries (images, metadefs, tasks).
//!
//! Everything built here runs on SQLite and PostgreSQL alike: `$N` placeholders, and
//! keyset conditions written as an OR over key prefixes (no row-value comparisons, whose
//! mixed directions neither backend supports). Backend-specific sort expressions (such as
//! `COLLATE "C"` on PostgreSQL) are the caller's: they arrive here as key expressions.

pub(crate) use ims_domain::listing::SortDir;
use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

/// A bound argument; `Null` for absent optional text.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Null,
}

/// Accumulates SQL text and arguments, numbering placeholders.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) args: Vec<Arg>,
}

impl Sql {
    /// Starts from `text`, with no arguments yet.
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Adds an argument and returns its placeholder.
    pub(crate) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    /// The condition "the row comes strictly after the marker" in the order of `keys`
    /// (SQL expressions with their directions, most significant first), given the
    /// marker's `values` of the same expressions: an OR over key prefixes, each equal on
    /// the keys before and past the marker on the last one.
    pub(crate) fn keyset<K: AsRef<str>>(
        &mut self,
        keys: &[(K, SortDir)],
        values: &[Arg],
    ) -> String {
        debug_assert_eq!(keys.len(), values.len(), "one marker value per sort key");
        let mut ors = Vec::new();
        for (n, (last, dir)) in keys.iter().enumerate() {
            let mut ands = Vec::new();
            for ((k, _), v) in keys.iter().zip(values).take(n) {
                let p = self.arg(v.clone());
                ands.push(format!("{} = {p}", k.as_ref()));
            }
            let p = self.arg(values[n].clone());
            let cmp = if *dir == SortDir::Asc { ">" } else { "<" };
            ands.push(format!("{} {cmp} {p}", last.as_ref()));
            ors.push(format!("({})", ands.join(" AND ")));
        }
        ors.join(" OR ")
    }
}

/// The `ORDER BY` list (without the keywords) for `keys`, matching [`Sql::keyset`].
pub(crate) fn order_by<K: AsRef<str>>(keys: &[(K, SortDir)]) -> String {
    let terms: Vec<String> = keys
        .iter()
        .map(|(k, d)| {
            let dir = if *d == SortDir::Asc { "ASC" } else { "DESC" };
            format!("{} {dir}", k.as_ref())
        })
        .collect();
    terms.join(", ")
}

/// Binds arguments in order.
pub(crate) fn bind(
    mut q: Query<'_, Any, AnyArguments>,
    args: Vec<Arg>,
) -> Query<'_, Any, AnyArguments> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s),
            Arg::Int(n) => q.bind(n),
            Arg::Null => q.bind(None::<String>),
        };
    }
    q
}
