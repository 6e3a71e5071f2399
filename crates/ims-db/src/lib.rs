//! The catalog adapter: images, members, jobs, identity, bucket owners and metadefs over
//! sqlx.
//!
//! One code path serves SQLite (embedded default) and PostgreSQL: every statement uses
//! `$N` placeholders and portable types (TEXT, BIGINT), and runs on sqlx's `Any` driver.

mod buckets;
mod codec;
mod identity;
mod image_search;
mod images;
mod jobs;
mod keys;
mod listing;
mod metadefs;
mod query;
mod quota;
pub mod scratch;
mod servers;
mod sessions;
mod sql;
mod volume_search;
mod volumes;

use std::str::FromStr;
use std::time::Duration;

use ims_domain::{Error, Result};
use sql::Run;
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

/// How the pool talks to the database: its size and how long anything may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections at most; `None` picks the backend's default (8 for SQLite, whose
    /// single writer gains nothing from more, 16 for PostgreSQL).
    pub max_connections: Option<u32>,
    /// How long a caller waits for a connection (a free one, or a new one while the
    /// database refuses them) before it fails with `Unavailable`.
    pub acquire_timeout: Duration,
    /// The longest one statement may run on PostgreSQL (`statement_timeout`, set on each
    /// connection); `None` for no limit. SQLite has no equivalent; its writers wait for
    /// the write lock at most 10 s (`busy_timeout`).
    pub statement_timeout: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Backend {
    /// The engine a URL names.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::invalid(format!(
                "unsupported database URL scheme in {}",
                redact(url)
            )))
        }
    }
}

impl Catalog {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) with default pool settings
    /// and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// Connects to `url` with `settings` and applies migrations.
    pub async fn connect_with(url: &str, settings: PoolSettings) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = AnyConnectOptions::from_str(url).map_err(db_err)?;
        let default_size = if backend == Backend::Sqlite { 8 } else { 16 };
        let statement_timeout = settings.statement_timeout;
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.unwrap_or(default_size).max(1))
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            // WAL lets readers run beside the single writer; busy_timeout
                            // makes writers queue instead of failing; foreign keys enable
                            // cascades.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                        }
                        Backend::Postgres => {
                            // A stuck statement holds a connection and often row locks;
                            // past the limit it fails (57014, mapped to Unavailable).
                            let ms = statement_timeout.map_or(0, |t| t.as_millis().max(1));
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "SET statement_timeout = {ms}"
                            )))
                            .await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(db_err)?;
        migrate(&pool, backend).await?;
        Ok(Catalog { pool, backend })
    }
    /// Starts a transaction that a cancelled caller cannot leave open. The `BEGIN` runs
    /// in a task of its own: sqlx 0.9's PostgreSQL `begin` is not cancel-safe (a future
    /// dropped while `BEGIN` is on the wire, as when a client hangs up mid-request,
    /// returns the connection to the pool inside a transaction nothing ends, and every
    /// later borrower's statements run in it), while a finished `begin` whose transaction
    /// is dropped rolls back properly.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(Error::internal)?
            .map_err(db_err)
    }

    /// The engine behind this catalog.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database server's current time, UTC (the clock every node follows).
    pub async fn database_time(&self) -> Result<time::OffsetDateTime> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS t",
            Backend::Postgres => {
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', \
                 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS t"
            }
        };
        let t = sqlx::query(sql)
            .fetch_opt(&self.pool, |r| sql::col::<String>(r, "t"))
            .await?
            .ok_or_else(|| Error::internal("the database told no time"))?;
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::internal(format!("the database's time {t:?}: {e}")))
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The connection pool right now: connections open, of them idle, and the most it
    /// may open (for `/metrics`).
    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The catalog's connection pool at one moment ([`Catalog::pool_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open.
    pub open: u32,
    /// Of them, idle.
    pub idle: usize,
    /// The most the pool opens.
    pub max: u32,
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

/// Applies pending migrations on one connection. On PostgreSQL the statement timeout is
/// lifted for them (an index build on a large catalog may take longer), and sqlx's
/// advisory lock keeps two nodes starting together from migrating twice.
async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    let mut conn = pool.acquire().await.map_err(db_err)?;
    if backend == Backend::Postgres {
        conn.execute("SET statement_timeout = 0")
            .await
            .map_err(db_err)?;
    }
    let outcome = MIGRATOR.run(&mut *conn).await;
    // The connection goes back to the pool; it must not keep the lifted limit.
    conn.close_on_drop();
    outcome.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => db_err(e),
        e => Error::internal(format!("migration failed: {e}")),
    })
}

/// Maps driver errors by meaning: duplicates are conflicts; bad text (PostgreSQL refuses
/// NUL and invalid UTF-8) and dangling references are invalid input; a busy, restarting,
/// unreachable or overloaded database is `Unavailable`, which callers may retry (jobs do)
/// and which the dialects answer with 503. The rest is internal.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match &e {
        E::Database(d) if d.is_unique_violation() => {
            Error::Conflict("An entity with that identity already exists".into())
        }
        E::Database(d) if d.is_foreign_key_violation() => {
            if d.message().contains("still referenced") {
                Error::Conflict("The entity is still in use".into())
            } else {
                Error::invalid("The request refers to an entity that does not exist")
            }
        }
        E::Database(d) => match d.code().as_deref().map(classify_code) {
            Some(Some(Class::BadText)) => Error::invalid("Text must be valid UTF-8 without NUL"),
            Some(Some(Class::Transient)) => Error::Unavailable(format!("catalog database: {e}")),
            _ if d.message().contains("database is locked") => {
                Error::Unavailable("catalog database is busy".into())
            }
            _ => Error::internal(format!("catalog database: {e}")),
        },
        E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::BeginFailed
        | E::Io(_)
        | E::Tls(_) => Error::Unavailable(format!("catalog database: {e}")),
        _ => Error::internal(format!("catalog database: {e}")),
    }
}

/// What a database error code means to a caller.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// The input cannot be stored as text.
    BadText,
    /// Retrying later may succeed.
    Transient,
}

/// PostgreSQL SQLSTATEs worth telling apart (SQLite's numeric codes match none of them;
/// its busy error is recognised by message).
fn classify_code(code: &str) -> Option<Class> {
    match code {
        // character_not_in_repertoire (NUL), untranslatable_character
        "22021" | "22P05" => Some(Class::BadText),
        // serialization_failure, deadlock_detected, lock_not_available, query_canceled
        // (statement_timeout), admin/crash shutdown, cannot_connect_now, read-only
        // transaction (a standby after fail-over)
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "25006" => {
            Some(Class::Transient)
        }
        // connection exceptions, insufficient resources (too many connections, disk full)
        c if c.starts_with("08") || c.starts_with("53") => Some(Class::Transient),
        _ => None,
    }
}

#[async_trait::async_trait]
impl ims_domain::context::ReferenceClock for Catalog {
    async fn reference_time(&self) -> Result<time::OffsetDateTime> {
        self.database_time().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_by_meaning() {
        for code in ["22021", "22P05"] {
            assert_eq!(classify_code(code), Some(Class::BadText), "{code}");
        }
        for code in [
            "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "08006", "08001",
            "53300", "25006",
        ] {
            assert_eq!(classify_code(code), Some(Class::Transient), "{code}");
        }
        // Unique (23505) and foreign-key (23503) violations go by kind; syntax errors,
        // SQLite's numeric codes and unknown codes are internal.
        for code in ["23505", "23503", "42601", "2067", "787", "5"] {
            assert_eq!(classify_code(code), None, "{code}");
        }
    }

    #[test]
    fn connection_failures_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(refused)] {
            assert!(matches!(db_err(e), Error::Unavailable(_)));
        }
        assert!(matches!(
            db_err(sqlx::Error::RowNotFound),
            Error::Internal(_)
        ));
    }

    /// PostgreSQL only (the setting does not exist on SQLite): runs when the test run
    /// points at a PostgreSQL server, as scripts/test's second pass does.
    #[tokio::test]
    async fn postgres_connections_carry_the_statement_timeout() {
        let Some(server) = scratch::server_url() else {
            return;
        };
        let url = scratch::create(&server, "ims_timeout").await.unwrap();
        let settings = PoolSettings {
            statement_timeout: Some(Duration::from_millis(300)),
            ..PoolSettings::default()
        };
        let catalog = Catalog::connect_with(&url, settings).await.unwrap();
        let (shown,): (String,) = sqlx::query_as("SHOW statement_timeout")
            .fetch_one(&catalog.pool)
            .await
            .unwrap();
        assert_eq!(shown, "300ms");
        let slow = sqlx::query("SELECT pg_sleep(3)")
            .execute(&catalog.pool)
            .await
            .unwrap_err();
        assert!(matches!(db_err(slow), Error::Unavailable(_)));
        catalog.ping().await.unwrap();
        catalog.close().await;
        scratch::drop(&server, &url).await.unwrap();
    }

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::of_url("sqlite://x?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::of_url("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
