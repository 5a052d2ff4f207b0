//! PostgreSQL connections held for the registry's hot path (the look-up
//! of every authenticated call, the write of every issue and refresh),
//! lent as they are instead of through sqlx's pool.
//!
//! sqlx's pool checks a connection with a round trip when it lends it
//! (`test_before_acquire`) and again, unconditionally in sqlx 0.9, when it
//! comes back: a one-statement read cost three round trips, each a switch
//! to the server's process and back on the same cores. Here a connection
//! is trusted while it keeps answering. What bounds a call whose network
//! went silent is the caller's deadline ([`PgConns::within`]): a call that
//! misses it drops its connection, and PostgreSQL rolls back whatever that
//! connection had begun. The server learns of a dropped connection only
//! when it next writes to it; a statement still running (waiting for a lock,
//! say) would hold its transaction's locks until it ended, so each held
//! connection's `statement_timeout` is `database_timeout` too.

use std::{
    future::Future,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sea_orm::{
    DbErr, RuntimeErr,
    error::ConnAcquireErr,
    sqlx::{
        self, AssertSqlSafe, Connection,
        postgres::{PgConnectOptions, PgConnection},
    },
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The held connections of one database: at most `max` lent at once.
pub struct PgConns {
    options: PgConnectOptions,
    timeout: Duration,
    idle: Mutex<Vec<PgConnection>>,
    permits: Arc<Semaphore>,
    max: usize,
    closed: AtomicBool,
    opened: AtomicU64,
    /// SQL run on each new connection (its prepared statements).
    setup: OnceLock<String>,
}

impl std::fmt::Debug for PgConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The options hold the password.
        f.debug_struct("PgConns")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// A connection lent by [`PgConns::lend`]. Dropped without
/// [`give_back`](Lent::give_back) (a failure, a missed deadline, a caller
/// gone), it is closed: nobody knows what state it was left in.
pub struct Lent {
    conn: Option<PgConnection>,
    conns: Arc<PgConns>,
    _permit: OwnedSemaphorePermit,
}

impl PgConns {
    pub fn new(options: PgConnectOptions, max: u32, timeout: Duration) -> Self {
        let max = max.max(1) as usize;
        let statement_timeout = format!("{}ms", timeout.as_millis().max(1));
        PgConns {
            options: options.options([
                ("statement_timeout", statement_timeout.as_str()),
                // The hot path's statements look rows up by key: a plan
                // made once serves every call, where PostgreSQL would
                // otherwise plan each of the first calls again and keep
                // comparing.
                ("plan_cache_mode", "force_generic_plan"),
            ]),
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max)),
            max,
            closed: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            setup: OnceLock::new(),
        }
    }

    /// Runs `work` within `database_timeout`; past it, `work` is dropped
    /// with whatever connection it held and the call is `unavailable`.
    pub async fn within<T, E: From<DbErr>>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout).into()))
    }

    /// An idle connection, or a new one when none is idle; waits while
    /// `max` are lent. Callers bound the wait with [`within`](Self::within).
    pub async fn lend(self: &Arc<Self>) -> Result<Lent, DbErr> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
        if self.closed.load(Ordering::Acquire) {
            return Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed));
        }
        let idle = self.lock_idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        Ok(Lent {
            conn: Some(conn),
            conns: Arc::clone(self),
            _permit: permit,
        })
    }

    /// A new connection, set up as the lent ones are, for a caller that
    /// holds it for itself: it is not one of the `max`.
    pub async fn connect(&self) -> Result<PgConnection, DbErr> {
        if self.is_closed() {
            return Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed));
        }
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(sqlx_error)?;
        if let Some(setup) = self.setup.get() {
            sqlx::raw_sql(AssertSqlSafe(setup.clone()))
                .execute(&mut conn)
                .await
                .map_err(sqlx_error)?;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Has `sql` run on every connection opened from now on, before it is
    /// first lent (the first call's only: every caller sets the same).
    pub fn on_connect(&self, sql: &str) {
        let _ = self.setup.set(sql.to_owned());
    }

    /// Closes the idle connections and refuses to lend any more.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        self.lock_idle().clear();
    }

    /// Connections (lent, idle).
    pub fn counts(&self) -> (u64, u64) {
        let lent = self.max - self.permits.available_permits().min(self.max);
        (lent as u64, self.lock_idle().len() as u64)
    }

    /// How many connections were opened since the start: one per
    /// connection closed after a failure, plus the first ones.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Lent {
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a lent connection is there until it is given back")
    }

    /// Gives the connection back when its last statement was answered, with
    /// a result or an error of the server's (`done`); drops it otherwise.
    /// Only for a connection that holds no transaction.
    pub fn give_back_unless_broken<T>(self, done: Result<T, DbErr>) -> Result<T, DbErr> {
        if done.as_ref().is_ok() || done.as_ref().is_err_and(still_usable) {
            self.give_back();
        }
        done
    }

    /// Puts the connection back among the idle ones. Only for a connection
    /// that answered its last statement and holds no transaction.
    pub fn give_back(mut self) {
        if let Some(conn) = self.conn.take()
            && !self.conns.closed.load(Ordering::Acquire)
        {
            self.conns.lock_idle().push(conn);
        }
    }
}

/// A sqlx error as sea-orm reports it, so that `Error::from` sorts it into
/// "unavailable" and the rest as it does every other database error.
pub fn sqlx_error(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

/// Whether a connection that failed with `e` may still be given back: the
/// server answered with an error, and the connection itself is sound.
pub fn still_usable(e: &DbErr) -> bool {
    match e {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(**e, sea_orm::sqlx::Error::Database(_))
        }
        _ => false,
    }
}
