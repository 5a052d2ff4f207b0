//! The jobs the writer runs: the registry's, and other tables'
//! statements, both as work on the writer's connection.

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

/// The writer's side of a queued job.
pub(super) trait Queued: Send {
    /// Runs the job on `conn`, inside its savepoint; whether to keep what
    /// it wrote.
    fn run(&mut self, conn: &Conn) -> bool;
    /// Tells the caller: its own outcome, unless the batch's commit failed.
    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>);
}

/// A job and where its outcome goes.
pub(super) struct Job<F, T> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, T> Job<F, T>
where
    F: FnOnce(&Conn) -> Result<T> + Send,
    T: Send,
{
    /// `work` on the writer's connection, whose outcome goes to `reply`.
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<T>>) -> Box<Self> {
        Box::new(Job {
            work: Some(work),
            outcome: None,
            reply,
        })
    }
}

/// A registry job: its future, run to its end in one poll, on a
/// transaction of the writer's connection.
pub(super) fn registry<F, Fut, T>(job: F) -> impl FnOnce(&Conn) -> Result<T> + Send
where
    F: FnOnce(TokenTxn) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    move |conn| {
        let future = pin!(job(TokenTxn::sqlite(Arc::clone(conn))));
        match future.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => Err(Error::Unexpected(anyhow::anyhow!(
                "a registry job waited inside the SQLite writer"
            ))),
        }
    }
}

/// Other tables' statements, run on the connection itself.
pub(super) fn statements<F, T>(work: F) -> impl FnOnce(&Conn) -> Result<T> + Send
where
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    move |conn| work(&conn.lock().unwrap_or_else(PoisonError::into_inner)).map_err(unavailable)
}

impl<F, T> Queued for Job<F, T>
where
    F: FnOnce(&Conn) -> Result<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Conn) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(Error::Unexpected(anyhow::anyhow!("a writer job panicked"))));
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn finish(self: Box<Self>, committed: &std::result::Result<(), String>) {
        let outcome = match (self.outcome, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(why)) => Err(unavailable(why)),
            (None, Ok(())) => Err(unavailable("the job did not run")),
        };
        // The caller may be gone (its request timed out): what committed
        // stays, as for an answer lost on the way.
        let _ = self.reply.send(outcome);
    }
}
