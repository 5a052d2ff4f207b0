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
//! A refresh is then five round trips where it was eleven. Every call runs
//! within `database_timeout` ([`PgConns::within`]).

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{tokens, users};
use sea_orm::{
    FromQueryResult, QueryResult,
    sqlx::{self, AssertSqlSafe, postgres::PgRow},
};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{Registration, TokenTxn};
use crate::{
    db::pg_conns::{Lent, PgConns, sqlx_error, still_usable},
    error::{Error, Result},
};

/// A token's row and its user, named as sea-orm's `find_also_related`
/// names them (`A_` the token, `B_` the user), for the rows `condition`
/// picks.
macro_rules! pg_token_query {
    ($condition:literal) => {
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
            "FROM tokens t LEFT JOIN users u ON u.id = t.user_id ",
            $condition
        )
    };
}

type Found = Option<(tokens::Model, Option<users::Model>)>;

/// How far a device's `last_seen` may lag on PostgreSQL.
pub const LAST_SEEN_STEP: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn decode(row: Option<PgRow>) -> Result<Found> {
    let Some(row) = row else {
        return Ok(None);
    };
    let row = QueryResult::from(row);
    let token = tokens::Model::from_query_result(&row, "A_")?;
    let user = users::Model::from_query_result_optional(&row, "B_")?;
    Ok(Some((token, user)))
}

/// The row of a `jti`, with its user, outside any transaction.
pub(super) async fn find_by_jti(conns: &Arc<PgConns>, jti: Uuid) -> Result<Found> {
    const SQL: &str = pg_token_query!("WHERE t.jti = $1");
    let row = conns
        .within(async {
            let mut lent = conns.lend().await?;
            let row = sqlx::query(SQL)
                .bind(jti)
                .fetch_optional(lent.conn())
                .await
                .map_err(sqlx_error);
            if row.is_ok() || row.as_ref().is_err_and(still_usable) {
                lent.give_back();
            }
            row
        })
        .await?;
    decode(row)
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
        .within(async {
            let state = State {
                lent: conns.lend().await?,
                begun: false,
                broken: false,
            };
            let txn = PgTxn(Arc::new(Mutex::new(state)));
            let result = job(TokenTxn::postgres(txn.clone())).await;
            let State {
                mut lent,
                begun,
                broken,
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
                // A commit that fails is the call's failure; a rollback
                // that fails changes nothing for the caller.
                Err(e) if result.is_ok() => Err(Error::from(sqlx_error(e))),
                Err(_) => result,
            }
        })
        .await
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
}

impl State {
    /// The connection, inside the transaction.
    async fn conn(&mut self) -> Result<&mut sqlx::PgConnection> {
        if !self.begun {
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

/// The rows of a registration, one array parameter per column.
macro_rules! unnest_rows {
    () => {
        "UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[], \
         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], \
         $11::uuid[]) AS r(id, jti, token_type, parent_id, root_id, user_id, issued_at, \
         expires_at, expired_at, rotated_at, device_id)"
    };
}

macro_rules! insert_tokens {
    () => {
        "INSERT INTO tokens (id, jti, token_type, parent_id, root_id, user_id, issued_at, \
         expires_at, expired_at, rotated_at, device_id) "
    };
}

impl PgTxn {
    /// Takes the transaction-scoped advisory locks of `keys`, in their
    /// order (shared ones when `shared`), beginning the transaction in the
    /// same round trip.
    pub(super) async fn lock(&self, keys: &[i64], shared: bool) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let function = if shared {
            "pg_advisory_xact_lock_shared"
        } else {
            "pg_advisory_xact_lock"
        };
        let mut state = self.0.lock().await;
        // Integers only: nothing here comes from a client.
        let calls: Vec<String> = keys.iter().map(|k| format!("{function}({k})")).collect();
        let begin = if state.begun { "" } else { "BEGIN; " };
        let sql = format!("{begin}SELECT {}", calls.join(", "));
        let done = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(state.lent.conn())
            .await;
        state.check(done)?;
        state.begun = true;
        Ok(())
    }

    pub(super) async fn find_by_jti(&self, jti: Uuid) -> Result<Found> {
        const SQL: &str = pg_token_query!("WHERE t.jti = $1");
        let mut state = self.0.lock().await;
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
        let done = sqlx::query(SQL)
            .bind(now)
            .bind(root_id)
            .bind(keep)
            .execute(state.conn().await?)
            .await;
        Ok(state.check(done)?.rows_affected())
    }

    /// As [`TokenTxn::register`]: the device and the rows in one statement;
    /// `Ok(false)` when a row points to a user or parent that is gone.
    pub(super) async fn register(&self, registration: Registration) -> Result<bool> {
        const WITHOUT_DEVICE: &str = concat!(insert_tokens!(), "SELECT r.* FROM ", unnest_rows!());
        // The device's row is written only when it is new or its
        // `last_seen` is older than LAST_SEEN_STEP: a row written is locked
        // until the commit, and every refresh from one device would queue
        // behind the one before, WAL flush and all.
        const WITH_DEVICE: &str = concat!(
            "WITH found AS (SELECT id FROM devices WHERE user_id = $13::uuid \
             AND user_agent = $14::text AND client_address = $15::text), \
             inserted AS (INSERT INTO devices \
             (id, user_id, user_agent, client_address, first_seen, last_seen) \
             SELECT $12::uuid, $13::uuid, $14::text, $15::text, $16::timestamptz, \
             $16::timestamptz WHERE NOT EXISTS (SELECT 1 FROM found) \
             ON CONFLICT (user_id, user_agent, client_address) \
             DO UPDATE SET last_seen = excluded.last_seen RETURNING id), \
             touched AS (UPDATE devices SET last_seen = $16::timestamptz \
             WHERE id IN (SELECT id FROM found) AND last_seen < $17::timestamptz), \
             device AS (SELECT id FROM found UNION ALL SELECT id FROM inserted) ",
            insert_tokens!(),
            "SELECT r.id, r.jti, r.token_type, r.parent_id, r.root_id, r.user_id, \
             r.issued_at, r.expires_at, r.expired_at, r.rotated_at, device.id FROM ",
            unnest_rows!(),
            " CROSS JOIN device"
        );
        let Registration { rows, device } = registration;
        if rows.is_empty() && device.is_none() {
            return Ok(true);
        }
        fn column<T>(rows: &[tokens::Model], f: impl Fn(&tokens::Model) -> T) -> Vec<T> {
            rows.iter().map(f).collect()
        }
        let sql = if device.is_some() {
            WITH_DEVICE
        } else {
            WITHOUT_DEVICE
        };
        let mut query = sqlx::query(sql)
            .bind(column(&rows, |r| r.id))
            .bind(column(&rows, |r| r.jti))
            .bind(column(&rows, |r| r.token_type.clone()))
            .bind(column(&rows, |r| r.parent_id))
            .bind(column(&rows, |r| r.root_id))
            .bind(column(&rows, |r| r.user_id))
            .bind(column(&rows, |r| r.issued_at))
            .bind(column(&rows, |r| r.expires_at))
            .bind(column(&rows, |r| r.expired_at))
            .bind(column(&rows, |r| r.rotated_at))
            .bind(column(&rows, |r| r.device_id));
        if let Some(device) = device {
            query = query
                .bind(Uuid::now_v7())
                .bind(device.user_id)
                .bind(device.user_agent)
                .bind(device.client_address)
                .bind(device.seen_at)
                .bind(device.seen_at - LAST_SEEN_STEP);
        }
        let mut state = self.0.lock().await;
        let done = query.execute(state.conn().await?).await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
            Err(e) => state.check(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests;
