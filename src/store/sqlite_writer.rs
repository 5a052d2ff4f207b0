//! SQLite: the registry's write transactions, committed in groups on one
//! connection.
//!
//! Through sqlx, each statement of a registration was a hand-off to the
//! connection's thread and back, and the sixteen requests of a load took
//! turns on the one writer connection: a quarter of the CPU went to the
//! kernel's scheduler (`bench/profile-refresh.md`). Here a request queues
//! its job and waits for one answer. One task at a time takes every job
//! waiting, runs each in a savepoint of one transaction, and commits them
//! together: a job that fails is rolled back to its savepoint and fails
//! alone, and no job hears it succeeded before the commit that holds it, so
//! no client ever holds a token the registry lacks.
//!
//! That task is spawned by the job that finds none running, and ends when
//! the queue is empty. It runs on tokio's workers: a thread of its own had
//! to be woken for every batch, and woke every caller from outside the
//! runtime, and on this project's virtual machine a wake-up on the other
//! core costs about 25 µs with that core idle meanwhile
//! (`bench/profile-refresh.md`). A job's statements run in place: the
//! registry's operations on SQLite ([`super::sqlite_txn`]) never wait, so a
//! job's future is done after one poll, and a batch holds its worker for
//! as long as SQLite takes to commit it.
//!
//! The queue is bounded: a request waits for room up to `database_timeout`,
//! then gets a 503, as it would waiting for a connection.

use std::{
    collections::VecDeque,
    future::Future,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};

use super::{TokenTxn, sqlite_checkpoints::Checkpoints, sqlite_txn::unavailable};
use crate::{error::Result, telemetry};
use connection::{Writer, open};
use jobs::{Job, Queued};

/// Jobs waiting for the writer at most; more wait for room.
pub const QUEUE_CAPACITY: usize = 1024;

/// Jobs committed together at most: a batch holds SQLite's write lock, and
/// the other writers (sqlx's) wait for it.
const MAX_BATCH: usize = 128;

/// The queue to the writer; its connection is closed when the last clone
/// of the writer is dropped and no batch runs.
pub struct SqliteWriter {
    shared: Arc<Shared>,
    timeout: Duration,
    /// Batches committed or failed (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    batches: Arc<AtomicU64>,
    /// Checkpoints the checkpointing thread made (read by the tests).
    #[cfg(test)]
    checkpoints: Option<Arc<AtomicU64>>,
}

/// What the callers and the task that runs the batches share.
struct Shared {
    queue: Mutex<Queue>,
    /// One permit per job the queue has room for.
    room: Semaphore,
    /// Taken by the one task that runs batches, and by nothing else.
    writer: Mutex<Writer>,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
}

struct Queue {
    jobs: VecDeque<Box<dyn Queued>>,
    /// Whether a task runs the batches now (it takes every job queued
    /// before it stops).
    leading: bool,
}

impl SqliteWriter {
    /// Starts the writer of the database in `path`; it opens its connection
    /// at its first batch (and again after a batch that failed).
    pub fn start(
        path: PathBuf,
        timeout: Duration,
        gate: Option<Arc<tokio::sync::Mutex<()>>>,
    ) -> Self {
        Self::with_capacity(path, timeout, gate, QUEUE_CAPACITY)
    }

    pub(super) fn with_capacity(
        path: PathBuf,
        timeout: Duration,
        gate: Option<Arc<tokio::sync::Mutex<()>>>,
        capacity: usize,
    ) -> Self {
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
            conn: None,
            batches: Arc::clone(&batches),
            checkpoints,
            commits: 0,
        };
        let shared = Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                leading: false,
            }),
            room: Semaphore::new(capacity.max(1)),
            writer: Mutex::new(writer),
            gate,
        };
        SqliteWriter {
            shared: Arc::new(shared),
            timeout,
            batches,
            #[cfg(test)]
            checkpoints: made,
        }
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
        match tokio::time::timeout(self.timeout, self.shared.room.acquire()).await {
            Ok(Ok(permit)) => permit.forget(),
            Ok(Err(_)) => return Err(unavailable("the SQLite writer stopped")),
            Err(_) => {
                return Err(unavailable(
                    "the registry's write queue stayed full for database_timeout",
                ));
            }
        }
        let (lead, waiting) = {
            let mut queue = self.shared.queue();
            queue.jobs.push_back(job);
            (
                !std::mem::replace(&mut queue.leading, true),
                queue.jobs.len(),
            )
        };
        telemetry::metrics::registry_writes_waiting(waiting);
        if lead {
            // A task of its own: a caller that gives up (its request
            // dropped) must not take the batches' runner with it.
            tokio::spawn(Arc::clone(&self.shared).lead());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(unavailable("the SQLite writer stopped")))
    }

    /// Jobs in the queue now.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.shared.queue().jobs.len()
    }

    /// Whether a task runs the batches now.
    #[cfg(test)]
    pub(super) fn leading(&self) -> bool {
        self.shared.queue().leading
    }

    /// Checkpoints made so far by the checkpointing thread.
    #[cfg(test)]
    pub(super) fn checkpoints(&self) -> u64 {
        self.checkpoints
            .as_ref()
            .map_or(0, |made| made.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Batches run so far.
    #[cfg(test)]
    pub(super) fn batches(&self) -> u64 {
        self.batches.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter").finish_non_exhaustive()
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes up to `max` jobs from the queue into `batch` and gives their
    /// room back; how many it took.
    fn take(&self, batch: &mut Vec<Box<dyn Queued>>, max: usize) -> usize {
        let taken = {
            let mut queue = self.queue();
            let n = queue.jobs.len().min(max);
            batch.extend(queue.jobs.drain(..n));
            n
        };
        self.room.add_permits(taken);
        taken
    }

    /// The first job of the next batch, or `None` when the queue is empty:
    /// then the lead is given up under the same lock, so the next job
    /// queued starts a task of its own.
    fn first(&self) -> Option<Box<dyn Queued>> {
        let first = {
            let mut queue = self.queue();
            let first = queue.jobs.pop_front();
            queue.leading = first.is_some();
            first
        };
        if first.is_some() {
            self.room.add_permits(1);
        }
        first
    }

    /// Runs batches until the queue is empty. The first job is taken
    /// before the turn, the rest after it: what queued while sqlx's writer
    /// had the turn joins this batch.
    async fn lead(self: Arc<Self>) {
        let lead = Lead(&self);
        while let Some(first) = self.first() {
            let turn = match &self.gate {
                Some(gate) => Some(gate.lock().await),
                None => None,
            };
            let mut batch = vec![first];
            self.take(&mut batch, MAX_BATCH - 1);
            let committed = self
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .commit(&mut batch);
            drop(turn);
            if let Err(why) = &committed {
                tracing::warn!(error = %why, "a batch of registry writes failed");
            }
            telemetry::metrics::registry_batch(batch.len(), committed.is_ok());
            for job in batch {
                job.finish(&committed);
            }
            // Every so many batches, the worker's other tasks run: the
            // callers just answered among them. Yielding after every batch
            // measured slower (`bench/profile-refresh.md`).
            tokio::task::consume_budget().await;
        }
        // `first` gave the lead up: a task started since may hold it now.
        std::mem::forget(lead);
    }
}

/// Held by the task that runs the batches. If that task ends any other way
/// than by finding the queue empty (a panic, or the runtime shutting down
/// while it waits for the turn),
/// the jobs waiting fail at once, and the lead is given up for the next
/// job, instead of leaving their callers waiting for a task that is gone.
struct Lead<'a>(&'a Shared);

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.queue();
        if queue.leading {
            let abandoned = std::mem::take(&mut queue.jobs);
            queue.leading = false;
            drop(queue);
            self.0.room.add_permits(abandoned.len());
            let why = Err("the registry's writer stopped".to_owned());
            for job in abandoned {
                job.finish(&why);
            }
        }
    }
}

mod connection;
mod jobs;
#[cfg(test)]
mod tests;
