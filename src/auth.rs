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

/// Personal API tokens, recognised by prefix and checksum.
pub struct ApiTokenValidator {
    pub tokens: crate::api_tokens::ApiTokens,
}

#[async_trait]
impl Validator for ApiTokenValidator {
    fn recognises(&self, token: &str) -> bool {
        crate::api_tokens::well_formed(token)
    }

    async fn validate(&self, token: &str) -> Result<Principal> {
        let user = self.tokens.authenticate(token).await?;
        Ok(Principal {
            user,
            kind: AuthKind::ApiToken,
            token_id: None,
        })
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
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerAuth(pub Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    Ok(state(req)?.validators.authenticate(&bearer.token).await?)
}

fn state(req: &Request) -> Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("application state is missing")))
}

/// `Authorization: Bearer <access JWT>` only: for managing API tokens, which
/// an API token may not do.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_jwt")]
pub struct JwtAuth(pub Principal);

async fn check_jwt(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let principal = state(req)?.validators.authenticate(&bearer.token).await?;
    if principal.kind != AuthKind::Jwt {
        return Err(Error::PermissionDenied.into());
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Recognises tokens starting with its prefix and counts validations.
    struct Fake {
        prefix: &'static str,
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Validator for Fake {
        fn recognises(&self, token: &str) -> bool {
            token.starts_with(self.prefix)
        }
        async fn validate(&self, _token: &str) -> Result<Principal> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::TokenNotValid)
        }
    }

    fn chain() -> (ValidatorChain, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let chain = ValidatorChain::new(vec![
            Arc::new(Fake {
                prefix: "a",
                calls: first.clone(),
            }),
            Arc::new(Fake {
                prefix: "ab",
                calls: second.clone(),
            }),
        ]);
        (chain, first, second)
    }

    #[tokio::test]
    async fn the_first_validator_that_recognises_a_token_decides() {
        let (chain, first, second) = chain();
        let _ = chain.authenticate("abc").await;
        assert_eq!(
            (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
            (1, 0)
        );
    }

    #[tokio::test]
    async fn a_token_nobody_recognises_is_refused_without_validation() {
        let (chain, first, second) = chain();
        assert!(matches!(
            chain.authenticate("zzz").await,
            Err(Error::TokenNotValid)
        ));
        assert_eq!(
            (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
            (0, 0)
        );
    }

    #[test]
    fn api_tokens_and_jwts_do_not_look_alike() {
        let api = crate::api_tokens::generate();
        assert!(!looks_like_jwt(api.expose()));
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln"));
        assert!(!crate::api_tokens::well_formed(
            "eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln"
        ));
    }
}
