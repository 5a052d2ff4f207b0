//! Login throttling: at most `login_max_failures` password checks for one
//! username, and `login_max_failures_per_address` from one client address,
//! may fail within the window; beyond that every login for it is refused
//! with 429 until the window has passed.
//!
//! The limit holds whatever the concurrency, and across replicas: an
//! attempt is recorded in the database, pending, *before* its password is
//! checked, then counted with every other attempt of the window, failed or
//! pending; it goes on only when the count is within the limit. So of N
//! logins in flight at once at most the limit are checked. A login that
//! finds the limit taken by checks still under way waits for them (their
//! user may be logging in from several places at once) rather than being
//! refused; one that finds it taken by failures is refused. A success
//! forgets the username's failures up to its own attempt; a failure stays
//! and counts; an attempt that could not be checked (the database went
//! away) is withdrawn. A pending attempt whose check never ended (the
//! process died) counts as a failure after a minute.

mod waiting;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use uuid::Uuid;
use waiting::Waiting;

use crate::{
    clock::SharedClock,
    error::{Error, Result},
    store::{Attempts, LoginFailureStore, Window},
    telemetry::{self, AUDIT},
};

/// The limits, from the settings (`login_max_failures`,
/// `login_max_failures_per_address`, `login_throttle_window`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_username: u64,
    pub per_address: u64,
    pub window: Duration,
}

impl Limits {
    /// The window's length.
    fn span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX)
    }
}

/// A password check the throttle let through; say how it ended.
#[derive(Debug)]
#[must_use = "say how the check ended: succeeded, failed or abandoned"]
pub struct Attempt {
    id: Uuid,
    username: String,
}

/// What a username or address is counted under: PostgreSQL text cannot hold
/// a NUL byte, and a client must not turn a login into a 503 with one. The
/// stored text is cut to the column's length, so the count is of the cut
/// text too.
fn key(text: &str, max_chars: usize) -> String {
    text.replace('\0', "\u{fffd}")
        .chars()
        .take(max_chars)
        .collect()
}

const USERNAME_CHARS: usize = 150;
const ADDRESS_CHARS: usize = 64;

/// A pending attempt older than this never ended (its process died): it
/// counts as a failure.
const STALE_PENDING: chrono::Duration = chrono::Duration::seconds(60);
/// How long a login waits for checks under way before it is refused.
const WAIT_AT_MOST: std::time::Duration = std::time::Duration::from_secs(20);
/// Between two looks for other replicas' checks, plus up to as much again
/// at random. This process's own checks wake their username's next login
/// at once; each look costs two queries per waiting login.
const WAIT_STEP_MS: u64 = 200;

/// Whether a check may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Free,
    /// Checks under way fill the limit: wait.
    Busy,
    /// Failures fill the limit of `scope` (`username`, `address`):
    /// refused for this long.
    Refused {
        retry_after: u64,
        scope: &'static str,
    },
}

impl Verdict {
    /// `Throttled` when refused (counted, and audited with who was
    /// refused); otherwise nothing.
    fn refuse(self, username: &str, address: &str) -> Result<()> {
        match self {
            Verdict::Refused { retry_after, scope } => {
                refused(scope, username, address, retry_after);
                Err(Error::Throttled { retry_after })
            }
            Verdict::Free | Verdict::Busy => Ok(()),
        }
    }
}

fn refused(scope: &'static str, username: &str, address: &str, retry_after: u64) {
    telemetry::metrics::throttled(scope);
    tracing::warn!(
        target: AUDIT,
        event = "login_throttled",
        scope,
        username = ?username,
        address,
        retry_after,
        "sign-in throttled"
    );
}

#[derive(Debug, Clone)]
pub struct Throttle {
    store: LoginFailureStore,
    limits: Limits,
    clock: SharedClock,
    /// The logins of this process waiting for a check of their username
    /// to end; those of other replicas are seen by looking again.
    waiting: Arc<Waiting>,
}

impl Throttle {
    pub fn new(store: LoginFailureStore, limits: Limits, clock: SharedClock) -> Self {
        Throttle {
            store,
            limits,
            clock,
            waiting: Arc::default(),
        }
    }

    fn window(&self) -> chrono::Duration {
        self.limits.span()
    }

    fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_sub_signed(self.window())
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Lets one password check for `username` from `address` through, or
    /// refuses with `Throttled` when either has used up its checks in the
    /// window. Waits while the limit is taken by checks under way.
    pub async fn begin(&self, username: &str, address: &str) -> Result<Attempt> {
        let (username, address) = (key(username, USERNAME_CHARS), key(address, ADDRESS_CHARS));
        let give_up = tokio::time::Instant::now() + WAIT_AT_MOST;
        // Joined before the first look: a check that ends after it is not
        // missed.
        let queue = self.waiting.queue(&username);
        if queue.taken() {
            // Behind the logins already waiting here: the next check's end
            // wakes the first of them, and a login arriving just then would
            // otherwise take its place, again and again.
            queue.wait(look_again_after()).await;
        }
        loop {
            // A look without writing anything: refused, or busy, already?
            let (by_username, by_address) = self
                .store
                .count(&username, &address, self.window_now())
                .await?;
            let verdict = self.verdict(&by_username, &by_address);
            verdict.refuse(&username, &address)?;
            if verdict == Verdict::Free {
                // Counted again and recorded under the locks of both: of the
                // attempts in flight at once, at most the limit get through.
                let judge = self.judge();
                let (by_username, by_address, admitted) = self
                    .store
                    .admit(
                        &username,
                        &address,
                        self.window_now(),
                        self.clock.now(),
                        move |u, a| judge.verdict(u, a) == Verdict::Free,
                    )
                    .await?;
                if let Some(id) = admitted {
                    return Ok(Attempt { id, username });
                }
                self.verdict(&by_username, &by_address)
                    .refuse(&username, &address)?;
            }
            if tokio::time::Instant::now() >= give_up {
                let scope = self.busy_scope(&by_username);
                refused(scope, &username, &address, 1);
                return Err(Error::Throttled { retry_after: 1 });
            }
            // Woken when a check of this username ends here, or after a
            // while for those of other replicas.
            queue.wait(look_again_after()).await;
        }
    }

    /// Which attempts count now.
    fn window_now(&self) -> Window {
        let now = self.clock.now();
        Window {
            since: self.window_start(now),
            stale_before: now - STALE_PENDING,
        }
    }

    /// Whether a check may start, given the username's and the address's
    /// attempts: refused when failures fill a limit, busy when failures and
    /// checks under way do.
    fn verdict(&self, by_username: &Attempts, by_address: &Attempts) -> Verdict {
        self.judge().verdict(by_username, by_address)
    }

    fn judge(&self) -> Judge {
        Judge {
            limits: self.limits,
            now: self.clock.now(),
        }
    }
    /// Which limit checks under way fill, for a login that waited too
    /// long: the username's when it is full, else the address's.
    fn busy_scope(&self, by_username: &Attempts) -> &'static str {
        let limit = self.limits.per_username;
        if limit > 0 && by_username.failed + by_username.pending >= limit {
            "username"
        } else {
            "address"
        }
    }

    /// The check succeeded: the username's failures up to this attempt are
    /// forgotten, and the attempt itself.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<()> {
        let forgotten = self
            .store
            .forget_failures_up_to(&attempt.username, attempt.id)
            .await;
        self.waiting.ended(&attempt.username);
        forgotten
    }

    /// The check failed: the attempt counts as a failure until the window
    /// has passed.
    pub async fn failed(&self, attempt: Attempt) -> Result<()> {
        self.store.settle_failed(attempt.id, self.clock.now()).await
    }

    /// The check could not be made (not for the password's sake): the
    /// attempt is withdrawn.
    pub async fn abandoned(&self, attempt: Attempt) -> Result<()> {
        let withdrawn = self.store.delete(attempt.id).await;
        self.waiting.ended(&attempt.username);
        withdrawn
    }

    /// Removes attempts older than the window.
    pub async fn purge(&self) -> Result<u64> {
        self.store.purge(self.window_start(self.clock.now())).await
    }
}

/// The limits as of `now`: what [`Throttle::verdict`] decides with, handed
/// to the store's admission, which may decide on another thread.
#[derive(Debug, Clone, Copy)]
struct Judge {
    limits: Limits,
    now: DateTime<Utc>,
}

impl Judge {
    fn verdict(&self, by_username: &Attempts, by_address: &Attempts) -> Verdict {
        let window = self.limits.span();
        let mut busy = false;
        for (attempts, limit, scope) in [
            (by_username, self.limits.per_username, "username"),
            (by_address, self.limits.per_address, "address"),
        ] {
            if limit == 0 {
                continue;
            }
            if attempts.failed >= limit {
                let lifts = attempts.oldest_failed.unwrap_or(self.now) + window;
                return Verdict::Refused {
                    retry_after: seconds_until(self.now, lifts),
                    scope,
                };
            }
            busy |= attempts.failed + attempts.pending >= limit;
        }
        if busy { Verdict::Busy } else { Verdict::Free }
    }
}

/// Whole seconds from `now` until `then`, rounded up (at least 1): a client
/// that waits that long finds the limit lifted.
fn seconds_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    let wait = then - now;
    let whole = wait.num_seconds();
    let rounded = if wait > chrono::Duration::seconds(whole) {
        whole + 1
    } else {
        whole
    };
    rounded.max(1) as u64
}

/// How long a login waits before it looks again (for other replicas'
/// checks): spread out, so that logins waiting together do not all come
/// back together.
fn look_again_after() -> Duration {
    let jitter = rand::random::<u64>() % WAIT_STEP_MS;
    Duration::from_millis(WAIT_STEP_MS + jitter)
}

#[cfg(test)]
mod tests;
