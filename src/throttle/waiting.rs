//! The logins of this process waiting for a check of their username to
//! end, one queue per username.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

/// One queue of waiting logins per username. A check that ends wakes the
/// one login of its username that waited longest: a check's end frees one
/// place, and waking every waiter (as a single `Notify` did) made each of
/// them count the attempts again for nothing, two queries apiece, at every
/// login's end.
#[derive(Debug, Default)]
pub(super) struct Waiting(Mutex<HashMap<String, Weak<Queue>>>);

/// The logins of one username waiting in this process, in the order they
/// began to wait.
#[derive(Debug, Default)]
pub(super) struct Queue {
    turns: Notify,
    /// How many wait now.
    waiting: AtomicUsize,
}

impl Queue {
    /// Whether a login already waits: one that comes after it waits
    /// behind it instead of taking the place a check's end frees for it.
    pub(super) fn taken(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }

    /// Waits for a check of this username to end, or `at_most`.
    pub(super) async fn wait(&self, at_most: Duration) {
        struct Waits<'a>(&'a AtomicUsize);
        impl Drop for Waits<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waits = Waits(&self.waiting);
        let _ = tokio::time::timeout(at_most, self.turns.notified()).await;
    }
}

impl Waiting {
    /// The queue of `username`, for a login about to wait.
    pub(super) fn queue(&self, username: &str) -> Arc<Queue> {
        let mut queues = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = queues.get(username).and_then(Weak::upgrade) {
            return queue;
        }
        queues.retain(|_, queue| queue.strong_count() > 0);
        let queue = Arc::new(Queue::default());
        queues.insert(username.to_owned(), Arc::downgrade(&queue));
        queue
    }

    /// A check for `username` ended.
    pub(super) fn ended(&self, username: &str) {
        let queues = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = queues.get(username).and_then(Weak::upgrade) {
            // Kept when nobody waits at this instant: the login between two
            // looks then goes on at once.
            queue.turns.notify_one();
        }
    }
}
