//! Personal API tokens: opaque, one per user, shown once, stored as a
//! SHA-256 digest. A token is `tkd_` + 32 random base62 characters + a
//! 6-character base62 CRC32 of the rest, so a foreign or mistyped token is
//! refused by its shape alone, before any database work.

use entity::{api_tokens, users};
use rand::{Rng, distributions::Alphanumeric, rngs::OsRng};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    clock::SharedClock,
    error::{Error, Result},
    secret::Secret,
    store::ApiTokenStore,
    telemetry::{self, AUDIT},
};

pub const PREFIX: &str = "tkd_";
/// 32 base62 characters: about 190 bits from the OS CSPRNG.
const RANDOM_LEN: usize = 32;
const CHECK_LEN: usize = 6;
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECK_LEN;
/// How many characters of a token are kept to recognise it.
const SHOWN_LEN: usize = PREFIX.len() + 6;
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// A new token.
pub fn generate() -> Secret {
    let random: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(RANDOM_LEN)
        .map(char::from)
        .collect();
    let body = format!("{PREFIX}{random}");
    let check = checksum(&body);
    Secret::new(format!("{body}{check}"))
}

/// Whether the token has the shape of one of ours: prefix, length, alphabet
/// and checksum. No I/O.
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
        && {
            let (body, check) = token.split_at(TOKEN_LEN - CHECK_LEN);
            checksum(body) == check
        }
}

/// Lowercase hex SHA-256 of a bearer secret: what is stored instead of it.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The API token service.
#[derive(Clone, Debug)]
pub struct ApiTokens {
    store: ApiTokenStore,
    clock: SharedClock,
}

impl ApiTokens {
    pub fn new(store: ApiTokenStore, clock: SharedClock) -> Self {
        ApiTokens { store, clock }
    }

    /// Creates the user's token, replacing the one they had: the old one stops
    /// working at once. Returns the token (to be shown once) and its row.
    pub async fn create(&self, user_id: Uuid) -> Result<(Secret, api_tokens::Model)> {
        let token = generate();
        let row = api_tokens::Model {
            id: Uuid::now_v7(),
            user_id,
            digest: digest(token.expose()),
            prefix: token.expose()[..SHOWN_LEN].to_owned(),
            created_at: self.clock.now(),
            last_used_at: None,
        };
        let row = self.store.replace(row).await?;
        tracing::info!(
            target: AUDIT,
            event = "api_token_created",
            user_id = %user_id,
            prefix = %row.prefix,
            "API token created"
        );
        Ok((token, row))
    }

    pub async fn get(&self, user_id: Uuid) -> Result<Option<api_tokens::Model>> {
        self.store.find_for_user(user_id).await
    }

    /// Revokes the user's token; true when there was one.
    pub async fn revoke(&self, user_id: Uuid) -> Result<bool> {
        let revoked = self.store.delete_for_user(user_id).await?;
        if revoked {
            tracing::info!(
                target: AUDIT,
                event = "api_token_revoked",
                user_id = %user_id,
                "API token revoked"
            );
        }
        Ok(revoked)
    }

    /// A token's row and its active owner, without counting it as a use
    /// (introspection). The caller has checked its shape.
    pub async fn inspect(&self, token: &str) -> Result<(api_tokens::Model, users::Model)> {
        let (row, user) = self
            .store
            .find_by_digest(&digest(token))
            .await?
            .ok_or(Error::TokenNotValid)?;
        let user = user.filter(|u| u.is_active).ok_or(Error::TokenNotValid)?;
        Ok((row, user))
    }

    /// Deletes the token itself (RFC 7009 revocation by its holder); true
    /// when it existed.
    pub async fn revoke_token(&self, token: &str) -> Result<bool> {
        self.store.delete_by_digest(&digest(token)).await
    }

    /// The active owner of a token. The caller has checked its shape.
    pub async fn authenticate(&self, token: &str) -> Result<users::Model> {
        let result = self.owner(token).await;
        telemetry::metrics::api_token_authentication(match &result {
            Ok(_) => "ok",
            Err(Error::TokenNotValid) => "invalid",
            Err(_) => "error",
        });
        result
    }

    async fn owner(&self, token: &str) -> Result<users::Model> {
        let (row, user) = self
            .store
            .find_by_digest(&digest(token))
            .await?
            .ok_or(Error::TokenNotValid)?;
        let user = user.filter(|u| u.is_active).ok_or(Error::TokenNotValid)?;
        let now = self.clock.now();
        // The one write among a minute of reads.
        if row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            self.store.touch(row.id, now, now - TOUCH_EVERY).await?;
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(well_formed(a.expose()));
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn a_wrong_checksum_or_prefix_is_not_well_formed() {
        let token = generate().expose().to_owned();
        let mut chars: Vec<char> = token.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!well_formed(&typo));
        assert!(!well_formed(&token.replacen("tkd_", "ghp_", 1)));
        assert!(!well_formed(&token[..TOKEN_LEN - 1]));
        assert!(!well_formed(""));
    }
}
