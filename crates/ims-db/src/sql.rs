//! SQL text with numbered placeholders, its bound arguments, and keyset paging, shared by
//! the catalog's list queries (images, metadefs, tasks); and [`Run`] and [`col`], which run
//! any statement and decode its rows with the catalog's error mapping ([`db_err`]).
//!
//! Everything built here runs on SQLite and PostgreSQL alike: `$N` placeholders, and
//! keyset conditions written as an OR over key prefixes (no row-value comparisons, whose
//! mixed directions neither backend supports). Backend-specific sort expressions (such as
//! `COLLATE "C"` on PostgreSQL) are the caller's: they arrive here as key expressions.

use ims_domain::Result;
pub(crate) use ims_domain::listing::SortDir;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Decode, Execute, Executor, Row, Type};

use crate::db_err;

/// Runs a statement, its driver errors mapped by [`db_err`].
pub(crate) trait Run<'q>: Execute<'q, Any> + Sized + 'q {
    /// Executes it; the number of rows it changed.
    async fn affected<'c, E>(self, db: E) -> Result<u64>
    where
        E: Executor<'c, Database = Any>,
    {
        Ok(db.execute(self).await.map_err(db_err)?.rows_affected())
    }

    /// Its first row (if any), decoded by `decode`.
    async fn fetch_opt<'c, E, T>(
        self,
        db: E,
        decode: impl FnOnce(&AnyRow) -> Result<T>,
    ) -> Result<Option<T>>
    where
        E: Executor<'c, Database = Any>,
    {
        let row = db.fetch_optional(self).await.map_err(db_err)?;
        row.as_ref().map(decode).transpose()
    }

    /// All its rows, each decoded by `decode`.
    async fn fetch_each<'c, E, T>(
        self,
        db: E,
        decode: impl FnMut(&AnyRow) -> Result<T>,
    ) -> Result<Vec<T>>
    where
        E: Executor<'c, Database = Any>,
    {
        let rows = db.fetch_all(self).await.map_err(db_err)?;
        rows.iter().map(decode).collect()
    }
}

impl<'q> Run<'q> for Query<'q, Any, AnyArguments> {}

/// Column `name` of `row`, decoded as `T`.
pub(crate) fn col<T>(row: &AnyRow, name: &str) -> Result<T>
where
    T: for<'r> Decode<'r, Any> + Type<Any>,
{
    row.try_get(name).map_err(db_err)
}

/// A 0/1 column as a flag.
pub(crate) fn flag(row: &AnyRow, name: &str) -> Result<bool> {
    Ok(col::<i64>(row, name)? != 0)
}

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
