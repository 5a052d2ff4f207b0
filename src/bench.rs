//! Tools for the load benchmark (`bench/run.sh`, `bench/archive.sh`) and the
//! criterion benches: a bulk pre-fill of the registry, and the rate at which
//! this machine verifies a password hash. Not part of the service; the CLI
//! commands over them are hidden.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use entity::tokens;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, TransactionTrait};
use uuid::Uuid;

use crate::{db::Db, error::Result, jwt::TokenType};

/// Rows per INSERT statement: 11 columns, under SQLite's 32 766 variables.
const ROWS_PER_STATEMENT: usize = 2000;
/// Rows per transaction.
const ROWS_PER_TRANSACTION: usize = 100_000;

/// One refresh/access pair of registry rows for `user_id`, issued at
/// `issued_at`; `expired` pairs died a day ago, every fourth of them by force.
pub fn pair_rows(
    user_id: Uuid,
    issued_at: DateTime<Utc>,
    expired: bool,
    forced: bool,
) -> [tokens::ActiveModel; 2] {
    let refresh_id = Uuid::now_v7();
    let (access_expires, refresh_expires) = if expired {
        (
            issued_at + chrono::Duration::minutes(5),
            issued_at + chrono::Duration::days(1),
        )
    } else {
        (
            issued_at + chrono::Duration::hours(1),
            issued_at + chrono::Duration::days(1),
        )
    };
    let expired_at = (expired && forced).then(|| issued_at + chrono::Duration::minutes(1));
    let row = |id: Uuid, kind: TokenType, parent: Option<Uuid>, expires_at| tokens::ActiveModel {
        id: Set(id),
        jti: Set(Uuid::new_v4()),
        token_type: Set(kind.as_str().to_owned()),
        parent_id: Set(parent),
        root_id: Set(refresh_id),
        user_id: Set(Some(user_id)),
        issued_at: Set(issued_at),
        expires_at: Set(Some(expires_at)),
        expired_at: Set(expired_at),
        rotated_at: Set(None),
        device_id: Set(None),
    };
    [
        row(refresh_id, TokenType::Refresh, None, refresh_expires),
        row(
            Uuid::now_v7(),
            TokenType::Access,
            Some(refresh_id),
            access_expires,
        ),
    ]
}

/// Inserts `rows` registry rows (refresh/access pairs) for `user_id`, of
/// which `expired_percent` per cent are dead, by multi-row INSERTs in large
/// transactions: no HTTP, no signing. Returns how many rows it wrote.
pub async fn fill(db: &Db, user_id: Uuid, rows: u64, expired_percent: u8) -> Result<u64> {
    let pairs = rows.div_ceil(2);
    let expired_pairs = pairs * u64::from(expired_percent.min(100)) / 100;
    let now = Utc::now();
    let mut written = 0;
    let mut pair = 0;
    while pair < pairs {
        let txn = db.write.begin().await?;
        let mut in_txn = 0;
        while pair < pairs && in_txn < ROWS_PER_TRANSACTION {
            let mut batch = Vec::with_capacity(ROWS_PER_STATEMENT);
            while pair < pairs && batch.len() < ROWS_PER_STATEMENT {
                let expired = pair < expired_pairs;
                let issued_at = if expired {
                    now - chrono::Duration::days(2)
                } else {
                    now
                };
                batch.extend(pair_rows(user_id, issued_at, expired, pair % 4 == 0));
                pair += 1;
            }
            in_txn += batch.len();
            written += batch.len() as u64;
            tokens::Entity::insert_many(batch)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
    }
    if db.write.get_database_backend() == DbBackend::Postgres {
        // What autovacuum would do soon anyway, done now so that it does not
        // run in the middle of the measurement that follows.
        db.write.execute_unprepared("VACUUM ANALYZE tokens").await?;
    }
    Ok(written)
}

/// How many password verifications per second this machine does with
/// tokend's own hashing code, on `threads` threads at once for `duration`.
pub fn password_verify_rate(threads: usize, duration: Duration) -> Result<f64> {
    use crate::passwords::{Memory, hash_with, verify_with};
    let password = crate::users::random_password();
    let hash = hash_with(&mut Memory::default(), &password)?;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (hash, password) = (hash.clone(), password.clone());
            std::thread::spawn(move || {
                let mut memory = Memory::default();
                let mut done = 0u64;
                while start.elapsed() < duration {
                    if verify_with(&mut memory, &hash, &password) {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Inserts a tree of `size` tokens for `user_id`: a refresh token and
/// `size - 1` access tokens minted from it. Returns the root's row.
pub async fn insert_tree(db: &Db, user_id: Uuid, size: usize) -> Result<tokens::Model> {
    let now = Utc::now();
    let [root, first_child] = pair_rows(user_id, now, false, false);
    let root_id = root.id.clone().take().context("the root has an id")?;
    let mut rows = vec![root, first_child];
    while rows.len() < size {
        let [_, mut child] = pair_rows(user_id, now, false, false);
        child.parent_id = Set(Some(root_id));
        child.root_id = Set(root_id);
        rows.push(child);
    }
    rows.truncate(size.max(1));
    let txn = db.write.begin().await?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        tokens::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    tokens::Entity::find_by_id(root_id)
        .one(&db.read)
        .await?
        .ok_or(crate::error::Error::NotFound)
}
