//! Database connections. SQLite gets one writer connection (writers queue in
//! the pool instead of failing with "database is locked") and a pool of
//! readers; PostgreSQL gets one pool for both.

mod sqlite;

pub use sqlite::READER_CACHE_SIZE;

use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;
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

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}
