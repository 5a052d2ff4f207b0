//! The jobs the writer thread runs: the registry's, and other tables'
//! statements.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    pin::pin,
    sync::{Arc, PoisonError},
    task::{Context, Poll, Waker},
};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{
    error::{Error, Result},
    store::{
        TokenTxn,
        sqlite_txn::{Conn, unavailable},
    },
};

/// The writer thread's side of a queued job.
pub(super) trait Queued: Send {
    /// Runs the job on `conn`, inside its savepoint; whether to keep what
    /// it wrote.
    fn run(&mut self, conn: &Conn) -> bool;
    /// Tells the caller: its own outcome, unless the batch's commit failed.
    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>);
}

pub(super) struct Pending<F, T> {
    job: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, T> Pending<F, T> {
    /// `job`, whose outcome goes to `reply`.
    pub(super) fn new(job: F, reply: oneshot::Sender<Result<T>>) -> Box<Self> {
        Box::new(Pending {
            job: Some(job),
            outcome: None,
            reply,
        })
    }
}

impl<F, Fut, T> Queued for Pending<F, T>
where
    F: FnOnce(TokenTxn) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
    T: Send,
{
    fn run(&mut self, conn: &Conn) -> bool {
        let Some(job) = self.job.take() else {
            return false;
        };
        let txn = TokenTxn::sqlite(Arc::clone(conn));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let future = pin!(job(txn));
            match future.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => Err(Error::Unexpected(anyhow::anyhow!(
                    "a registry job waited inside the SQLite writer"
                ))),
            }
        }));
        let outcome = polled.unwrap_or_else(|_| {
            Err(Error::Unexpected(anyhow::anyhow!(
                "a registry job panicked"
            )))
        });
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>) {
        // The caller may be gone (its request timed out): what committed
        // stays, as for an answer lost on the way.
        let _ = self.reply.send(settled(self.outcome, committed));
    }
}

/// A job of other tables' stores: statements run on the connection itself.
pub(super) struct Statements<F, T> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, T> Statements<F, T> {
    /// `work`, whose outcome goes to `reply`.
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<T>>) -> Box<Self> {
        Box::new(Statements {
            work: Some(work),
            outcome: None,
            reply,
        })
    }
}

impl<F, T> Queued for Statements<F, T>
where
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Conn) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            work(&conn.lock().unwrap_or_else(PoisonError::into_inner))
        }));
        let outcome = match ran {
            Ok(done) => done.map_err(unavailable),
            Err(_) => Err(Error::Unexpected(anyhow::anyhow!("a writer job panicked"))),
        };
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>) {
        let _ = self.reply.send(settled(self.outcome, committed));
    }
}

/// What a job's caller hears: its own outcome, unless the batch's commit
/// failed.
fn settled<T>(
    outcome: Option<Result<T>>,
    committed: &std::result::Result<(), String>,
) -> Result<T> {
    match (outcome, committed) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(value)), Ok(())) => Ok(value),
        (_, Err(why)) => Err(unavailable(why)),
        (None, Ok(())) => Err(unavailable("the job did not run")),
    }
}
