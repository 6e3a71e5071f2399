//! Throw-away PostgreSQL databases for test harnesses.
//!
//! The contract: when [`ENV`] (`IMS_TEST_DATABASE_URL`) holds a `postgres://` URL of a
//! server on which the user may `CREATE DATABASE`, each test catalog is a fresh database
//! there (unique name), dropped when the test is done; unset, tests use SQLite. Nothing
//! here runs in `ims serve`.

use std::str::FromStr;

use ims_domain::{Error, Result};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::db_err;

/// The variable naming the test server.
pub const ENV: &str = "IMS_TEST_DATABASE_URL";

/// The test server's URL, if tests should run on PostgreSQL.
pub fn server_url() -> Option<String> {
    std::env::var(ENV).ok().filter(|u| !u.trim().is_empty())
}

/// Creates a database named `<prefix>_<pid>_<random>` on the server and returns its URL.
pub async fn create(server_url: &str, prefix: &str) -> Result<String> {
    let name = format!(
        "{}_{}_{}",
        prefix
            .to_ascii_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    // Identifiers are at most 63 bytes; the random part stays, the prefix yields.
    let name = name[name.len().saturating_sub(63)..]
        .trim_start_matches('_')
        .to_string();
    let mut conn = admin_connection(server_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .map_err(db_err)?;
    let _ = conn.close().await;
    Ok(with_database(server_url, &name))
}

/// Drops the database `db_url` names, disconnecting whoever still uses it (PostgreSQL 13
/// or later). Dropping one that does not exist is not an error.
pub async fn drop(server_url: &str, db_url: &str) -> Result<()> {
    let name = PgConnectOptions::from_str(db_url)
        .map_err(db_err)?
        .get_database()
        .map(str::to_string)
        .ok_or_else(|| Error::invalid("the database URL names no database"))?;
    let mut conn = admin_connection(server_url).await?;
    let quoted = name.replace('"', "\"\"");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(db_err)?;
    let _ = conn.close().await;
    Ok(())
}

/// Every row of `table` in the database `db_url` names, each as PostgreSQL's text form
/// of the whole row: for tests that check what is (not) stored in the clear.
pub async fn rows_as_text(db_url: &str, table: &str) -> Result<Vec<String>> {
    if table.is_empty() || !table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(Error::invalid(format!("not a table name: {table}")));
    }
    let mut conn = admin_connection(db_url).await?;
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT t::text FROM {table} t"
    )))
    .fetch_all(&mut conn)
    .await
    .map_err(db_err)?;
    let _ = conn.close().await;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

async fn admin_connection(server_url: &str) -> Result<PgConnection> {
    let options = PgConnectOptions::from_str(server_url).map_err(db_err)?;
    PgConnection::connect_with(&options).await.map_err(db_err)
}

/// `url` with its database (the path) replaced by `name`, keeping user, host and query.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    format!("{}/{name}{query}", &base[..path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://ims@127.0.0.1:55432/postgres", "t1"),
            "postgres://ims@127.0.0.1:55432/t1"
        );
        assert_eq!(
            with_database("postgres://ims@127.0.0.1:55432", "t1"),
            "postgres://ims@127.0.0.1:55432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?host=/tmp/s&sslmode=disable", "t2"),
            "postgresql://u:p@h/t2?host=/tmp/s&sslmode=disable"
        );
        assert_eq!(
            with_database("postgres:///postgres?host=/tmp/pg", "t3"),
            "postgres:///t3?host=/tmp/pg"
        );
    }
}
