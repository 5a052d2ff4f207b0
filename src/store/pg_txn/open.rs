//! A write transaction begun for a token on PostgreSQL: `BEGIN`, the
//! advisory locks of the token's tree and user, and the look-up of the token
//! under them, in one round trip. The job that follows finds the locks
//! taken and the row read, and adds only its own statements: a refresh is
//! three round trips (this, its registration, `COMMIT`).
//!
//! The three statements travel as one simple query, each with a snapshot of
//! its own: the look-up starts after the locks are granted, so it sees every
//! change committed by an expiry the locks waited for. The locks and the
//! look-up are statements prepared on each connection ([`prepared`]), so
//! they are not planned again; their one parameter, the `jti`, is a
//! [`Uuid`] printed by this process, never a client's text.

use std::sync::Arc;

use entity::devices;
use sea_orm::{
    FromQueryResult, QueryResult,
    sqlx::{self, AssertSqlSafe, Row},
};
use uuid::Uuid;

use super::{Found, PgTxn, Registrations, State, decode_row, key, lock_function};
use crate::{
    db::pg_conns::{PgConns, sqlx_error, still_usable},
    error::{Error, Result},
};

/// The token's row, read as [`find_by_jti`](super::find_by_jti) reads it,
/// and its device (`C_`).
const LOOK_UP: &str = pg_token_query!(
    r#", d.id AS "C_id", d.user_id AS "C_user_id", d.user_agent AS "C_user_agent", d.client_address AS "C_client_address", d.first_seen AS "C_first_seen", d.last_seen AS "C_last_seen""#,
    "LEFT JOIN devices d ON d.id = t.device_id ",
    "WHERE t.jti = "
);

/// [`key`](super::key) of the uuid in `column`, computed by PostgreSQL: the first
/// eight bytes of the SHA-256 of its text, little-endian.
pub(super) fn key_of(column: &str) -> String {
    let bytes: Vec<String> = (0..8)
        .map(|i| format!("(get_byte(d, {i})::int8 << {})", 8 * i))
        .collect();
    format!(
        "(SELECT {} FROM (SELECT sha256(convert_to({column}::text, 'UTF8')) AS d OFFSET 0) AS digest)",
        bytes.join(" | ")
    )
}

/// The statements [`open`] runs, prepared on each held connection: the
/// locks of a token's tree and then user, shared or not, and its look-up.
pub(in crate::store) fn prepared() -> String {
    let locks = |shared: bool| {
        let lock = lock_function(shared);
        format!(
            "PREPARE {name}(uuid) AS SELECT {lock}({tree}), {lock}({user}) \
             FROM tokens t WHERE t.jti = $1; ",
            name = locks_statement(shared),
            tree = key_of("t.root_id"),
            user = key_of("t.user_id"),
        )
    };
    format!(
        "{}{}PREPARE tokend_token(uuid) AS {LOOK_UP}$1",
        locks(true),
        locks(false),
    )
}

/// The prepared statement that takes a token's locks.
fn locks_statement(shared: bool) -> &'static str {
    if shared {
        "tokend_lock_shared"
    } else {
        "tokend_lock"
    }
}

/// The simple query that begins the transaction of `jti`.
fn opening(jti: Uuid, shared: bool) -> String {
    let locks = locks_statement(shared);
    format!("BEGIN; EXECUTE {locks}('{jti}'); EXECUTE tokend_token('{jti}')")
}

/// Begins a write transaction holding the locks of `jti`'s tree and user
/// (tree first, shared when `shared`) and reads the token under them. The
/// transaction is `None` when there is no such token: it has then been
/// rolled back. A registration before any other write goes to
/// `registrations`, when given.
pub(in crate::store) async fn open(
    conns: &Arc<PgConns>,
    jti: Uuid,
    shared: bool,
    registrations: Option<&Registrations>,
) -> Result<(Found, Option<PgTxn>)> {
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let rows = sqlx::raw_sql(AssertSqlSafe(opening(jti, shared)))
                .fetch_all(lent.conn())
                .await
                .map_err(sqlx_error);
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    // The server refused a statement: the transaction is
                    // aborted, and the connection sound.
                    if still_usable(&e)
                        && sqlx::raw_sql("ROLLBACK").execute(lent.conn()).await.is_ok()
                    {
                        lent.give_back();
                    }
                    return Err(Error::from(e));
                }
            };
            // The lock statement's row has no `A_id`.
            let row = (rows.into_iter())
                .find(|row| row.try_column("A_id").is_ok())
                .map(QueryResult::from);
            let found = row.as_ref().map(decode_row).transpose()?;
            let device = match &row {
                Some(row) => devices::Model::from_query_result_optional(row, "C_")?,
                None => None,
            };
            let Some((token, _)) = &found else {
                sqlx::raw_sql("ROLLBACK")
                    .execute(lent.conn())
                    .await
                    .map_err(sqlx_error)?;
                lent.give_back();
                return Ok((None, None));
            };
            let held = [Some(token.root_id), token.user_id]
                .into_iter()
                .flatten()
                .map(|id| (key(id), shared))
                .collect();
            let state = State {
                lent,
                begun: true,
                broken: false,
                held,
                read: Some((jti, found.clone())),
                device,
                registrations: registrations.cloned(),
                wrote: false,
                apart: false,
                alone: false,
            };
            Ok((found, Some(PgTxn(Arc::new(tokio::sync::Mutex::new(state))))))
        })
        .await
}
