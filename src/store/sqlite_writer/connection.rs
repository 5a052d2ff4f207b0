//! The writer's connection: opened as sqlx's are, and a batch run on it in
//! one transaction, each job in a savepoint.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use super::jobs::Queued;
use crate::store::{
    sqlite_checkpoints::{BACKSTOP_PAGES, CHECKPOINT_EVERY, Checkpoints},
    sqlite_txn::Conn,
};

/// The writer's connection and its counts.
pub(super) struct Writer {
    pub(super) path: PathBuf,
    pub(super) busy_timeout: Duration,
    /// Kept from batch to batch while they succeed.
    pub(super) conn: Option<Conn>,
    pub(super) batches: Arc<AtomicU64>,
    /// The checkpointing thread, asked every `CHECKPOINT_EVERY` commits.
    pub(super) checkpoints: Option<Checkpoints>,
    /// Commits since the last checkpoint asked for.
    pub(super) commits: u32,
}

impl Writer {
    /// Runs `batch` in one transaction, each job in a savepoint, and commits.
    /// A connection that failed is not trusted again.
    pub(super) fn commit(
        &mut self,
        batch: &mut [Box<dyn Queued>],
    ) -> std::result::Result<(), String> {
        self.batches.fetch_add(1, Ordering::Release);
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.open().map_err(|e| e.to_string())?,
        };
        let result = run_batch(&conn, batch);
        if result.is_ok() {
            self.conn = Some(conn);
            self.commits += 1;
            if let Some(checkpoints) = &self.checkpoints
                && self.commits >= CHECKPOINT_EVERY
            {
                checkpoints.ask();
                self.commits = 0;
            }
        }
        result
    }

    fn open(&self) -> rusqlite::Result<Conn> {
        let conn = open(&self.path, self.busy_timeout)?;
        // Each job runs in a savepoint, which keeps the pages it changes as
        // they were in a sub-journal. Past 64 KiB (a rotation changes about
        // sixteen pages) SQLite spills that to a temporary file, and the file
        // then takes every job's pages for good: two `pwrite`s a page, more
        // than the WAL itself got. In memory it holds one job's pages at a
        // time. Set here, not in `open`: the checkpoints' connection runs
        // no savepoints.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        if self.checkpoints.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
        }
        Ok(Arc::new(Mutex::new(conn)))
    }
}

/// A connection that writes the database in `path`, set as sqlx's are.
pub(super) fn open(path: &std::path::Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // SQLite opens a file it cannot write read-only, silently: then every
    // batch would fail until tokend restarts. Refusing the connection tries
    // again at the next batch.
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some(format!("{} is not writable", path.display())),
        ));
    }
    conn.busy_timeout(busy_timeout)?;
    // The WAL mode is the file's.
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn run_batch(conn: &Conn, batch: &mut [Box<dyn Queued>]) -> std::result::Result<(), String> {
    // Prepared once per connection: a batch runs four of these a job.
    let execute = |sql: &str| {
        conn.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let in_transaction = || {
        !conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_autocommit()
    };
    execute("BEGIN IMMEDIATE")?;
    let jobs = (|| {
        for job in batch.iter_mut() {
            execute("SAVEPOINT job")?;
            let keep = job.run(conn);
            if !in_transaction() {
                // SQLite rolled the whole transaction back (a full disk, an
                // I/O error): nothing of the batch is left to commit.
                return Err("the transaction was rolled back".to_owned());
            }
            if !keep {
                execute("ROLLBACK TO job")?;
            }
            execute("RELEASE job")?;
        }
        execute("COMMIT")
    })();
    if jobs.is_err() && in_transaction() {
        let _ = execute("ROLLBACK");
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The savepoints' sub-journals stay in memory: `temp_store` 2.
    #[test]
    fn the_writer_keeps_its_savepoints_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap();
        let writer = Writer {
            path,
            busy_timeout: Duration::from_secs(1),
            conn: None,
            batches: Arc::default(),
            checkpoints: None,
            commits: 0,
        };
        let conn = writer.open().unwrap();
        let temp_store: i64 = conn
            .lock()
            .unwrap()
            .pragma_query_value(None, "temp_store", |row| row.get(0))
            .unwrap();
        assert_eq!(temp_store, 2, "MEMORY");
    }
}
