//! The store floor: every read and write of a table, behind one type per
//! table. Services above never write SQL; where SQLite and PostgreSQL
//! differ (locking, the calling-thread reader), the difference stays here.

pub mod api_tokens;
mod cursor;
pub mod login_failures;
pub mod oauth_clients;
mod sqlite_reader;
mod token_txn;
pub mod tokens;
pub mod users;

pub use api_tokens::ApiTokenStore;
pub use cursor::{CURSOR_PATTERN, Cursor};
pub use login_failures::{Attempts, FailureKey, LoginFailureStore, Window};
pub use oauth_clients::ClientStore;
pub use token_txn::TokenTxn;
pub use tokens::{Device, Page, PageQuery, Registration, TokenState, TokenStore};
pub use users::UserStore;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

/// Serializes what `txn` does about `key` with every other transaction that
/// takes the same key, on any replica, until the end of `txn`; returns
/// whether it took a lock. Only PostgreSQL needs one: SQLite's one writer
/// connection runs write transactions one after another.
///
/// Two keys that hash alike only wait for each other; nothing breaks.
pub(crate) async fn advisory_lock(
    txn: &DatabaseTransaction,
    key: &str,
) -> crate::error::Result<bool> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [i64::from_ne_bytes(first).into()],
    ))
    .await?;
    Ok(true)
}
