//! Authentication of API calls: the validator chain behind the Bearer
//! security schemes (which live in `api::auth`). Each validator recognises
//! its own kind of token by its shape, cheaply, before any database work;
//! the first that claims a token decides.

use std::sync::Arc;

use async_trait::async_trait;
use entity::users;
use uuid::Uuid;

use crate::{
    api_tokens::{self, ApiTokens},
    error::{Error, Result},
    jwt::{MAX_TOKEN_LEN, TokenType},
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

impl std::fmt::Debug for ValidatorChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorChain")
            .field("validators", &self.validators.len())
            .finish()
    }
}

impl ValidatorChain {
    pub fn new(validators: Vec<Arc<dyn Validator>>) -> Self {
        ValidatorChain { validators }
    }

    /// tokend's own chain: API tokens first (their shape check is the
    /// cheaper one), then access JWTs.
    pub fn standard(api_tokens: ApiTokens, registry: Registry) -> Self {
        ValidatorChain::new(vec![
            Arc::new(ApiTokenValidator { tokens: api_tokens }),
            Arc::new(JwtValidator { registry }),
        ])
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
    pub tokens: ApiTokens,
}

#[async_trait]
impl Validator for ApiTokenValidator {
    fn recognises(&self, token: &str) -> bool {
        api_tokens::well_formed(token)
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
        let valid = self.registry.check(token, Some(TokenType::Access)).await?;
        Ok(Principal {
            user: valid.user,
            kind: AuthKind::Jwt,
            token_id: Some(valid.row.id),
        })
    }
}

/// Three base64url segments separated by dots, within the length limit.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_LEN
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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
        let api = api_tokens::generate();
        assert!(!looks_like_jwt(api.expose()));
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln"));
        assert!(!api_tokens::well_formed("eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln"));
    }
}
