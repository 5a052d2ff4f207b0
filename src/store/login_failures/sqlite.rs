//! The throttle's statements on SQLite in a file, off sqlx: its counts on
//! the calling thread ([`SqliteReader`]), its writes in the writer thread's
//! batches ([`SqliteWriter`]). Through sqlx each of a login's seven
//! statements was a hand-off to a connection thread and back; under obtain
//! load those threads took 1.6 ms of CPU a login, from the password
//! hashing. The statements are those sea-orm makes in the parent module,
//! in the forms sqlx writes (a unit test runs both on the same rows).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

use super::{Attempts, Window};
use crate::store::sqlite_txn::{time, uuid};

/// Both keys' attempts in one statement, so in one snapshot. An empty key
/// is bound as NULL, which equals nothing: it counts no row.
const COUNT: &str = "SELECT \
     SUM(username = ?1), \
     SUM(username = ?1 AND pending AND failed_at > ?4), \
     MIN(CASE WHEN username = ?1 AND NOT (pending AND failed_at > ?4) THEN failed_at END), \
     SUM(client_address = ?2), \
     SUM(client_address = ?2 AND pending AND failed_at > ?4), \
     MIN(CASE WHEN client_address = ?2 AND NOT (pending AND failed_at > ?4) THEN failed_at END) \
     FROM login_failures WHERE (username = ?1 OR client_address = ?2) AND failed_at > ?3";

const INSERT: &str = "INSERT INTO login_failures \
     (id, username, client_address, failed_at, pending) VALUES (?1, ?2, ?3, ?4, 1)";

const SETTLE_FAILED: &str = "UPDATE login_failures SET pending = 0, failed_at = ?2 WHERE id = ?1";

const DELETE: &str = "DELETE FROM login_failures WHERE id = ?1";

const FORGET_UP_TO: &str = "DELETE FROM login_failures WHERE username = ?1 \
     AND (id = ?2 OR (pending = 0 AND id < ?2))";

/// As the parent module's `count`.
pub(super) fn count(
    conn: &Connection,
    username: &str,
    address: &str,
    window: Window,
) -> rusqlite::Result<(Attempts, Attempts)> {
    if username.is_empty() && address.is_empty() {
        return Ok(Default::default());
    }
    let key = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let mut statement = conn.prepare_cached(COUNT)?;
    let counted = statement
        .query_row(
            (
                key(username),
                key(address),
                time(window.since),
                time(window.stale_before),
            ),
            |row| {
                let attempts = |first: usize| -> rusqlite::Result<Attempts> {
                    let total: Option<i64> = row.get(first)?;
                    let pending: Option<i64> = row.get(first + 1)?;
                    let oldest: Option<String> = row.get(first + 2)?;
                    let pending = pending.unwrap_or(0).max(0);
                    Ok(Attempts {
                        failed: (total.unwrap_or(0) - pending).max(0) as u64,
                        oldest_failed: oldest.as_deref().map(parse_time).transpose()?,
                        pending: pending as u64,
                    })
                };
                Ok((attempts(0)?, attempts(3)?))
            },
        )
        .optional()?;
    Ok(counted.unwrap_or_default())
}

fn parse_time(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

/// As [`LoginFailureStore::admit`](super::LoginFailureStore::admit), in the
/// writer's transaction, which holds SQLite's write lock: nothing else
/// admits an attempt between the count and the record.
pub(super) fn admit(
    conn: &Connection,
    username: &str,
    address: &str,
    window: Window,
    at: DateTime<Utc>,
    admits: impl FnOnce(&Attempts, &Attempts) -> bool,
) -> rusqlite::Result<(Attempts, Attempts, Option<Uuid>)> {
    let (by_username, by_address) = count(conn, username, address, window)?;
    if !admits(&by_username, &by_address) {
        return Ok((by_username, by_address, None));
    }
    let id = Uuid::now_v7();
    conn.prepare_cached(INSERT)?
        .execute((uuid(&id), username, address, time(at)))?;
    Ok((by_username, by_address, Some(id)))
}

pub(super) fn settle_failed(
    conn: &Connection,
    id: Uuid,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(SETTLE_FAILED)?
        .execute((uuid(&id), time(at)))
        .map(drop)
}

pub(super) fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<()> {
    conn.prepare_cached(DELETE)?.execute([uuid(&id)]).map(drop)
}

pub(super) fn forget_failures_up_to(
    conn: &Connection,
    username: &str,
    id: Uuid,
) -> rusqlite::Result<()> {
    conn.prepare_cached(FORGET_UP_TO)?
        .execute((username, uuid(&id)))
        .map(drop)
}
