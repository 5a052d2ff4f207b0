//! Database connections. SQLite gets one writer connection (writers queue in
//! the pool instead of failing with "database is locked") and a pool of
//! readers; PostgreSQL gets one pool for both.

pub mod pg_conns;
mod sqlite;

pub use pg_conns::PgConns;
pub use sqlite::READER_CACHE_SIZE;

use std::{path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;

use crate::telemetry;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlxPostgresConnector,
    sqlx::{
        Connection,
        postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
    },
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

/// The key of the start-up advisory lock ("tokend" in ASCII): the other
/// advisory locks are SHA-256 prefixes of their names.
const STARTUP_LOCK_KEY: i64 = 0x746f_6b65_6e64;

/// PostgreSQL connect options; they hold the password, so they print as
/// `<redacted>`.
#[derive(Clone)]
struct PgOptions(PgConnectOptions);

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Held while a process migrates and bootstraps; see [`Db::startup_lock`].
pub struct StartupLock {
    conn: Option<PgConnection>,
}

impl StartupLock {
    /// Lets the next process start.
    pub async fn release(self) -> anyhow::Result<()> {
        if let Some(mut conn) = self.conn {
            sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(STARTUP_LOCK_KEY)
                .execute(&mut conn)
                .await
                .context("release the start-up lock")?;
            let _ = conn.close().await;
        }
        Ok(())
    }
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
    /// How to open a PostgreSQL connection outside the pool (the start-up
    /// lock's).
    pg_options: Option<PgOptions>,
    timeout: Duration,
    /// SQLite: the turn to write, taken by every write transaction that
    /// reads before it writes and by the registry's SQLite writer for each
    /// of its batches. Two SQLite writers in one process (sqlx's and the
    /// registry's) would otherwise fail such a transaction with
    /// `SQLITE_BUSY_SNAPSHOT` whenever the other committed between its read
    /// and its write. `None` on PostgreSQL, whose writers run side by side.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// PostgreSQL: the connections the registry's hot path holds.
    pg_conns: Option<Arc<PgConns>>,
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
            .connect_lazy_with(options.clone());
        let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
        let held = PgConns::new(options.clone(), settings.max_connections, settings.timeout);
        Ok(Db {
            read: conn.clone(),
            write: conn,
            sqlite_file: None,
            pg_options: Some(PgOptions(options)),
            timeout: settings.timeout,
            write_gate: None,
            pg_conns: Some(Arc::new(held)),
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

    /// The connections the registry's hot path holds (PostgreSQL).
    pub fn pg_conns(&self) -> Option<Arc<PgConns>> {
        self.pg_conns.clone()
    }

    /// Waits for the turn to write (SQLite; at once on PostgreSQL); the
    /// turn lasts as long as the guard.
    pub async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_gate {
            Some(gate) => Some(Arc::clone(gate).lock_owned().await),
            None => None,
        }
    }

    /// The turn to write, for a writer that is not async (`None` on
    /// PostgreSQL).
    pub fn write_gate(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.write_gate.clone()
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

    /// Waits until no other process is starting on this database, then
    /// keeps them waiting until the lock is released: migrations and the
    /// first administrator are then made by one replica at a time, however
    /// many start at once. On PostgreSQL a session advisory lock on a
    /// connection of its own (outside the pool, whatever its size), which
    /// PostgreSQL releases by itself if the process dies; SQLite needs none
    /// (its migrations take the file's write lock).
    pub async fn startup_lock(&self) -> anyhow::Result<StartupLock> {
        let Some(PgOptions(options)) = &self.pg_options else {
            return Ok(StartupLock { conn: None });
        };
        let mut conn = PgConnection::connect_with(options)
            .await
            .context("connect for the start-up lock")?;
        sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(STARTUP_LOCK_KEY)
            .execute(&mut conn)
            .await
            .context("take the start-up lock")?;
        Ok(StartupLock { conn: Some(conn) })
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
        if let Some(held) = &self.pg_conns {
            let (lent, idle) = held.counts();
            telemetry::metrics::db_pool("registry", lent, idle);
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
        if let Some(held) = &self.pg_conns {
            held.close();
        }
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}
