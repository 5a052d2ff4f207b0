//! Benchmark support for tokend, kept out of the product: filling a
//! registry in bulk, and how fast this machine verifies an argon2id hash.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, PasswordHasher, Version, password_hash::SaltString};
use chrono::{DateTime, Utc};
use entity::tokens;
use sea_orm::{ConnectionTrait, DbBackend};
use tokend::{db::Db, jwt::TokenType, registry::new_row, store::TokenStore};
use uuid::Uuid;

/// Rows per transaction of a fill.
const ROWS_PER_TRANSACTION: usize = 100_000;

/// One refresh/access pair of registry rows for `user_id`, issued at
/// `issued_at`; `expired` pairs died a day ago, every fourth of them by
/// force.
pub fn pair_rows(
    user_id: Uuid,
    issued_at: DateTime<Utc>,
    expired: bool,
    forced: bool,
) -> [tokens::Model; 2] {
    let hours = |h: u64| Some(Duration::from_secs(h * 3600));
    let access_lifetime = if expired {
        Some(Duration::from_secs(300))
    } else {
        hours(1)
    };
    let refresh = tokens::Model {
        user_id: Some(user_id),
        expired_at: (expired && forced).then(|| issued_at + chrono::Duration::minutes(1)),
        ..new_row(TokenType::Refresh, issued_at, hours(24))
    };
    let access = tokens::Model {
        parent_id: Some(refresh.id),
        root_id: refresh.id,
        ..tokens::Model {
            user_id: Some(user_id),
            expired_at: refresh.expired_at,
            ..new_row(TokenType::Access, issued_at, access_lifetime)
        }
    };
    [refresh, access]
}

/// Inserts `rows` registry rows (refresh/access pairs) for `user_id`, of
/// which `expired_percent` per cent are dead, in large transactions: no
/// HTTP, no signing. Returns how many rows it wrote.
pub async fn fill(db: &Db, user_id: Uuid, rows: u64, expired_percent: u8) -> anyhow::Result<u64> {
    let store = TokenStore::new(db.clone());
    let pairs = rows.div_ceil(2);
    let expired_pairs = pairs * u64::from(expired_percent.min(100)) / 100;
    let now = Utc::now();
    let mut written = 0;
    let mut pair = 0;
    while pair < pairs {
        let mut batch = Vec::with_capacity(ROWS_PER_TRANSACTION);
        while pair < pairs && batch.len() < ROWS_PER_TRANSACTION {
            let expired = pair < expired_pairs;
            let issued_at = if expired {
                now - chrono::Duration::days(2)
            } else {
                now
            };
            batch.extend(pair_rows(user_id, issued_at, expired, pair % 4 == 0));
            pair += 1;
        }
        written += store.insert_bulk(batch).await?;
    }
    if db.backend() == DbBackend::Postgres {
        // What autovacuum would do soon anyway, done now so that it does not
        // run in the middle of the measurement that follows.
        db.write.execute_unprepared("VACUUM ANALYZE tokens").await?;
    }
    Ok(written)
}

/// A tree of `size` tokens for `user_id`: a refresh token and `size - 1`
/// access tokens minted from it, inserted; returns the root's row.
pub async fn insert_tree(db: &Db, user_id: Uuid, size: usize) -> anyhow::Result<tokens::Model> {
    let now = Utc::now();
    let [root, first] = pair_rows(user_id, now, false, false);
    let mut rows = vec![root.clone(), first];
    while rows.len() < size {
        let [_, child] = pair_rows(user_id, now, false, false);
        rows.push(tokens::Model {
            parent_id: Some(root.id),
            root_id: root.id,
            ..child
        });
    }
    rows.truncate(size.max(1));
    TokenStore::new(db.clone()).insert_bulk(rows).await?;
    Ok(root)
}

/// How many argon2id verifications per second this machine does with
/// tokend's parameters (`tokend::passwords::params`) and memory reused from hash to
/// hash as tokend's hashing threads do, on `threads` threads at once for
/// `duration`.
pub fn password_verify_rate(threads: usize, duration: Duration) -> anyhow::Result<f64> {
    let params = tokend::passwords::params();
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let expected = argon2
        .hash_password(b"bench-password", &salt)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?
        .hash
        .ok_or_else(|| anyhow::anyhow!("no hash output"))?;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (argon2, params, salt, expected) =
                (argon2.clone(), params.clone(), salt.clone(), expected);
            std::thread::spawn(move || {
                let mut memory = vec![Block::default(); params.block_count()];
                let mut salt_bytes = [0u8; 64];
                let salt = salt.as_salt().decode_b64(&mut salt_bytes).expect("salt");
                let mut out = vec![0u8; expected.len()];
                let mut done = 0u64;
                while start.elapsed() < duration {
                    argon2
                        .hash_password_into_with_memory(
                            b"bench-password",
                            salt,
                            &mut out,
                            &mut memory,
                        )
                        .expect("hash");
                    if out == expected.as_bytes() {
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
