//! One database code path over PostgreSQL (production) and SQLite (embedded default).
//!
//! - [`DbConnection`] is diesel's `MultiConnection` over both; queries are written once against it.
//!   Where diesel cannot express a query on the multi backend (upserts, multi-row inserts, `ilike`),
//!   [`per_backend!`](crate::per_backend) expands one query body once per concrete connection.
//! - [`Database`] owns an r2d2 pool that connects lazily, the embedded migrations of both backends,
//!   and [`Database::run`], which moves a closure onto tokio's blocking pool while keeping its span.
//! - The backend is chosen by the URL scheme only: `postgres://` / `postgresql://` or `sqlite://PATH`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseConfig;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Runs the same query body on whichever concrete connection `conn` holds, for queries the
/// multi backend cannot compile (`on_conflict`, multi-row inserts, `ilike`):
/// `per_backend!(conn, |c| diesel::insert_into(t).values(&rows).on_conflict_do_nothing().execute(c))`.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgresql($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            Err(DbError::BadUrl(format!(
                "database.url must start with postgres://, postgresql:// or sqlite:// (got `{}`)",
                redact_url(url)
            )))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

/// The URL without its password, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// What callers of the database see; each maps to a clear gRPC status at the boundary.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database is unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("{0}")]
    BadUrl(String),
}

impl From<DbError> for tonic::Status {
    fn from(e: DbError) -> Self {
        match &e {
            DbError::Query(diesel::result::Error::NotFound) => {
                tonic::Status::not_found("not found")
            }
            DbError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                tonic::Status::unavailable("the database is unavailable; try again shortly")
            }
            _ => {
                tracing::error!(error = %e, "database error");
                tonic::Status::internal("internal error")
            }
        }
    }
}

/// r2d2 manager that picks the backend from the URL scheme and tunes SQLite on connect.
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
}

impl Manager {
    fn sqlite_path(&self) -> &str {
        let rest = self.url.trim_start_matches("sqlite:");
        rest.strip_prefix("//").unwrap_or(rest)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match self.backend {
            Backend::Postgres => PgConnection::establish(&self.url).map(DbConnection::Postgresql),
            Backend::Sqlite => {
                let path = self.sqlite_path();
                let mut c = SqliteConnection::establish(path)?;
                let journal = if path == ":memory:" {
                    ""
                } else {
                    "PRAGMA journal_mode = WAL;"
                };
                c.batch_execute(&format!(
                    "{journal} PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                ))
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping()
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Embedded migrations of one service, one set per backend (their SQL differs).
/// Declare them as statics: `static PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");`.
pub struct Migrations {
    pub postgres: &'static EmbeddedMigrations,
    pub sqlite: &'static EmbeddedMigrations,
}

/// Lends a `&'static EmbeddedMigrations` to diesel's harness, which wants a source by value.
struct Source(&'static EmbeddedMigrations);

impl<DB: diesel::backend::Backend> diesel::migration::MigrationSource<DB> for Source
where
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        self.0.migrations()
    }
}

/// A service's database: pool, migrations and the "migrations applied" flag readiness reads.
pub struct Database {
    pool: Pool,
    backend: Backend,
    migrations: Migrations,
    migrated: AtomicBool,
}

impl Database {
    /// Builds the pool without connecting: a service starts (not ready) even when its database is down.
    pub fn new(cfg: &DatabaseConfig, migrations: Migrations) -> Result<Self, DbError> {
        let backend = Backend::from_url(&cfg.url)?;
        let mut url = cfg.url.clone();
        if backend == Backend::Postgres && !url.contains("connect_timeout=") {
            let secs = cfg.connect_timeout_ms.div_ceil(1000).max(1);
            url.push_str(if url.contains('?') { "&" } else { "?" });
            url.push_str(&format!("connect_timeout={secs}"));
        }
        if backend == Backend::Sqlite {
            let m = Manager {
                url: url.clone(),
                backend,
            };
            let path = m.sqlite_path();
            let dir = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty());
            if let (false, Some(dir)) = (path == ":memory:", dir) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    DbError::BadUrl(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        // `:memory:` gives each connection its own database: keep exactly one.
        let max = if url.ends_with(":memory:") {
            1
        } else {
            cfg.pool_size.max(1)
        };
        let pool = r2d2::Pool::builder()
            .max_size(max)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms.max(100)))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager { url, backend });
        Ok(Self {
            pool,
            backend,
            migrations,
            migrated: AtomicBool::new(false),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    fn conn(&self) -> Result<PooledConnection, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// Applies pending migrations (idempotent). Blocking: call from the blocking pool.
    pub fn migrate_blocking(&self) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            DbConnection::Postgresql(c) => c
                .run_pending_migrations(Source(self.migrations.postgres))
                .map(|v| v.len()),
            DbConnection::Sqlite(c) => c
                .run_pending_migrations(Source(self.migrations.sqlite))
                .map(|v| v.len()),
        }
        .map_err(|e| DbError::Migration(e.to_string()))?;
        self.migrated.store(true, Ordering::Release);
        Ok(applied)
    }

    /// One readiness probe: a pooled connection answers `SELECT 1`. Blocking.
    pub fn ping_blocking(&self) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        conn.ping()
            .map(|_| ())
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool, inside the caller's tracing span.
    /// `f` may fail with the service's own error type, as long as a [`DbError`] converts into it.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| E::from(DbError::Unavailable(e.to_string())))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Unavailable(format!("blocking task failed: {e}"))))?
    }
}

/// `spawn_blocking` that keeps the current tracing span (and with it the trace id) inside the task.
pub async fn blocking<T, F>(f: F) -> Result<T, tokio::task::JoinError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}

/// A transaction for read-then-write work (check, then change). On SQLite it starts with
/// `BEGIN IMMEDIATE`, taking the write lock up front: two such transactions queue (busy timeout)
/// instead of the later one failing with "database is locked" when it tries to upgrade. On
/// PostgreSQL it is a plain transaction. Inside another transaction it is a savepoint.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let nested = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map_err(E::from)?
            .is_some(),
        DbConnection::Postgresql(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map_err(E::from)?
            .is_some(),
    };
    if nested {
        return conn.transaction(f);
    }
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(v) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rb) =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::warn!(error = %rb, "rollback failed");
            }
            Err(e)
        }
    }
}

/// Current UTC time as diesel stores it on both backends (`Timestamp`, no zone).
pub fn now_utc() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_comes_from_the_scheme_only() {
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("sqlite:///tmp/x.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("sqlite::memory:").unwrap(),
            Backend::Sqlite
        );
        assert!(Backend::from_url("/tmp/x.db").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        let e = Backend::from_url("mysql://root:hunter2@h/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
