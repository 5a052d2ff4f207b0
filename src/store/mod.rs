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

use std::{future::Future, sync::Arc};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};

use crate::error::{Error, Result};

/// Runs `job` in a transaction on `db`: committed when it returns `Ok`,
/// rolled back when it returns `Err`. `first` runs at the start (a lock,
/// say). The job gets the transaction shared and must have dropped it when
/// it is done.
async fn in_transaction<T, Fut>(
    db: &DatabaseConnection,
    first: Option<&str>,
    job: impl FnOnce(Arc<DatabaseTransaction>) -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let txn = Arc::new(db.begin().await?);
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
    let values = keys.iter().map(|key| {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_ne_bytes(first).into()
    });
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {}", calls.join(", ")),
        values,
    ))
    .await?;
    Ok(true)
}
