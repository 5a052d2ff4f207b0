//! Database connections. SQLite gets one writer connection (writers queue in
//! the pool instead of failing with "database is locked") and a pool of
//! readers; PostgreSQL gets one pool for both.

mod sqlite;

pub use sqlite::READER_CACHE_SIZE;

use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;

use crate::telemetry;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlxPostgresConnector,
    sqlx::postgres::{PgConnectOptions, PgPoolOptions},
};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: crate::secret::Secret,
    /// Longest wait for a connection.
    pub timeout: Duration,
    /// Size of the (read) connection pool.
    pub max_connections: u32,
}

/// The connections of one database.
#[derive(Clone, Debug)]
pub struct Db {
    /// For reads that need no transaction.
    pub read: DatabaseConnection,
    /// For every write transaction.
    pub write: DatabaseConnection,
    /// The SQLite database file, when the database is one.
    sqlite_file: Option<PathBuf>,
    timeout: Duration,
}

impl Db {
    /// Connects as configured. Lazily: an unreachable database is an error at
    /// the first query (a 503), not at start.
    pub async fn connect(settings: &DbSettings) -> anyhow::Result<Self> {
        let url = settings.url.expose();
        if url.starts_with("sqlite:") {
            return sqlite::connect(url, settings).await;
        }
        let options =
            PgConnectOptions::from_str(url).context("database_url: not a valid PostgreSQL URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.timeout)
            .connect_lazy_with(options);
        let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
        Ok(Db {
            read: conn.clone(),
            write: conn,
            sqlite_file: None,
            timeout: settings.timeout,
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// The SQLite database file, for readers that open it themselves; `None`
    /// on PostgreSQL and for an in-memory database.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    /// Longest wait for a connection (or, for SQLite, for a lock).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Brings the schema up to date; safe to run at every start.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.write, None)
            .await
            .context("apply database migrations")
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.read.execute_unprepared("SELECT 1").await.map(drop)
    }

    /// Records the pools' connections in use and idle, as metrics: SQLite's
    /// `read` and `write` pools, or PostgreSQL's one `shared` pool.
    pub fn record_pool_metrics(&self) {
        let pools: &[(&'static str, &DatabaseConnection)] = match self.backend() {
            DbBackend::Postgres => &[("shared", &self.write)],
            _ => &[("read", &self.read), ("write", &self.write)],
        };
        for (name, conn) in pools {
            let (size, idle) = match conn.get_database_backend() {
                DbBackend::Sqlite => {
                    let pool = conn.get_sqlite_connection_pool();
                    (pool.size(), pool.num_idle())
                }
                DbBackend::Postgres => {
                    let pool = conn.get_postgres_connection_pool();
                    (pool.size(), pool.num_idle())
                }
                _ => continue,
            };
            let idle = idle as u64;
            telemetry::metrics::db_pool(name, u64::from(size).saturating_sub(idle), idle);
        }
    }

    /// How many of this build's migrations the database has not had. A
    /// database that had migrations this build does not know (a newer
    /// replica migrated it) has nothing pending for this one.
    pub async fn pending_migrations(&self) -> Result<usize, DbErr> {
        match Migrator::get_pending_migrations_read_only(&self.read).await {
            Ok(pending) => Ok(pending.len()),
            Err(DbErr::Custom(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}
