//! The catalog adapter: images, members, jobs and identity over sqlx.
//!
//! One code path serves SQLite (embedded default) and PostgreSQL: every statement uses
//! `$N` placeholders and portable types (TEXT, BIGINT), and runs on sqlx's `Any` driver.

mod codec;
mod identity;
mod images;
mod jobs;
mod listing;
mod metadefs;

use std::str::FromStr;
use std::time::Duration;

use ims_domain::{Error, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file, single writer.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection pool to the catalog database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: AnyPool,
    backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Catalog {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::invalid(format!(
                "unsupported database URL scheme in {}",
                redact(url)
            )));
        };
        let options = AnyConnectOptions::from_str(url).map_err(db_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; busy_timeout makes
                        // writers queue instead of failing; foreign keys enable cascades.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(db_err)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::internal(format!("migration failed: {e}")))?;
        Ok(Catalog { pool, backend })
    }

    /// The engine behind this catalog.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The SQLite URL for a catalog file, created if missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_string(),
    }
}

/// Maps driver errors: unique violations are conflicts, pool timeouts are transient.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict("An entity with that identity already exists".into())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
            Error::Unavailable(format!("catalog database: {e}"))
        }
        sqlx::Error::Database(d) if d.message().contains("database is locked") => {
            Error::Unavailable("catalog database is busy".into())
        }
        _ => Error::internal(format!("catalog database: {e}")),
    }
}
