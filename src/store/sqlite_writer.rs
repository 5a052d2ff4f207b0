//! SQLite: the registry's write transactions on one thread of their own,
//! committed in groups.
//!
//! Through sqlx, each statement of a registration was a hand-off to the
//! connection's thread and back, and the sixteen requests of a load took
//! turns on the one writer connection: a quarter of the CPU went to the
//! kernel's scheduler (`bench/profile-refresh.md`). Here a request queues
//! its job and waits for one answer. The writer thread takes every job
//! waiting, runs each in a savepoint of one transaction, and commits them
//! together: a job that fails is rolled back to its savepoint and fails
//! alone, and no job hears it succeeded before the commit that holds it, so
//! no client ever holds a token the registry lacks.
//!
//! A job's statements run on this thread, in place: the registry's
//! operations on SQLite ([`super::sqlite_txn`]) never wait, so a job's
//! future is done after one poll.
//!
//! The queue is bounded: a request waits for room up to `database_timeout`,
//! then gets a 503, as it would waiting for a connection.

use std::{
    future::Future,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::{
    TokenTxn,
    sqlite_checkpoints::{BACKSTOP_PAGES, CHECKPOINT_EVERY, Checkpoints},
    sqlite_txn::{Conn, unavailable},
};
use crate::{error::Result, telemetry};
use jobs::{Job, Queued};

/// Jobs waiting for the writer at most; more wait for room.
pub const QUEUE_CAPACITY: usize = 1024;

/// Jobs committed together at most: a batch holds SQLite's write lock, and
/// the other writers (sqlx's) wait for it.
const MAX_BATCH: usize = 128;

/// The queue to the writer thread; the thread stops when the last clone of
/// its writer is dropped.
pub struct SqliteWriter {
    queue: mpsc::Sender<Box<dyn Queued>>,
    timeout: Duration,
    /// Batches the thread has committed or failed (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    batches: Arc<AtomicU64>,
    /// Checkpoints the checkpointing thread made (read by the tests).
    #[cfg(test)]
    checkpoints: Option<Arc<AtomicU64>>,
}

impl SqliteWriter {
    /// Starts the writer of the database in `path`; it opens its connection
    /// at its first batch (and again after a batch that failed).
    pub fn start(
        path: PathBuf,
        timeout: Duration,
        gate: Option<Arc<tokio::sync::Mutex<()>>>,
    ) -> std::io::Result<Self> {
        Self::with_capacity(path, timeout, gate, QUEUE_CAPACITY)
    }

    pub(super) fn with_capacity(
        path: PathBuf,
        timeout: Duration,
        gate: Option<Arc<tokio::sync::Mutex<()>>>,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        let batches = Arc::new(AtomicU64::new(0));
        let file = path.clone();
        let checkpoints = Checkpoints::start(move || open(&file, timeout))
            .inspect_err(|e| {
                tracing::warn!(error = %e, "no WAL checkpoint thread; the writer checkpoints");
            })
            .ok();
        #[cfg(test)]
        let made = checkpoints.as_ref().map(Checkpoints::made);
        let writer = Writer {
            path,
            busy_timeout: timeout,
            gate,
            conn: None,
            batches: Arc::clone(&batches),
            checkpoints,
            commits: 0,
        };
        std::thread::Builder::new()
            .name("tokend-sqlite-writer".into())
            .spawn(move || writer.serve(jobs))?;
        Ok(SqliteWriter {
            queue,
            timeout,
            batches,
            #[cfg(test)]
            checkpoints: made,
        })
    }

    /// Runs `job` in the next batch; its outcome once the batch committed.
    pub async fn write<T, F, Fut>(&self, job: F) -> Result<T>
    where
        F: FnOnce(TokenTxn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue_up(Job::new(jobs::registry(job), reply), answer)
            .await
    }

    /// Runs `work`'s statements on the writer's connection in the next
    /// batch, in a savepoint of their own, as [`write`](Self::write) runs a
    /// registry job: for the other tables written on the hot paths.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue_up(Job::new(jobs::statements(work), reply), answer)
            .await
    }

    async fn queue_up<T>(
        &self,
        job: Box<dyn Queued>,
        answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, self.queue.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(unavailable("the SQLite writer stopped")),
            Err(_) => {
                return Err(unavailable(
                    "the registry's write queue stayed full for database_timeout",
                ));
            }
        }
        telemetry::metrics::registry_writes_waiting(self.waiting());
        answer
            .await
            .unwrap_or_else(|_| Err(unavailable("the SQLite writer stopped")))
    }

    /// Jobs in the queue now.
    pub(super) fn waiting(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Checkpoints made so far by the checkpointing thread.
    #[cfg(test)]
    pub(super) fn checkpoints(&self) -> u64 {
        self.checkpoints
            .as_ref()
            .map_or(0, |made| made.load(Ordering::Acquire))
    }

    /// Batches run so far.
    #[cfg(test)]
    pub(super) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter").finish_non_exhaustive()
    }
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    busy_timeout: Duration,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Kept from batch to batch while they succeed.
    conn: Option<Conn>,
    batches: Arc<AtomicU64>,
    /// The checkpointing thread, asked every `CHECKPOINT_EVERY` commits.
    checkpoints: Option<Checkpoints>,
    /// Commits since the last checkpoint asked for.
    commits: u32,
}

impl Writer {
    fn serve(mut self, mut jobs: mpsc::Receiver<Box<dyn Queued>>) {
        while let Some(first) = jobs.blocking_recv() {
            let gate = self.gate.clone();
            let turn = gate.as_ref().map(|gate| gate.blocking_lock());
            // Taken after the turn: what queued while sqlx's writer had it
            // joins this batch.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let committed = self.commit(&mut batch);
            drop(turn);
            if let Err(why) = &committed {
                tracing::warn!(error = %why, "a batch of registry writes failed");
            }
            telemetry::metrics::registry_batch(batch.len(), committed.is_ok());
            self.batches.fetch_add(1, Ordering::Release);
            for job in batch {
                job.finish(&committed);
            }
        }
    }

    /// Runs `batch` in one transaction, each job in a savepoint, and commits.
    /// A connection that failed is not trusted again.
    fn commit(&mut self, batch: &mut [Box<dyn Queued>]) -> std::result::Result<(), String> {
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
        if self.checkpoints.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
        }
        Ok(Arc::new(Mutex::new(conn)))
    }
}

/// A connection that writes the database in `path`, set as sqlx's are.
fn open(path: &std::path::Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
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

mod jobs;
#[cfg(test)]
mod tests;
