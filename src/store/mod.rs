//! The store floor: every read and write of a table, behind one type per
//! table. Services above never write SQL; where SQLite and PostgreSQL
//! differ (locking, the calling-thread reader), the difference stays here.

/// A token's row and its user, as [`sqlite_reader`]'s `decode` reads them,
/// for the rows `condition` picks.
macro_rules! token_query {
    ($condition:literal) => {
        concat!(
            "SELECT t.id, t.jti, t.token_type, t.parent_id, t.root_id, t.user_id, ",
            "t.issued_at, t.expires_at, t.expired_at, t.rotated_at, t.device_id, ",
            "u.id, u.username, u.password_hash, u.is_active, u.is_admin, u.created_at, ",
            "u.last_login, u.username_key ",
            "FROM tokens t LEFT JOIN users u ON u.id = t.user_id ",
            $condition
        )
    };
}

pub mod api_tokens;
mod cursor;
pub mod login_failures;
pub mod oauth_clients;
mod pg_txn;
mod sqlite_checkpoints;
mod sqlite_reader;
mod sqlite_txn;
mod sqlite_writer;
mod token_txn;
pub mod tokens;
pub mod users;

pub use api_tokens::ApiTokenStore;
pub use cursor::{CURSOR_PATTERN, Cursor};
pub use login_failures::{Attempts, LoginFailureStore, Window};
pub use oauth_clients::ClientStore;
pub use token_txn::{Opened, TokenTxn, TreeLock};
pub use tokens::{Device, Page, PageQuery, Registration, TokenState, TokenStore};
pub use users::UserStore;

use std::{future::Future, sync::Arc};

use sqlite_reader::SqliteReader;
use sqlite_writer::SqliteWriter;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};

use crate::{
    db::Db,
    error::{Error, Result},
};

/// SQLite in a file: the calling-thread reader and the writer that
/// the token store starts, shared with the other tables' hot paths (a
/// login's). Empty otherwise (PostgreSQL, SQLite in memory): sea-orm then.
#[derive(Clone, Debug, Default)]
pub struct SqliteThreads {
    reader: Option<Arc<SqliteReader>>,
    writer: Option<Arc<SqliteWriter>>,
}

impl TokenStore {
    /// Its SQLite reader and writer, for the other tables' hot paths.
    pub fn sqlite_threads(&self) -> SqliteThreads {
        SqliteThreads {
            reader: self.reader.clone(),
            writer: self.writer.clone(),
        }
    }
}

/// Runs `job` in a write transaction on `db`, in the turn to write:
/// committed when it returns `Ok`, rolled back when it returns `Err`.
/// `first` runs at the start (a lock, say). The job gets the transaction
/// shared and must have dropped it when it is done.
async fn in_transaction<T, Fut>(
    db: &Db,
    first: Option<&str>,
    job: impl FnOnce(Arc<DatabaseTransaction>) -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let _turn = db.write_turn().await;
    let txn = Arc::new(db.write.begin().await?);
    if let Some(key) = first {
        advisory_lock(&txn, key).await?;
    }
    let result = job(txn.clone()).await;
    let txn = Arc::try_unwrap(txn)
        .map_err(|_| Error::Unexpected(anyhow::anyhow!("a job kept its transaction")))?;
    match result {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(e) => {
            // Dropping the transaction rolls it back too; this just does it
            // now, and a failure here changes nothing for the caller.
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

/// Serializes what `txn` does about `key` with every other transaction that
/// takes the same key, on any replica, until the end of `txn`; returns
/// whether it took a lock. Only PostgreSQL needs one: SQLite's one writer
/// connection runs write transactions one after another.
///
/// Two keys that hash alike only wait for each other; nothing breaks.
pub(crate) async fn advisory_lock(txn: &DatabaseTransaction, key: &str) -> Result<bool> {
    advisory_locks(txn, &[key]).await
}

/// [`advisory_lock`] on each of `keys`, in their order, in one round trip.
pub(crate) async fn advisory_locks(txn: &DatabaseTransaction, keys: &[&str]) -> Result<bool> {
    if txn.get_database_backend() != DbBackend::Postgres || keys.is_empty() {
        return Ok(false);
    }
    // PostgreSQL evaluates a select list from left to right: the locks are
    // taken in the order given, which is what keeps two paths from waiting
    // for each other.
    let calls: Vec<String> = (1..=keys.len())
        .map(|i| format!("pg_advisory_xact_lock(${i})"))
        .collect();
    let values = keys.iter().map(|key| lock_key(key).into());
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {}", calls.join(", ")),
        values,
    ))
    .await?;
    Ok(true)
}

/// The advisory lock key of `key`: the first eight bytes of its SHA-256,
/// little-endian (as `pg_txn::open` computes it in SQL).
pub(crate) fn lock_key(key: &str) -> i64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// A migrated SQLite database in a file in `dir`, for the store's tests.
#[cfg(test)]
pub(crate) async fn test_sqlite(dir: &tempfile::TempDir) -> Db {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Db::connect(&crate::db::DbSettings {
        url: crate::secret::Secret::new(url),
        timeout: std::time::Duration::from_secs(5),
        max_connections: 2,
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    db
}

/// A migrated PostgreSQL database of its own (four held connections), for
/// the store's tests; `None` outside the suite's PostgreSQL pass.
#[cfg(test)]
async fn test_postgres(timeout: std::time::Duration) -> Option<(common::TestDatabase, Db)> {
    let database = common::TestDatabase::fresh().await;
    let url = database.postgres_url()?.to_owned();
    let db = Db::connect(&crate::db::DbSettings {
        url: crate::secret::Secret::new(url),
        timeout,
        max_connections: 4,
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    Some((database, db))
}

/// A token's row for the store's tests: a refresh token, the root of its
/// own tree, expiring a day and 123 ms after `now`.
#[cfg(test)]
fn test_row(
    user_id: Option<uuid::Uuid>,
    now: chrono::DateTime<chrono::Utc>,
) -> entity::tokens::Model {
    let id = uuid::Uuid::now_v7();
    entity::tokens::Model {
        id,
        jti: uuid::Uuid::now_v7(),
        token_type: "refresh".into(),
        parent_id: None,
        root_id: id,
        user_id,
        issued_at: now,
        expires_at: Some(now + chrono::Duration::milliseconds(86_400_123)),
        expired_at: None,
        rotated_at: None,
        device_id: None,
    }
}
