//! The token registry: issuing, refreshing, checking, listing, expiring and
//! archiving tokens. Every business rule about tokens (rotation, reuse
//! detection, tree expiry) lives here, where tests can reach it without
//! HTTP; the SQL lives in the token store below.
//!
//! - [`issue`]: a pair for a login, a container registry token.
//! - [`refresh`]: the refresh rules (rotation, reuse, expire on refresh).
//! - [`check`]: whether a token is valid, and expiring tokens.
//! - [`inspect`]: any registered JWT, for revocation and introspection.
//! - [`listing`]: pages of tokens.
//! - [`archive`]: removing dead tokens.
//! - [`pipeline`]: the registration steps.

pub mod archive;
pub mod check;
pub mod inspect;
pub mod issue;
pub mod listing;
pub mod pipeline;
pub mod refresh;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::{tokens, users};
use uuid::Uuid;

use crate::{
    clock::SharedClock,
    config::Lifetime,
    error::Result,
    jwt::{Claims, DIRECT_CLIENT_ID, KeyRing, TokenType},
    store::TokenStore,
    telemetry,
};
use pipeline::Pipeline;

pub use check::ValidToken;
pub use inspect::Inspected;
pub use issue::{ContainerIssued, ContainerToken, TokenPair};
pub use refresh::Refreshed;

/// Token lifetimes and refresh rules, from the settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub access_lifetime: Lifetime,
    pub refresh_lifetime: Lifetime,
    pub rotate_refresh_tokens: bool,
    pub expire_on_refresh: bool,
    pub refresh_reuse_grace: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// A freshly issued token: the text the client gets, and what it is.
#[derive(Clone)]
pub struct IssuedToken {
    /// The signed token.
    pub text: String,
    pub jti: Uuid,
    pub issued_at: DateTime<Utc>,
    /// Seconds it lives; `None`: no expiry.
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("jti", &self.jti)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct Registry {
    store: TokenStore,
    keys: Arc<KeyRing>,
    settings: TokenSettings,
    pipeline: Pipeline,
    clock: SharedClock,
}

impl Registry {
    pub fn new(
        store: TokenStore,
        keys: Arc<KeyRing>,
        settings: TokenSettings,
        pipeline: Pipeline,
        clock: SharedClock,
    ) -> Self {
        Registry {
            store,
            keys,
            settings,
            pipeline,
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The row of a token of `kind` issued `now`, living as its settings say
    /// (`lifetime` for container tokens): not yet linked to a parent, a user
    /// or a device.
    fn new_row(
        &self,
        kind: TokenType,
        now: DateTime<Utc>,
        lifetime: Option<Duration>,
    ) -> tokens::Model {
        let lifetime = match kind {
            TokenType::Access => self.settings.access_lifetime.0,
            TokenType::Refresh => self.settings.refresh_lifetime.0,
            TokenType::Container => lifetime,
        };
        new_row(kind, now, lifetime)
    }

    /// Signs the access or refresh token of `row` for `user`, bound to
    /// `audience`.
    fn sign_for(
        &self,
        row: &tokens::Model,
        user: &users::Model,
        audience: Option<&str>,
    ) -> Result<IssuedToken> {
        let kind = if row.token_type == TokenType::Refresh.as_str() {
            TokenType::Refresh
        } else {
            TokenType::Access
        };
        let claims = Claims {
            token_type: kind,
            jti: row.jti,
            iat: row.issued_at.timestamp(),
            exp: row.expires_at.map(|t| t.timestamp()),
            sub: user.id.to_string(),
            user_id: user.id,
            username: user.username.clone(),
            client_id: DIRECT_CLIENT_ID.to_owned(),
            iss: self.settings.issuer.clone(),
            aud: audience.map(str::to_owned),
        };
        let text = self.keys.sign_claims(&claims)?;
        Ok(issued(row, text))
    }
}

/// The token of `row`, signed as `text`.
fn issued(row: &tokens::Model, text: String) -> IssuedToken {
    IssuedToken {
        text,
        jti: row.jti,
        issued_at: row.issued_at,
        expires_in: row
            .expires_at
            .map(|t| (t - row.issued_at).num_seconds().max(0) as u64),
    }
}

/// Counts `n` tokens of `kind` issued.
fn count_issued(kind: TokenType, n: u64) {
    telemetry::metrics::tokens_issued(kind.as_str(), n);
}

/// The row of a token of `kind` issued `now` that lives `lifetime` (`None`:
/// no expiry), with fresh ids, linked to nothing yet: the one place a token
/// row is made. Both ids are UUIDv7 (74 random bits after the time): rows
/// registered together then land on the same last page of the `jti` index
/// instead of one random page each, which is what a commit writes.
pub fn new_row(kind: TokenType, now: DateTime<Utc>, lifetime: Option<Duration>) -> tokens::Model {
    let id = Uuid::now_v7();
    tokens::Model {
        id,
        jti: Uuid::now_v7(),
        token_type: kind.as_str().to_owned(),
        parent_id: None,
        root_id: id,
        user_id: None,
        issued_at: now,
        expires_at: lifetime
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_add_signed(d)),
        expired_at: None,
        rotated_at: None,
        device_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows made one after the other have `jti`s in the same order, so a
    /// batch of registrations appends to the `jti` index.
    #[test]
    fn jtis_are_time_ordered() {
        let now = Utc::now();
        let rows: Vec<_> = (0..64)
            .map(|_| new_row(TokenType::Access, now, None))
            .collect();
        assert!(rows.iter().all(|r| r.jti.get_version_num() == 7));
        assert!(rows.windows(2).all(|w| w[0].jti < w[1].jti));
    }
}
