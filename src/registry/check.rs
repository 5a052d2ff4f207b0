//! Checking tokens against the registry, and expiring them.

use chrono::{DateTime, Utc};
use entity::{tokens, users};
use uuid::Uuid;

use super::Registry;
use crate::{
    error::{Error, Result},
    jwt::{Claims, TokenType},
    store::tokens::is_active,
    telemetry,
};

/// A token that passed every check, with its registry row and its user.
#[derive(Debug, Clone)]
pub struct ValidToken {
    pub claims: Claims,
    pub row: tokens::Model,
    pub user: users::Model,
}

impl Registry {
    /// Checks a token completely: signature and claims, then the registry
    /// (same type and user, active) and the user (exists, active).
    pub async fn check(&self, token: &str, expected: Option<TokenType>) -> Result<ValidToken> {
        let audience = self.settings.audience.as_deref();
        let claims = self.keys.verify_claims(token, audience)?;
        // A refresh token bound to a container registry service is for its
        // refresh grant only.
        if expected.is_some_and(|t| t != claims.token_type) || claims.aud.as_deref() != audience {
            return Err(Error::TokenNotValid);
        }
        self.check_claims(claims).await
    }

    /// Checks an offline refresh token of the container registry `service`
    /// completely; nothing else passes.
    pub async fn check_offline_refresh(&self, token: &str, service: &str) -> Result<ValidToken> {
        let claims = self.refresh_claims(token, Some(service))?;
        self.check_claims(claims).await
    }

    /// The claims of a refresh token bound to `audience`; anything else is
    /// not valid here.
    pub(super) fn refresh_claims(&self, token: &str, audience: Option<&str>) -> Result<Claims> {
        let claims = self.keys.verify_claims(token, audience)?;
        if claims.token_type != TokenType::Refresh || claims.aud.as_deref() != audience {
            return Err(Error::TokenNotValid);
        }
        Ok(claims)
    }

    pub(super) async fn check_claims(&self, claims: Claims) -> Result<ValidToken> {
        let (row, user) = self
            .store
            .find_by_jti(claims.jti)
            .await?
            .ok_or(Error::TokenNotValid)?;
        let user = matches_registry(&claims, &row, user, self.now())?;
        Ok(ValidToken { claims, row, user })
    }

    /// Expires a valid token, or with `affect_tree` every token of its tree.
    /// Returns how many active tokens this call expired.
    pub async fn expire(&self, token: &str, affect_tree: bool) -> Result<u64> {
        let valid = self.check(token, None).await?;
        self.expire_row(&valid.row, affect_tree).await
    }

    /// simplejwt's blacklist: a refresh token (and nothing else) and its
    /// whole tree are expired.
    pub async fn expire_refresh_tree(&self, token: &str) -> Result<u64> {
        let valid = self.check(token, Some(TokenType::Refresh)).await?;
        self.expire_row(&valid.row, true).await
    }

    /// Expires one registry row, or its whole tree.
    pub async fn expire_row(&self, row: &tokens::Model, affect_tree: bool) -> Result<u64> {
        let (reason, expired) = if affect_tree {
            (
                "tree",
                self.store.expire_tree(row.root_id, self.now()).await?,
            )
        } else {
            ("request", self.store.expire_one(row.id, self.now()).await?)
        };
        telemetry::metrics::tokens_expired(reason, expired);
        Ok(expired)
    }

    /// Expires one of a user's tokens by its registry id, or its whole
    /// tree; another user's token is not found.
    pub async fn expire_own(&self, user_id: Uuid, id: Uuid, affect_tree: bool) -> Result<u64> {
        let row = self.find_for_user(user_id, id).await?;
        self.expire_row(&row, affect_tree).await
    }

    /// The tree (its root's id) of one of a user's tokens: the session a
    /// call with that token belongs to. A token that is gone is not valid.
    pub async fn session_of(&self, user_id: Uuid, token_id: Uuid) -> Result<Uuid> {
        match self.find_for_user(user_id, token_id).await {
            Ok(row) => Ok(row.root_id),
            Err(Error::NotFound) => Err(Error::TokenNotValid),
            Err(e) => Err(e),
        }
    }

    /// Expires every active token of a user but those of the tree rooted at
    /// `spared` (the session a password change comes from); returns how
    /// many.
    pub async fn expire_user_but_tree(&self, user_id: Uuid, spared: Uuid) -> Result<u64> {
        let expired = self
            .store
            .expire_user_but_tree(user_id, spared, self.now())
            .await?;
        telemetry::metrics::tokens_expired("password_change", expired);
        Ok(expired)
    }

    /// Expires every active token of a user for `reason` (`user`,
    /// `password_change`); returns how many.
    pub async fn expire_user(&self, user_id: Uuid, reason: &'static str) -> Result<u64> {
        let expired = self.store.expire_user(user_id, self.now()).await?;
        telemetry::metrics::tokens_expired(reason, expired);
        Ok(expired)
    }
}

/// The registry's word on a token whose signature and claims checked out:
/// its row must agree with the claims (type, user) and be active, and its
/// user must exist and be active. Returns the user.
pub(super) fn matches_registry(
    claims: &Claims,
    row: &tokens::Model,
    user: Option<users::Model>,
    now: DateTime<Utc>,
) -> Result<users::Model> {
    let user = user.ok_or(Error::TokenNotValid)?;
    let valid = row.token_type == claims.token_type.as_str()
        && row.user_id == Some(claims.user_id)
        && is_active(row, now)
        && user.is_active;
    if valid {
        Ok(user)
    } else {
        Err(Error::TokenNotValid)
    }
}
