//! Database connections. SQLite gets one writer connection (writers queue in
//! the pool instead of failing with "database is locked") and a pool of
//! readers; PostgreSQL gets one pool for both.

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    DatabaseConnection, SqlxPostgresConnector, SqlxSqliteConnector,
    sqlx::{
        Connection,
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{
            SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
            SqliteSynchronous,
        },
    },
};

use crate::{config::Config, inline_read::InlineReader};

/// The connections of one database.
#[derive(Clone, Debug)]
pub struct Db {
    /// For reads that need no transaction.
    pub read: DatabaseConnection,
    /// For every write transaction.
    pub write: DatabaseConnection,
    /// SQLite in a file: the token look-up of every authenticated call,
    /// on the calling thread (see `inline_read`).
    pub inline: Option<Arc<InlineReader>>,
}

impl Db {
    /// Connects as configured. Lazily: an unreachable database is an error at
    /// the first query (a 503), not at start.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let url = config.database_url();
        let timeout = config.database_timeout.0;
        if url.starts_with("sqlite:") {
            connect_sqlite(config, &url, timeout).await
        } else {
            let options = PgConnectOptions::from_str(&url)
                .context("database_url: not a valid PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(config.database_max_connections)
                .acquire_timeout(timeout)
                .connect_lazy_with(options);
            let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
            Ok(Db {
                read: conn.clone(),
                write: conn,
                inline: None,
            })
        }
    }

    /// Brings the schema up to date; safe to run at every start.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.write, None)
            .await
            .context("apply database migrations")
    }

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}

async fn connect_sqlite(config: &Config, url: &str, timeout: Duration) -> anyhow::Result<Db> {
    let options = SqliteConnectOptions::from_str(url)
        .context("database_url: not a valid SQLite URL")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(timeout)
        .foreign_keys(true);
    let path = options.get_filename().to_owned();
    if path.as_os_str() != ":memory:" {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
        }
        create_private_file(&path)?;
    }
    let file = path.clone();
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .after_connect(move |_, _| {
            let file = file.clone();
            Box::pin(async move { writable(&file) })
        })
        .after_release(|conn, _| Box::pin(still_usable(conn)))
        .connect_with(options.clone())
        .await
        .with_context(|| format!("database_url: cannot open {}", path.display()))?;
    let read = SqlitePoolOptions::new()
        .max_connections(sqlite_readers(config.database_max_connections))
        .acquire_timeout(timeout)
        .after_release(|conn, _| Box::pin(still_usable(conn)))
        .connect_lazy_with(options.pragma("cache_size", READER_CACHE_SIZE.to_string()));
    let in_memory = path.as_os_str() == ":memory:" || url.contains("mode=memory");
    let inline =
        (!in_memory).then(|| Arc::new(InlineReader::new(path.clone(), timeout, READER_CACHE_SIZE)));
    Ok(Db {
        read: SqlxSqliteConnector::from_sqlx_sqlite_pool(read),
        write: SqlxSqliteConnector::from_sqlx_sqlite_pool(write),
        inline,
    })
}

/// Whether a SQLite connection coming back to the pool may be reused: not
/// when it is still inside a transaction. That happens when a COMMIT and the
/// ROLLBACK after it both fail (a read-only or full disk): sqlx would then
/// run the next "transaction" as a SAVEPOINT inside the dead one, report its
/// commit as done, and the tokens it registered would never reach the disk.
/// Closing the connection rolls the dead transaction back.
async fn still_usable(conn: &mut SqliteConnection) -> Result<bool, sea_orm::sqlx::Error> {
    // The worker runs commands in order: after the ping, any rollback queued
    // when the transaction was dropped has run.
    conn.ping().await?;
    let usable = !conn.is_in_transaction();
    if !usable {
        tracing::warn!("a database connection was left inside a failed transaction; closing it");
    }
    Ok(usable)
}

/// SQLite opens a file it cannot write read-only, silently, and the writer
/// connection would then refuse every write for good, even once the disk is
/// writable again. Failing the connection instead makes each write a 503
/// until a new connection can write.
fn writable(path: &std::path::Path) -> Result<(), sea_orm::sqlx::Error> {
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map(drop)
        .map_err(sea_orm::sqlx::Error::Io)
}

/// A SQLite read takes microseconds, and each connection has its own thread
/// and page cache: more readers than two per core add memory, not speed.
fn sqlite_readers(configured: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    configured.min(2 * cores as u32).max(1)
}

/// Page cache of each reader, in KiB when negative (SQLite's default is
/// 2 000 KiB): the upper levels of the indexes fit, the rest comes from the
/// operating system's cache.
const READER_CACHE_SIZE: i64 = -1024;

/// Creates the database file with mode 0600 so that SQLite does not create it
/// world-readable.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .with_context(|| format!("database_url: cannot create {}", path.display()))
}
