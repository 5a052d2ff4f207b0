//! The registry's write operations on SQLite, in the writer's
//! transaction ([`super::sqlite_writer`]): the statements sea-orm would
//! make for [`TokenTxn`](super::TokenTxn), prepared once and run in place.
//!
//! Values are written in sqlx's forms (16-byte UUIDs, RFC 3339 times with
//! as many fraction digits as they need), so that sea-orm, the calling-thread
//! reader and SQL comparisons read them alike; a unit test compares the
//! stored text of both writers.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use entity::{tokens, users};
use rusqlite::{Connection, OptionalExtension, ToSql, ffi};
use sea_orm::DbErr;
use uuid::Uuid;

use super::{Device, Registration, sqlite_reader::decode};
use crate::{
    error::{Error, Result},
    telemetry,
};

/// The writer's connection, lent to the job it runs.
pub type Conn = Arc<Mutex<Connection>>;

fn with<T>(conn: &Conn, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
    work(&conn.lock().unwrap_or_else(PoisonError::into_inner)).map_err(unavailable)
}

/// A failure of the writer's connection or thread: a 503, counted.
pub(super) fn unavailable(why: impl std::fmt::Display) -> Error {
    telemetry::metrics::db_error("unavailable");
    Error::Unavailable(DbErr::Custom(format!("sqlite: {why}")))
}

/// A time as sqlx writes it.
pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

pub(super) fn uuid(id: &Uuid) -> &[u8] {
    id.as_bytes().as_slice()
}

fn one_row(
    conn: &Conn,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
    let found = with(conn, |c| {
        c.prepare_cached(sql)?
            .query_row(params, |row| Ok(decode(row)))
            .optional()
    })?;
    match found {
        None => Ok(None),
        Some(Some(found)) => Ok(Some(found)),
        Some(None) => Err(Error::Unexpected(anyhow::anyhow!(
            "a registry row in a form tokend does not write"
        ))),
    }
}

pub(super) fn find_by_jti(
    conn: &Conn,
    jti: Uuid,
) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
    const SQL: &str = token_query!("WHERE t.jti = ?1");
    one_row(conn, SQL, &[&uuid(&jti)])
}

pub(super) fn child_of_type(
    conn: &Conn,
    parent_id: Uuid,
    kind: &str,
) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
    const SQL: &str = token_query!("WHERE t.parent_id = ?1 AND t.token_type = ?2 LIMIT 1");
    one_row(conn, SQL, &[&uuid(&parent_id), &kind])
}

pub(super) fn rotate(conn: &Conn, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    const SQL: &str = "UPDATE tokens SET rotated_at = ?1 \
         WHERE id = ?2 AND rotated_at IS NULL AND expired_at IS NULL";
    let changed = with(conn, |c| {
        c.prepare_cached(SQL)?.execute((time(now), uuid(&id)))
    })?;
    Ok(changed == 1)
}

/// Expires the active tokens of a tree but `keep`.
pub(super) fn expire_tree_except(
    conn: &Conn,
    root_id: Uuid,
    keep: Uuid,
    now: DateTime<Utc>,
) -> Result<u64> {
    // The twin of `tokens::active_at`, with `now` compared as sqlx binds it.
    const SQL: &str = "UPDATE tokens SET expired_at = ?1 \
         WHERE root_id = ?2 AND id <> ?3 \
         AND expired_at IS NULL AND rotated_at IS NULL \
         AND (expires_at IS NULL OR expires_at > ?1)";
    let changed = with(conn, |c| {
        c.prepare_cached(SQL)?
            .execute((time(now), uuid(&root_id), uuid(&keep)))
    })?;
    Ok(changed as u64)
}

/// As [`TokenTxn::register`](super::TokenTxn::register): `Ok(false)` when
/// a row points to a user or parent that is gone.
pub(super) fn register(conn: &Conn, registration: Registration) -> Result<bool> {
    const INSERT: &str = "INSERT INTO tokens (id, jti, token_type, parent_id, root_id, \
         user_id, issued_at, expires_at, expired_at, rotated_at, device_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    let Registration { rows, device } = registration;
    let device_id = device.map(|d| upsert_device(conn, d)).transpose()?;
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let inserted = (|| {
        let mut insert = conn.prepare_cached(INSERT)?;
        for row in &rows {
            let device_id = device_id.or(row.device_id);
            insert.execute((
                uuid(&row.id),
                uuid(&row.jti),
                &row.token_type,
                row.parent_id.as_ref().map(uuid),
                uuid(&row.root_id),
                row.user_id.as_ref().map(uuid),
                time(row.issued_at),
                row.expires_at.map(time),
                row.expired_at.map(time),
                row.rotated_at.map(time),
                device_id.as_ref().map(uuid),
            ))?;
        }
        Ok(())
    })();
    drop(conn);
    match inserted {
        Ok(()) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn upsert_device(conn: &Conn, device: Device) -> Result<Uuid> {
    const SQL: &str = "INSERT INTO devices \
         (id, user_id, user_agent, client_address, first_seen, last_seen) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
         ON CONFLICT (user_id, user_agent, client_address) \
         DO UPDATE SET last_seen = excluded.last_seen RETURNING id";
    let id: Vec<u8> = with(conn, |c| {
        c.prepare_cached(SQL)?.query_row(
            (
                uuid(&Uuid::now_v7()),
                uuid(&device.user_id),
                &device.user_agent,
                &device.client_address,
                time(device.seen_at),
            ),
            |row| row.get(0),
        )
    })?;
    Uuid::from_slice(&id).map_err(|e| Error::Unexpected(e.into()))
}
