//! SQLite: the WAL's checkpoints, on a thread of their own.
//!
//! A checkpoint copies the WAL's pages back into the database file and
//! syncs it. Made by the writer thread after a commit (SQLite's
//! autocheckpoint, every 1 000 pages), it held the batch queued behind it
//! for milliseconds: under the refresh load the p99 was 9.5 ms with it and
//! 5.2 ms with no checkpoint at all (8.1–8.7 ms with this thread, which
//! shares the two cores). The writer asks for one every [`CHECKPOINT_EVERY`]
//! commits instead, and this thread makes it, `PASSIVE`: it neither waits
//! for the writer nor holds it up. The writer's own autocheckpoint stays,
//! at a much larger WAL, in case this thread cannot keep up or fails.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
    mpsc,
};

use rusqlite::Connection;

/// Commits between two checkpoints asked for: at about fifteen WAL pages a
/// commit, about SQLite's default of 1 000 pages.
pub const CHECKPOINT_EVERY: u32 = 64;

/// The writer's own autocheckpoint, in WAL pages (40 MiB): a backstop.
pub const BACKSTOP_PAGES: u32 = 10_000;

/// The way to the checkpointing thread; it stops when this is dropped.
pub struct Checkpoints {
    ask: mpsc::SyncSender<()>,
    /// Checkpoints made (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    made: Arc<AtomicU64>,
}

impl Checkpoints {
    /// Starts the thread; `open` gives it a connection to the database
    /// (again after one that failed).
    pub fn start(
        open: impl Fn() -> rusqlite::Result<Connection> + Send + 'static,
    ) -> std::io::Result<Self> {
        // One request waiting is enough: the checkpoint that runs next
        // copies everything committed until then.
        let (ask, asked) = mpsc::sync_channel(1);
        let made = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&made);
        std::thread::Builder::new()
            .name("tokend-sqlite-checkpoints".into())
            .spawn(move || serve(asked, open, counter))?;
        Ok(Checkpoints { ask, made })
    }

    /// Asks for a checkpoint, without waiting.
    pub fn ask(&self) {
        let _ = self.ask.try_send(());
    }

    /// The count of checkpoints made, for the tests.
    #[cfg(test)]
    pub fn made(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.made)
    }
}

fn serve(
    asked: mpsc::Receiver<()>,
    open: impl Fn() -> rusqlite::Result<Connection>,
    made: Arc<AtomicU64>,
) {
    let mut conn = None;
    while asked.recv().is_ok() {
        let result = match conn.take() {
            Some(c) => Ok(c),
            None => open(),
        }
        .and_then(|c| {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            Ok(c)
        });
        match result {
            Ok(c) => {
                conn = Some(c);
                made.fetch_add(1, Ordering::Release);
            }
            // The writer's backstop checkpoints meanwhile; a new connection
            // is opened at the next request.
            Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed"),
        }
    }
}
