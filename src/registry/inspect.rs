//! Every kind of JWT tokend registers, checked for revocation and
//! introspection: access and refresh tokens, offline refresh tokens bound
//! to a container registry service, and container registry tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::{tokens, users};

use super::Registry;
use crate::{
    error::{Error, Result},
    jwt::{ContainerClaims, TokenType},
    store::tokens::is_active,
};

/// A registered token found active, with what introspection tells of it.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub kind: TokenType,
    pub row: tokens::Model,
    pub user: users::Model,
    pub iat: i64,
    pub exp: Option<i64>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    /// The client that asked for it (access and refresh tokens).
    pub client_id: Option<String>,
}

/// A JWT's claims, read without checking anything: only to know which
/// checks to run.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

impl Registry {
    /// Checks any JWT tokend registers, completely; `TokenNotValid` when it
    /// is not active, `UnsupportedTokenType` for an anonymous container
    /// registry token (valid, but never registered).
    pub async fn inspect(&self, token: &str) -> Result<Inspected> {
        let claims = unverified_claims(token).ok_or(Error::TokenNotValid)?;
        let aud = claims.get("aud").and_then(|a| a.as_str());
        if claims.get("token_type").is_some() {
            return self.inspect_pair_token(token, aud).await;
        }
        if claims.get("access").is_some() {
            return self.inspect_container(token, aud).await;
        }
        Err(Error::TokenNotValid)
    }

    /// An access or refresh token, or an offline refresh token of a
    /// container registry service (the only kind bound to another `aud`).
    async fn inspect_pair_token(&self, token: &str, aud: Option<&str>) -> Result<Inspected> {
        let claims = self.keys.verify_claims(token, aud)?;
        let own_audience = claims.aud.as_deref() == self.settings.audience.as_deref();
        if !own_audience && claims.token_type != TokenType::Refresh {
            return Err(Error::TokenNotValid);
        }
        let valid = self.check_claims(claims).await?;
        let c = valid.claims;
        Ok(Inspected {
            kind: c.token_type,
            row: valid.row,
            user: valid.user,
            iat: c.iat,
            exp: c.exp,
            iss: c.iss,
            aud: c.aud,
            client_id: Some(c.client_id),
        })
    }

    /// A container registry token: registered, active, and its user's.
    async fn inspect_container(&self, token: &str, aud: Option<&str>) -> Result<Inspected> {
        let aud = aud.ok_or(Error::TokenNotValid)?;
        let claims: ContainerClaims = self.keys.verify(token, Some(aud))?;
        if claims.sub.is_empty() {
            return Err(Error::UnsupportedTokenType);
        }
        let (row, user) = self
            .store
            .find_by_jti(claims.jti)
            .await?
            .ok_or(Error::TokenNotValid)?;
        let user = user.ok_or(Error::TokenNotValid)?;
        let valid = row.token_type == TokenType::Container.as_str()
            && row.user_id == Some(user.id)
            && user.username == claims.sub
            && user.is_active
            && is_active(&row, self.now());
        if !valid {
            return Err(Error::TokenNotValid);
        }
        Ok(Inspected {
            kind: TokenType::Container,
            row,
            user,
            iat: claims.iat,
            exp: Some(claims.exp),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            client_id: None,
        })
    }

    /// Revokes any JWT tokend registers (RFC 7009): a refresh token takes
    /// its whole tree. A token that is not valid is left alone, without an
    /// error; an anonymous container registry token cannot be revoked.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        match self.inspect(token).await {
            Ok(found) => {
                let tree = found.kind == TokenType::Refresh;
                self.expire_row(&found.row, tree).await.map(drop)
            }
            Err(Error::TokenNotValid) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
