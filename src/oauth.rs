//! RFC 7009 revocation and RFC 7662 introspection over every credential
//! tokend issues: access and refresh tokens, container registry tokens and
//! their offline refresh tokens, and personal API tokens. Who may ask is
//! decided here too: a registered client (by its permissions) or an
//! administrator for introspection; anyone holding a token may revoke it.

use entity::{oauth_clients, users};
use uuid::Uuid;

use crate::{
    api_tokens::{self, ApiTokens},
    auth::{ValidatorChain, looks_like_jwt},
    clients::Clients,
    error::{Error, Result},
    jwt::TokenType,
    registry::Registry,
};

/// What kind of credential a token is, in tokend's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    /// A container registry token (from `/token`).
    Registry,
    /// A personal API token (`tkd_…`).
    ApiToken,
}

impl TokenKind {
    /// tokend's name for it (introspection's `tokend_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Registry => "registry",
            TokenKind::ApiToken => "api_token",
        }
    }

    /// The OAuth token type (introspection's `token_type`): `Bearer` for
    /// what is presented to a resource, `refresh_token` for a refresh token.
    pub fn oauth_token_type(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh_token",
            _ => "Bearer",
        }
    }
}

impl From<TokenType> for TokenKind {
    fn from(t: TokenType) -> Self {
        match t {
            TokenType::Access => TokenKind::Access,
            TokenType::Refresh => TokenKind::Refresh,
            TokenType::Container => TokenKind::Registry,
        }
    }
}

/// What introspection tells of an active token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub kind: TokenKind,
    pub user: users::Model,
    /// The registry's `jti` (JWTs only).
    pub jti: Option<Uuid>,
    pub iat: i64,
    pub exp: Option<i64>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub client_id: Option<String>,
}

/// Who asks for an introspection.
#[derive(Debug, Clone)]
pub enum Introspector {
    /// A registered client: a resource server.
    Client(oauth_clients::Model),
    /// An administrator, by their Bearer token.
    Admin,
}

/// Revocation and introspection.
#[derive(Clone, Debug)]
pub struct OAuth {
    registry: Registry,
    api_tokens: ApiTokens,
    clients: Clients,
    validators: ValidatorChain,
}

impl OAuth {
    pub fn new(
        registry: Registry,
        api_tokens: ApiTokens,
        clients: Clients,
        validators: ValidatorChain,
    ) -> Self {
        OAuth {
            registry,
            api_tokens,
            clients,
            validators,
        }
    }

    /// The registered client these credentials are.
    pub async fn client(&self, client_id: &str, secret: &str) -> Result<oauth_clients::Model> {
        self.clients.authenticate(client_id, secret).await
    }

    /// An administrator, by a Bearer token.
    pub async fn admin(&self, bearer: &str) -> Result<Introspector> {
        let principal = self.validators.authenticate(bearer).await?;
        if principal.user.is_admin {
            Ok(Introspector::Admin)
        } else {
            Err(Error::PermissionDenied)
        }
    }

    /// What an active token is; `None` when it is not active, or when a
    /// client asks about a refresh token: a resource server is never told
    /// it may take one (RFC 7662 lets a server say `active: false` about a
    /// token the asker may not know of).
    pub async fn introspect(&self, asker: &Introspector, token: &str) -> Result<Option<TokenInfo>> {
        if let Introspector::Client(client) = asker
            && !client.can_introspect
        {
            return Err(Error::PermissionDenied);
        }
        let info = match self.find(token).await {
            Ok(info) => info,
            Err(Error::TokenNotValid | Error::UnsupportedTokenType) => return Ok(None),
            Err(e) => return Err(e),
        };
        let hidden = matches!(asker, Introspector::Client(_)) && info.kind == TokenKind::Refresh;
        Ok((!hidden).then_some(info))
    }

    async fn find(&self, token: &str) -> Result<TokenInfo> {
        if api_tokens::well_formed(token) {
            let (row, user) = self.api_tokens.inspect(token).await?;
            return Ok(TokenInfo {
                kind: TokenKind::ApiToken,
                user,
                jti: None,
                iat: row.created_at.timestamp(),
                exp: None,
                iss: None,
                aud: None,
                client_id: None,
            });
        }
        if !looks_like_jwt(token) {
            return Err(Error::TokenNotValid);
        }
        let found = self.registry.inspect(token).await?;
        Ok(TokenInfo {
            kind: found.kind.into(),
            user: found.user,
            jti: Some(found.row.jti),
            iat: found.iat,
            exp: found.exp,
            iss: found.iss,
            aud: found.aud,
            client_id: found.client_id,
        })
    }

    /// Revokes a token (RFC 7009): an API token is deleted, a refresh
    /// token's tree expired, any other token expired. `client` is the
    /// registered client asking, if one authenticated; without one the
    /// holder of a token may revoke it. An unknown or invalid token is
    /// left alone without an error.
    pub async fn revoke(&self, client: Option<&oauth_clients::Model>, token: &str) -> Result<()> {
        if client.is_some_and(|c| !c.can_revoke) {
            return Err(Error::PermissionDenied);
        }
        if api_tokens::well_formed(token) {
            self.api_tokens.revoke_token(token).await?;
            return Ok(());
        }
        if !looks_like_jwt(token) {
            return Ok(());
        }
        self.registry.revoke(token).await
    }
}
