//! SQLite reads on the calling thread, for the one read every authenticated
//! call makes (a token's registry row and its user) and a login's (its
//! throttle's count and its user). For the store only, which falls back to
//! sea-orm whenever this reader cannot decide.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every
//! query to it, and the answer back: two thread switches per query. For a
//! point look-up that takes microseconds those switches were most of what an
//! authenticated call cost (`perf` under `GET /api/v1/me` load: 41 % of the
//! server's CPU in the kernel's scheduler, 0.6 % in `sqlite3VdbeExec`). Here
//! the query runs where the request runs, on a connection taken from a small
//! idle list. A WAL reader does not wait for the writer, so it holds the
//! worker thread no longer than the look-up itself.
//!
//! Only reads, only SQLite, only a database in a file (an in-memory one is
//! private to its sqlx connections); everything else goes through sea-orm.
//! A row this module cannot decode is handed back as `None` from
//! [`SqliteReader::token_by_jti`]'s decoder so that the caller falls back to
//! sea-orm, which then decides.

use std::{
    path::PathBuf,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{tokens, users};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use sea_orm::DbErr;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Idle connections kept; more callers at once open more, which are closed
/// when they come back to a full list. A read holds its worker thread, so
/// there are never more at once than the runtime has worker threads.
const MAX_IDLE: usize = 4;

pub struct SqliteReader {
    path: PathBuf,
    busy_timeout: Duration,
    /// Page cache of each connection (SQLite's `cache_size`).
    cache_size: i64,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What [`SqliteReader::token_by_jti`] found. Moved straight to the caller,
/// so the size of `Row` costs nothing a `Box` would not cost more.
#[allow(clippy::large_enum_variant)]
pub enum Found {
    /// No token has this `jti`.
    Nothing,
    /// The row and its user (none when the row has no user or it is gone).
    Row(tokens::Model, Option<users::Model>),
    /// A row this module could not decode: ask sea-orm.
    Undecodable,
}

const TOKEN_BY_JTI: &str = token_query!("WHERE t.jti = ?1");
/// A user's columns, as [`decode_user`] reads them.
const USER_BY_NAME: &str = "SELECT id, username, password_hash, is_active, is_admin, \
     created_at, last_login, username_key FROM users WHERE username = ?1";

/// What [`SqliteReader::user_by_name`] found: `None` when a value is in a
/// form this module does not read (ask sea-orm then).
pub type FoundUser = Option<Option<users::Model>>;

impl SqliteReader {
    pub fn new(path: PathBuf, busy_timeout: Duration, cache_size: i64) -> Self {
        SqliteReader {
            path,
            busy_timeout,
            cache_size,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The token whose `jti` this is, with its user, as sea-orm's
    /// `find_also_related` would return them.
    pub fn token_by_jti(&self, jti: Uuid) -> Result<Found> {
        self.with_connection(|conn| {
            let mut statement = conn.prepare_cached(TOKEN_BY_JTI)?;
            let found = statement
                .query_row([jti.as_bytes().as_slice()], |row| Ok(decode(row)))
                .optional()?;
            Ok(match found {
                None => Found::Nothing,
                Some(Some((token, user))) => Found::Row(token, user),
                Some(None) => Found::Undecodable,
            })
        })
    }

    /// The user named `username`, as sea-orm would read it.
    pub fn user_by_name(&self, username: &str) -> Result<FoundUser> {
        self.with_connection(|conn| {
            let mut statement = conn.prepare_cached(USER_BY_NAME)?;
            let found = statement
                .query_row([username], |row| Ok(decode_user(row, 0)))
                .optional()?;
            Ok(found.unwrap_or(Some(None)))
        })
    }

    /// Runs `read` on an idle connection (or a new one), on this thread.
    pub(super) fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(unavailable)?,
        };
        let result = read(&conn);
        // A connection that failed is not trusted again.
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result.map_err(unavailable)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Read-write without create: the file is the writer's, and a WAL
        // reader needs to write the shared-memory index; `query_only` makes
        // sure it never writes the database.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "cache_size", self.cache_size)?;
        Ok(conn)
    }
}

fn unavailable(err: rusqlite::Error) -> Error {
    Error::Unavailable(DbErr::Custom(format!("sqlite: {err}")))
}

/// The row as sea-orm would decode it, or `None` when a value is not in the
/// form sqlx writes (16-byte UUIDs, RFC 3339 times, 0/1 booleans).
pub(super) fn decode(row: &Row<'_>) -> Option<(tokens::Model, Option<users::Model>)> {
    let token = tokens::Model {
        id: uuid(row, 0)??,
        jti: uuid(row, 1)??,
        token_type: row.get(2).ok()?,
        parent_id: uuid(row, 3)?,
        root_id: uuid(row, 4)??,
        user_id: uuid(row, 5)?,
        issued_at: time(row, 6)??,
        expires_at: time(row, 7)?,
        expired_at: time(row, 8)?,
        rotated_at: time(row, 9)?,
        device_id: uuid(row, 10)?,
    };
    let user = decode_user(row, 11)?;
    Some((token, user))
}

/// The user whose columns begin at `first`, in the order `USER_BY_NAME` reads them:
/// `Some(None)` when its id is NULL, `None` when a value is undecodable.
fn decode_user(row: &Row<'_>, first: usize) -> Option<Option<users::Model>> {
    let Some(id) = uuid(row, first)? else {
        return Some(None);
    };
    Some(Some(users::Model {
        id,
        username: row.get(first + 1).ok()?,
        password_hash: row.get(first + 2).ok()?,
        is_active: row.get(first + 3).ok()?,
        is_admin: row.get(first + 4).ok()?,
        created_at: time(row, first + 5)??,
        last_login: time(row, first + 6)?,
        username_key: row.get(first + 7).ok()?,
    }))
}

/// A nullable UUID column: `None` when undecodable, `Some(None)` for NULL.
fn uuid(row: &Row<'_>, index: usize) -> Option<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(index).ok()?;
    match bytes {
        None => Some(None),
        Some(bytes) => Uuid::from_slice(&bytes).ok().map(Some),
    }
}

/// A nullable time column: `None` when undecodable, `Some(None)` for NULL.
fn time(row: &Row<'_>, index: usize) -> Option<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index).ok()?;
    match text {
        None => Some(None),
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|t| Some(t.with_timezone(&Utc))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Device, Registration, TokenStore};

    fn row(kind: &str, now: DateTime<Utc>) -> tokens::Model {
        let id = Uuid::now_v7();
        tokens::Model {
            id,
            jti: Uuid::new_v4(),
            token_type: kind.into(),
            parent_id: None,
            root_id: id,
            user_id: None,
            issued_at: now,
            expires_at: None,
            expired_at: None,
            rotated_at: None,
            device_id: None,
        }
    }

    /// The look-up every authenticated call makes runs on the calling
    /// thread on SQLite: it must find exactly what sea-orm finds, for a
    /// token with a user and a device, for one with neither, and for none.
    #[tokio::test]
    async fn the_calling_thread_reader_finds_what_sea_orm_finds() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::test_sqlite(&dir).await;
        let store = TokenStore::new(db.clone());
        let now = Utc::now();
        let user = crate::store::users::new_user(
            "ann".into(),
            "ann".into(),
            "hash".into(),
            false,
            true,
            now,
        );
        crate::store::UserStore::new(db.clone())
            .insert(user.clone())
            .await
            .unwrap();
        let owned = tokens::Model {
            user_id: Some(user.id),
            ..row("refresh", now)
        };
        let anonymous = tokens::Model {
            expires_at: Some(now + chrono::Duration::minutes(5)),
            ..row("registry", now)
        };
        let registration = Registration {
            rows: vec![owned.clone()],
            device: Some(Device {
                user_id: user.id,
                user_agent: "ua".into(),
                client_address: "10.0.0.1".into(),
                seen_at: now,
            }),
        };
        store
            .write(|txn| async move { txn.register(registration).await })
            .await
            .unwrap();
        let rows = vec![anonymous.clone()];
        store
            .write(|txn| async move { txn.register(Registration { rows, device: None }).await })
            .await
            .unwrap();
        let reader = SqliteReader::new(
            db.sqlite_file().expect("a file").to_owned(),
            db.timeout(),
            crate::db::READER_CACHE_SIZE,
        );
        for jti in [owned.jti, anonymous.jti] {
            let through_sea_orm = super::super::tokens::find_by_jti(&db.read, jti)
                .await
                .unwrap()
                .unwrap();
            match reader.token_by_jti(jti).unwrap() {
                Found::Row(row, user) => assert_eq!((row, user), through_sea_orm),
                _ => panic!("the reader did not find {jti}"),
            }
        }
        // A login's look-up of its user, and of nobody.
        for name in ["ann", "nobody"] {
            let through_sea_orm = crate::store::UserStore::new(db.clone())
                .find_by_name(name)
                .await
                .unwrap();
            assert_eq!(reader.user_by_name(name).unwrap(), Some(through_sea_orm));
        }
        assert!(matches!(
            reader.user_by_name("ann").unwrap(),
            Some(Some(found)) if found.id == user.id
        ));
        assert!(matches!(
            reader.token_by_jti(Uuid::new_v4()).unwrap(),
            Found::Nothing
        ));
    }
}
