//! The throttle's statements on PostgreSQL, on the connections the
//! registry's hot path holds ([`PgConns`]) instead of sea-orm's pool.
//! Through the pool each of a login's statements cost two more round trips
//! (sqlx pings a connection when it lends it and when it comes back), and
//! the admission's transaction sent `BEGIN` and its locks apart: a login
//! was nineteen round trips to a PostgreSQL process on the cores hashing
//! its password. Here the admission is one call of a function of the
//! schema's. The statements count and write what sea-orm's in the parent
//! module do (a unit test runs both on the same rows).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Row};
use uuid::Uuid;

use super::{Attempts, Window};
use crate::{
    db::pg_conns::{PgConns, sqlx_error},
    error::Result,
    store::lock_key,
};

/// Both keys' attempts in one statement, so in one snapshot, counted by
/// the schema's `tokend_login_attempts` (migration 000012), which the
/// admission calls too. An empty key is bound as NULL, which equals
/// nothing: it counts no row.
const COUNT: &str = "SELECT * FROM tokend_login_attempts($1, $2, $3, $4)";

/// A statement with its arguments bound.
type Query = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The admission: locks, count and the attempt's row (see [`admit`]).
const ADMIT: &str = "SELECT * FROM tokend_login_admit($1, $2, $3, $4, $5, $6, $7, $8)";

const SETTLE_FAILED: &str =
    "UPDATE login_failures SET pending = false, failed_at = $2 WHERE id = $1";

const DELETE: &str = "DELETE FROM login_failures WHERE id = $1";

const FORGET_UP_TO: &str = "DELETE FROM login_failures WHERE username = $1 \
     AND (id = $2 OR (NOT pending AND id < $2))";

/// As the parent module's `count`.
pub(super) async fn count(
    conns: &Arc<PgConns>,
    username: &str,
    address: &str,
    window: Window,
) -> Result<(Attempts, Attempts)> {
    if username.is_empty() && address.is_empty() {
        return Ok(Default::default());
    }
    let key = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let query = sqlx::query(COUNT)
        .bind(key(username))
        .bind(key(address))
        .bind(window.since)
        .bind(window.stale_before);
    attempts(conns, query).await
}

/// Runs `query`, whose one row is `tokend_login_attempts`' six columns
/// (`COUNT`'s or `ADMIT`'s), on a held connection: the username's and the
/// address's attempts.
async fn attempts(conns: &Arc<PgConns>, query: Query) -> Result<(Attempts, Attempts)> {
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let counted = async {
                let row = query.fetch_one(lent.conn()).await?;
                let of = |first: usize| -> std::result::Result<Attempts, sqlx::Error> {
                    let total: i64 = row.try_get(first)?;
                    let pending: i64 = row.try_get(first + 1)?;
                    Ok(Attempts {
                        failed: (total - pending).max(0) as u64,
                        oldest_failed: row.try_get(first + 2)?,
                        pending: pending.max(0) as u64,
                    })
                };
                Ok((of(0)?, of(3)?))
            }
            .await
            .map_err(sqlx_error);
            Ok(lent.give_back_unless_broken(counted)?)
        })
        .await
}

/// As [`LoginFailureStore::admit`](super::LoginFailureStore::admit), in one
/// round trip: `tokend_login_admit` (migration `m20261204_000011`) takes
/// the locks of the username and then the address, counts after they are
/// granted, and writes the attempt's row; its implicit transaction ends
/// with the call. When `admits` refuses, the row goes again: until then a
/// login counting the same keys sees one attempt more, never fewer.
pub(super) async fn admit(
    conns: &Arc<PgConns>,
    username: &str,
    address: &str,
    window: Window,
    at: DateTime<Utc>,
    admits: impl FnOnce(&Attempts, &Attempts) -> bool,
) -> Result<(Attempts, Attempts, Option<Uuid>)> {
    let [by_name, by_address] = super::lock_names(username, address);
    let id = Uuid::now_v7();
    let query = sqlx::query(ADMIT)
        .bind(lock_key(&by_name))
        .bind(lock_key(&by_address))
        .bind(username.to_owned())
        .bind(address.to_owned())
        .bind(window.since)
        .bind(window.stale_before)
        .bind(id)
        .bind(at);
    let (by_username, by_address) = attempts(conns, query).await?;
    if admits(&by_username, &by_address) {
        return Ok((by_username, by_address, Some(id)));
    }
    delete(conns, id).await?;
    Ok((by_username, by_address, None))
}

pub(super) async fn settle_failed(conns: &Arc<PgConns>, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    execute(conns, sqlx::query(SETTLE_FAILED).bind(id).bind(at)).await
}

pub(super) async fn delete(conns: &Arc<PgConns>, id: Uuid) -> Result<()> {
    execute(conns, sqlx::query(DELETE).bind(id)).await
}

pub(super) async fn forget_failures_up_to(
    conns: &Arc<PgConns>,
    username: &str,
    id: Uuid,
) -> Result<()> {
    let query = sqlx::query(FORGET_UP_TO).bind(username.to_owned()).bind(id);
    execute(conns, query).await
}

/// Runs one statement, its own transaction, on a held connection.
async fn execute(conns: &Arc<PgConns>, query: Query) -> Result<()> {
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let done = query.execute(lent.conn()).await.map_err(sqlx_error);
            lent.give_back_unless_broken(done)?;
            Ok(())
        })
        .await
}
