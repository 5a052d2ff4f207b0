//! Authentication of API calls: the validator chain behind the Bearer
//! security scheme. Each validator recognises its own kind of token by its
//! shape, cheaply, before any database work; the first that claims a token
//! decides.

use std::sync::Arc;

use async_trait::async_trait;
use entity::users;
use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use uuid::Uuid;

use crate::{
    AppState,
    error::{Error, Result},
    jwt::TokenType,
    registry::Registry,
};

/// How a call was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Jwt,
    ApiToken,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Jwt => "jwt",
            AuthKind::ApiToken => "api_token",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: users::Model,
    pub kind: AuthKind,
    /// The registry id of the token used, for JWTs.
    pub token_id: Option<Uuid>,
}

/// One kind of bearer token.
#[async_trait]
pub trait Validator: Send + Sync {
    /// Whether the token has this validator's shape; no I/O.
    fn recognises(&self, token: &str) -> bool;
    /// Full validation of a token it recognises.
    async fn validate(&self, token: &str) -> Result<Principal>;
}

/// The validators, in order.
#[derive(Clone)]
pub struct ValidatorChain {
    validators: Vec<Arc<dyn Validator>>,
}

impl ValidatorChain {
    pub fn new(validators: Vec<Arc<dyn Validator>>) -> Self {
        ValidatorChain { validators }
    }

    /// The principal of the first validator that recognises the token; a
    /// token nobody recognises is not valid.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        for validator in &self.validators {
            if validator.recognises(token) {
                return validator.validate(token).await;
            }
        }
        Err(Error::TokenNotValid)
    }
}

/// Access JWTs, checked against the registry.
pub struct JwtValidator {
    pub registry: Registry,
}

#[async_trait]
impl Validator for JwtValidator {
    fn recognises(&self, token: &str) -> bool {
        looks_like_jwt(token)
    }

    async fn validate(&self, token: &str) -> Result<Principal> {
        let checked = self.registry.check(token, Some(TokenType::Access)).await?;
        Ok(Principal {
            user: checked.user,
            kind: AuthKind::Jwt,
            token_id: Some(checked.row.id),
        })
    }
}

/// Three base64url segments separated by dots, within the length limit.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= crate::jwt::MAX_TOKEN_LEN
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `Authorization: Bearer <token>`: an access JWT or an API token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("application state is missing")))?;
    Ok(state.validators.authenticate(&bearer.token).await?)
}
