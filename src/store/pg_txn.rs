//! The registry's hot path on PostgreSQL: the look-up of a token and the
//! write transactions of [`TokenTxn`](super::TokenTxn), on connections held
//! by [`PgConns`] rather than borrowed from sqlx's pool (whose checks cost
//! two round trips per borrow), in as few round trips as the statements
//! allow:
//!
//! - the transaction's `BEGIN` travels with its first lock;
//! - a registration's device and rows are written by one statement;
//! - the statements are prepared once per connection.
//!
//! - a refresh's transaction begins with its locks and the look-up of the
//!   token under them, in one round trip ([`open`]);
//! - the look-ups of authenticated calls, and the registrations of
//!   refreshes, go in groups, many calls' in one statement ([`Groups`]).
//!
//! A refresh is then two round trips of its own and its share of a group's
//! where it was eleven. Every call runs within `database_timeout`
//! ([`PgConns::within`]).

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{devices, tokens, users};
use sea_orm::{
    FromQueryResult, QueryResult,
    sqlx::{self, AssertSqlSafe, postgres::PgRow},
};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{TokenTxn, lock_key};
use crate::{
    db::pg_conns::{Lent, PgConns, sqlx_error, still_usable},
    error::{Error, Result},
};

/// A token's row and its user, named as sea-orm's `find_also_related`
/// names them (`A_` the token, `B_` the user), for the rows `condition`
/// picks.
macro_rules! pg_token_query {
    ($condition:literal) => {
        pg_token_query!("", "", $condition)
    };
    // With more columns (after a comma) and joins.
    ($columns:literal, $joins:literal, $condition:literal) => {
        concat!(
            r#"SELECT t.id AS "A_id", t.jti AS "A_jti", t.token_type AS "A_token_type", "#,
            r#"t.parent_id AS "A_parent_id", t.root_id AS "A_root_id", "#,
            r#"t.user_id AS "A_user_id", t.issued_at AS "A_issued_at", "#,
            r#"t.expires_at AS "A_expires_at", t.expired_at AS "A_expired_at", "#,
            r#"t.rotated_at AS "A_rotated_at", t.device_id AS "A_device_id", "#,
            r#"u.id AS "B_id", u.username AS "B_username", "#,
            r#"u.username_key AS "B_username_key", u.password_hash AS "B_password_hash", "#,
            r#"u.is_active AS "B_is_active", u.is_admin AS "B_is_admin", "#,
            r#"u.created_at AS "B_created_at", u.last_login AS "B_last_login" "#,
            $columns,
            " FROM tokens t LEFT JOIN users u ON u.id = t.user_id ",
            $joins,
            $condition
        )
    };
}

type Found = Option<(tokens::Model, Option<users::Model>)>;

mod lookups;
mod open;
mod register;
mod registrations;
pub(super) use lookups::Lookups;
pub(super) use open::{open, prepared};
pub(super) use registrations::Registrations;

/// The statements many calls share: the look-ups of authenticated calls
/// and the registrations of refreshes.
#[derive(Clone, Debug)]
pub struct Groups {
    pub(super) lookups: Lookups,
    pub(super) registrations: Registrations,
}

impl Groups {
    /// Starts the readers and the writer on the current runtime.
    pub fn start(conns: Arc<PgConns>) -> Self {
        Groups {
            lookups: Lookups::start(Arc::clone(&conns)),
            registrations: Registrations::start(conns),
        }
    }
}

/// How far a device's `last_seen` may lag on PostgreSQL.
pub const LAST_SEEN_STEP: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn decode(row: Option<PgRow>) -> Result<Found> {
    Ok(row
        .map(|row| decode_row(&QueryResult::from(row)))
        .transpose()?)
}

fn decode_row(
    row: &QueryResult,
) -> std::result::Result<(tokens::Model, Option<users::Model>), sea_orm::DbErr> {
    let token = tokens::Model::from_query_result(row, "A_")?;
    let user = users::Model::from_query_result_optional(row, "B_")?;
    Ok((token, user))
}

/// Runs `job` in a write transaction on a held connection, as
/// [`TokenStore::write`](super::TokenStore::write) promises: committed when
/// it returns `Ok`, rolled back when it returns `Err` or misses the
/// deadline.
pub(super) async fn write<T, F, Fut>(conns: &Arc<PgConns>, job: F) -> Result<T>
where
    F: FnOnce(TokenTxn) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    conns
        .within(async { run(PgTxn::new(conns.lend().await?, false), job).await })
        .await
}

/// A registration on its own: one statement, sent without `BEGIN` and
/// `COMMIT`, so its own transaction.
pub(super) async fn register_alone(
    conns: &Arc<PgConns>,
    registration: super::Registration,
) -> Result<bool> {
    conns
        .within(async {
            let txn = PgTxn::new(conns.lend().await?, false);
            txn.0.lock().await.alone = true;
            run(txn, |txn| async move { txn.register(registration).await }).await
        })
        .await
}

/// [`write`] in the transaction [`open`] began.
pub(super) async fn write_in<T, F, Fut>(conns: &Arc<PgConns>, txn: PgTxn, job: F) -> Result<T>
where
    F: FnOnce(TokenTxn) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    conns.within(run(txn, job)).await
}

/// Runs `job` in `txn` and ends the transaction.
async fn run<T, F, Fut>(txn: PgTxn, job: F) -> Result<T>
where
    F: FnOnce(TokenTxn) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let result = job(TokenTxn::postgres(txn.clone())).await;
    let State {
        mut lent,
        begun,
        broken,
        apart,
        ..
    } = Arc::try_unwrap(txn.0)
        .map_err(|_| Error::Unexpected(anyhow::anyhow!("a job kept its transaction")))?
        .into_inner();
    if broken {
        // Dropped: the server rolls back what it had begun.
        return result;
    }
    if !begun {
        lent.give_back();
        return result;
    }
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    match sqlx::raw_sql(end).execute(lent.conn()).await {
        Ok(_) => {
            lent.give_back();
            result
        }
        // A commit that fails is the call's failure, unless what the
        // transaction wrote was committed apart; a rollback that fails
        // changes nothing for the caller.
        Err(e) if result.is_ok() && !apart => Err(Error::from(sqlx_error(e))),
        Err(_) => result,
    }
}

/// A write transaction on a held connection, shared by the job's clones of
/// its [`TokenTxn`].
#[derive(Clone)]
pub(super) struct PgTxn(Arc<Mutex<State>>);

struct State {
    lent: Lent,
    /// Whether `BEGIN` was sent: it travels with the first lock.
    begun: bool,
    /// Whether the connection failed (not the server refusing a
    /// statement): it is then closed, not given back.
    broken: bool,
    /// The advisory locks taken, each with whether it is shared.
    held: Vec<(i64, bool)>,
    /// The row [`open`] read under its locks, with its `jti`: what the
    /// job's first look-up of that `jti` gets while no other statement has
    /// run since.
    read: Option<(Uuid, Found)>,
    /// The device of the token [`open`] read: a registration from it,
    /// seen within LAST_SEEN_STEP, needs only its id.
    device: Option<devices::Model>,
    /// Where a transaction [`open`] began registers while it has written
    /// nothing (`wrote`): its rows then go in a group, committed apart
    /// (`apart`), under the locks this transaction holds.
    registrations: Option<Registrations>,
    wrote: bool,
    apart: bool,
    /// Sends its one statement outside any transaction ([`register_alone`]).
    alone: bool,
}

impl PgTxn {
    fn new(lent: Lent, begun: bool) -> Self {
        PgTxn(Arc::new(Mutex::new(State {
            lent,
            begun,
            broken: false,
            held: Vec::new(),
            read: None,
            device: None,
            registrations: None,
            wrote: false,
            apart: false,
            alone: false,
        })))
    }
}

impl State {
    /// Whether `key` is held, exclusively or, when `shared` will do, shared.
    fn holds(&self, key: i64, shared: bool) -> bool {
        self.held.iter().any(|&(k, s)| k == key && (shared || !s))
    }

    /// The connection, inside the transaction, for a statement: what
    /// [`open`] read is then no longer the latest.
    async fn conn(&mut self) -> Result<&mut sqlx::PgConnection> {
        self.read = None;
        if !self.begun && !self.alone {
            let begun = sqlx::raw_sql("BEGIN").execute(self.lent.conn()).await;
            self.check(begun)?;
            self.begun = true;
        }
        Ok(self.lent.conn())
    }

    /// `done` as the crate's result, the connection marked broken when
    /// it failed.
    fn check<T>(&mut self, done: Result<T, sqlx::Error>) -> Result<T> {
        done.map_err(|e| {
            let e = sqlx_error(e);
            self.broken |= !still_usable(&e);
            Error::from(e)
        })
    }
}

impl PgTxn {
    /// Takes the transaction-scoped advisory locks of `ids`, in their
    /// order (shared ones when `shared`), beginning the transaction in the
    /// same round trip; those it holds already are not taken again.
    pub(super) async fn lock(&self, ids: &[Uuid], shared: bool) -> Result<()> {
        let mut state = self.0.lock().await;
        let keys: Vec<i64> = (ids.iter().map(|&id| key(id)))
            .filter(|&key| !state.holds(key, shared))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        // Integers only: nothing here comes from a client.
        let calls: Vec<String> = keys
            .iter()
            .map(|k| format!("{}({k})", lock_function(shared)))
            .collect();
        let begin = if state.begun { "" } else { "BEGIN; " };
        let sql = format!("{begin}SELECT {}", calls.join(", "));
        state.read = None;
        let done = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(state.lent.conn())
            .await;
        state.check(done)?;
        state.begun = true;
        state.held.extend(keys.into_iter().map(|key| (key, shared)));
        Ok(())
    }

    pub(super) async fn find_by_jti(&self, jti: Uuid) -> Result<Found> {
        const SQL: &str = pg_token_query!("WHERE t.jti = $1");
        let mut state = self.0.lock().await;
        if let Some((read, found)) = state.read.take()
            && read == jti
        {
            return Ok(found);
        }
        let row = sqlx::query(SQL)
            .bind(jti)
            .fetch_optional(state.conn().await?)
            .await;
        decode(state.check(row)?)
    }

    pub(super) async fn child_of_type(&self, parent_id: Uuid, kind: &str) -> Result<Found> {
        const SQL: &str = pg_token_query!("WHERE t.parent_id = $1 AND t.token_type = $2 LIMIT 1");
        let mut state = self.0.lock().await;
        let row = sqlx::query(SQL)
            .bind(parent_id)
            .bind(kind)
            .fetch_optional(state.conn().await?)
            .await;
        decode(state.check(row)?)
    }

    pub(super) async fn rotate(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        const SQL: &str = "UPDATE tokens SET rotated_at = $1 \
             WHERE id = $2 AND rotated_at IS NULL AND expired_at IS NULL";
        let mut state = self.0.lock().await;
        state.wrote = true;
        let done = sqlx::query(SQL)
            .bind(now)
            .bind(id)
            .execute(state.conn().await?)
            .await;
        Ok(state.check(done)?.rows_affected() == 1)
    }

    /// Expires the active tokens of a tree but `keep`.
    pub(super) async fn expire_tree_except(
        &self,
        root_id: Uuid,
        keep: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        // The twin of `tokens::active_at`.
        const SQL: &str = "UPDATE tokens SET expired_at = $1 \
             WHERE root_id = $2 AND id <> $3 \
             AND expired_at IS NULL AND rotated_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1)";
        let mut state = self.0.lock().await;
        state.wrote = true;
        let done = sqlx::query(SQL)
            .bind(now)
            .bind(root_id)
            .bind(keep)
            .execute(state.conn().await?)
            .await;
        Ok(state.check(done)?.rows_affected())
    }
}

/// The advisory lock key of a tree or a user, by its id: what every path
/// locks it under (`open` computes the same in SQL).
fn key(id: Uuid) -> i64 {
    lock_key(&id.to_string())
}

/// The function that takes a transaction's advisory lock.
fn lock_function(shared: bool) -> &'static str {
    if shared {
        "pg_advisory_xact_lock_shared"
    } else {
        "pg_advisory_xact_lock"
    }
}

#[cfg(test)]
mod tests;
