//! SQLite: one writer connection and a pool of readers over a WAL file.

use std::str::FromStr;

use anyhow::Context;
use sea_orm::{
    SqlxSqliteConnector,
    sqlx::{
        Connection,
        sqlite::{
            SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
            SqliteSynchronous,
        },
    },
};

use super::{Db, DbSettings};

/// Page cache of each reader, in KiB when negative (SQLite's default is
/// 2 000 KiB): the upper levels of the indexes fit, the rest comes from the
/// operating system's cache.
pub const READER_CACHE_SIZE: i64 = -1024;

pub(super) async fn connect(url: &str, settings: &DbSettings) -> anyhow::Result<Db> {
    let timeout = settings.timeout;
    let options = SqliteConnectOptions::from_str(url)
        .context("database_url: not a valid SQLite URL")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(timeout)
        .foreign_keys(true);
    let path = options.get_filename().to_owned();
    let in_memory = path.as_os_str() == ":memory:" || url.contains("mode=memory");
    if !in_memory {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
        }
        create_private_file(&path)?;
    }
    let file = path.clone();
    // No ping before lending a connection (sqlx's default): on SQLite it is
    // one more hand-off to the connection's thread for every query, and
    // `still_usable` already checks each connection that comes back.
    let write = SqlitePoolOptions::new()
        .test_before_acquire(false)
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
        .test_before_acquire(false)
        .max_connections(readers(settings.max_connections))
        .acquire_timeout(timeout)
        .after_release(|conn, _| Box::pin(still_usable(conn)))
        .connect_lazy_with(options.pragma("cache_size", READER_CACHE_SIZE.to_string()));
    Ok(Db {
        read: SqlxSqliteConnector::from_sqlx_sqlite_pool(read),
        write: SqlxSqliteConnector::from_sqlx_sqlite_pool(write),
        sqlite_file: (!in_memory).then_some(path),
        pg_options: None,
        timeout,
        write_gate: Some(Default::default()),
        pg_conns: None,
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
fn readers(configured: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    configured.min(2 * cores as u32).max(1)
}

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

#[cfg(test)]
mod tests {
    /// `.cargo/config.toml` builds SQLite without the page cache shared by
    /// every connection and without memory statistics: each took a
    /// process-wide mutex, on every page and every allocation.
    #[test]
    fn sqlite_is_built_without_process_wide_locks() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }
}
