//! The throttle's statements on PostgreSQL, on the connections the
//! registry's hot path holds ([`PgConns`]) instead of sea-orm's pool.
//! Through the pool each of a login's statements cost two more round trips
//! (sqlx pings a connection when it lends it and when it comes back), and
//! the admission's transaction sent `BEGIN` and its locks apart: a login
//! was nineteen round trips to a PostgreSQL process on the cores hashing
//! its password. The statements are those sea-orm makes in the parent
//! module (a unit test runs both on the same rows).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    DbErr,
    sqlx::{self, AssertSqlSafe, PgConnection, Row},
};
use uuid::Uuid;

use super::{Attempts, Window};
use crate::{
    db::pg_conns::{PgConns, sqlx_error, still_usable},
    error::Result,
    store::lock_key,
};

/// Both keys' attempts in one statement, so in one snapshot. An empty key
/// is bound as NULL, which equals nothing: it counts no row.
const COUNT: &str = "SELECT \
     COUNT(*) FILTER (WHERE username = $1), \
     COUNT(*) FILTER (WHERE username = $1 AND pending AND failed_at > $4), \
     MIN(failed_at) FILTER (WHERE username = $1 AND NOT (pending AND failed_at > $4)), \
     COUNT(*) FILTER (WHERE client_address = $2), \
     COUNT(*) FILTER (WHERE client_address = $2 AND pending AND failed_at > $4), \
     MIN(failed_at) FILTER (WHERE client_address = $2 AND NOT (pending AND failed_at > $4)) \
     FROM login_failures WHERE (username = $1 OR client_address = $2) AND failed_at > $3";

const INSERT: &str = "INSERT INTO login_failures \
     (id, username, client_address, failed_at, pending) VALUES ($1, $2, $3, $4, true)";

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
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let counted = count_on(lent.conn(), username, address, window).await;
            Ok(lent.give_back_unless_broken(counted)?)
        })
        .await
}

async fn count_on(
    conn: &mut PgConnection,
    username: &str,
    address: &str,
    window: Window,
) -> std::result::Result<(Attempts, Attempts), DbErr> {
    if username.is_empty() && address.is_empty() {
        return Ok(Default::default());
    }
    let key = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let row = sqlx::query(COUNT)
        .bind(key(username))
        .bind(key(address))
        .bind(window.since)
        .bind(window.stale_before)
        .fetch_one(conn)
        .await
        .map_err(sqlx_error)?;
    let attempts = |first: usize| -> std::result::Result<Attempts, sqlx::Error> {
        let total: i64 = row.try_get(first)?;
        let pending: i64 = row.try_get(first + 1)?;
        Ok(Attempts {
            failed: (total - pending).max(0) as u64,
            oldest_failed: row.try_get(first + 2)?,
            pending: pending.max(0) as u64,
        })
    };
    Ok((
        attempts(0).map_err(sqlx_error)?,
        attempts(3).map_err(sqlx_error)?,
    ))
}

/// As [`LoginFailureStore::admit`](super::LoginFailureStore::admit): the
/// locks of the username and then the address, taken as the transaction
/// begins (one round trip), the count after they are granted, and the
/// attempt's row.
pub(super) async fn admit(
    conns: &Arc<PgConns>,
    username: &str,
    address: &str,
    window: Window,
    at: DateTime<Utc>,
    admits: impl FnOnce(&Attempts, &Attempts) -> bool,
) -> Result<(Attempts, Attempts, Option<Uuid>)> {
    // Integers only: nothing here is a client's text.
    let [by_name, by_address] = super::lock_names(username, address);
    let begin = format!(
        "BEGIN; SELECT pg_advisory_xact_lock({}), pg_advisory_xact_lock({})",
        lock_key(&by_name),
        lock_key(&by_address),
    );
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let conn = lent.conn();
            let admitted = async {
                sqlx::raw_sql(AssertSqlSafe(begin))
                    .execute(&mut *conn)
                    .await
                    .map_err(sqlx_error)?;
                let (by_username, by_address) = count_on(conn, username, address, window).await?;
                if !admits(&by_username, &by_address) {
                    return Ok((by_username, by_address, None));
                }
                let id = Uuid::now_v7();
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(username)
                    .bind(address)
                    .bind(at)
                    .execute(&mut *conn)
                    .await
                    .map_err(sqlx_error)?;
                Ok::<_, DbErr>((by_username, by_address, Some(id)))
            }
            .await;
            let end = match &admitted {
                Ok((_, _, Some(_))) => "COMMIT",
                Ok(_) => "ROLLBACK",
                // Refused by the server, the transaction is aborted and the
                // connection sound; failed otherwise, it is dropped, and the
                // server rolls back.
                Err(e) if still_usable(e) => "ROLLBACK",
                Err(_) => return Err(admitted.unwrap_err().into()),
            };
            let ended = sqlx::raw_sql(end).execute(lent.conn()).await;
            let ended = lent.give_back_unless_broken(ended.map_err(sqlx_error));
            let admitted = admitted?;
            ended?;
            Ok(admitted)
        })
        .await
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
async fn execute(
    conns: &Arc<PgConns>,
    query: sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<()> {
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let done = query.execute(lent.conn()).await.map_err(sqlx_error);
            lent.give_back_unless_broken(done)?;
            Ok(())
        })
        .await
}
