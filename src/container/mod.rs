//! The container registry token server (the Docker/distribution token
//! authentication spec): a registry sends clients here for a short-lived
//! token that says which actions they may do on which repositories.
//!
//! The scope grammar is in [`scope`], the access rules in [`rules`]; this
//! module grants: it authenticates, intersects what was asked with what the
//! rules allow, and issues a registry token through the token registry (so it
//! is registered like every other token), with an offline refresh token when
//! asked.

pub mod rules;
pub mod scope;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::users;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    config::{Config, Secret},
    error::{Error, Result},
    jwt::TokenType,
    registry::{
        Registry,
        pipeline::{ClientInfo, NewToken},
    },
};
pub use rules::{Account, Rules};
pub use scope::{Scope, ScopeError, parse_scopes};

/// The issuer of registry tokens when `issuer` is not configured.
pub const DEFAULT_ISSUER: &str = "tokend";

/// One granted resource in a registry token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    /// `plugin` for `repository(plugin)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// The scope this entry grants, as the spec writes it.
    pub fn scope(&self) -> String {
        Scope {
            resource_type: self.resource_type.clone(),
            class: self.class.clone(),
            name: self.name.clone(),
            actions: self.actions.clone(),
        }
        .to_string()
    }
}

/// The claims of a registry token, as the distribution registry reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryClaims {
    pub iss: String,
    /// The username; empty for an anonymous caller.
    pub sub: String,
    /// The `service` the token is for: one string, not a list.
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: Uuid,
    /// Always present; empty when nothing was granted.
    pub access: Vec<Access>,
}

/// A registry token, and a refresh token when one was issued.
#[derive(Clone)]
pub struct Grant {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: DateTime<Utc>,
    pub access: Vec<Access>,
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_in", &self.expires_in)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// The grant service behind `/token`.
#[derive(Clone)]
pub struct TokenServer {
    registry: Registry,
    rules: Arc<Rules>,
    services: Arc<[String]>,
    issuer: String,
    lifetime: Duration,
}

impl TokenServer {
    pub fn new(config: &Config, registry: Registry) -> anyhow::Result<Self> {
        config.validate_registry()?;
        let rules = Rules::compile(&config.registry.rules)
            .map_err(|e| anyhow::anyhow!("registry.rules: {e}"))?;
        if registry.keys().signing_key().is_symmetric() {
            tracing::warn!(
                "the signing key is a secret: a container registry cannot verify \
                 the tokens of /token (it needs an ES256 or RS256 key and its certificate)"
            );
        }
        Ok(TokenServer {
            registry,
            rules: Arc::new(rules),
            services: config.registry_service.clone().into(),
            issuer: config
                .issuer
                .clone()
                .unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
            lifetime: config.registry_token_lifetime.0,
        })
    }

    /// A registry token for `user` (`None`: anonymous) on `service`, granting
    /// what `scopes` ask and the rules allow. With `offline` and a user, also
    /// a refresh token bound to the service.
    pub async fn grant(
        &self,
        user: Option<&users::Model>,
        service: &str,
        scopes: &[Scope],
        offline: bool,
        client: ClientInfo,
    ) -> Result<Grant> {
        self.check_service(service)?;
        let offline_audience = offline.then_some(service);
        let (grant, refresh) = self
            .registry
            .issue(user, offline_audience, client, |now| {
                self.sign(user, service, scopes, now)
            })
            .await?;
        Ok(Grant {
            refresh_token: refresh.map(|r| r.token),
            ..grant
        })
    }

    /// A registry token for the user of an offline refresh token of
    /// `service`, under the refresh rules of the token registry (rotation,
    /// reuse detection); a rotated refresh token comes back with it.
    pub async fn refresh_grant(
        &self,
        refresh_token: &str,
        service: &str,
        scopes: &[Scope],
        client: ClientInfo,
    ) -> Result<Grant> {
        self.check_service(service)?;
        let (grant, refresh) = self
            .registry
            .refresh_with(refresh_token, Some(service), client, |user, now| {
                self.sign(Some(user), service, scopes, now)
            })
            .await?;
        Ok(Grant {
            refresh_token: refresh.map(|r| r.token),
            ..grant
        })
    }

    fn check_service(&self, service: &str) -> Result<()> {
        if self.services.iter().any(|s| s == service) {
            Ok(())
        } else {
            Err(Error::InvalidRequest(format!(
                "Unknown service `{}`: this token server answers for {}.",
                service.chars().take(100).collect::<String>(),
                self.services.join(", ")
            )))
        }
    }

    /// Signs the registry token and describes its registry row.
    fn sign(
        &self,
        user: Option<&users::Model>,
        service: &str,
        scopes: &[Scope],
        now: DateTime<Utc>,
    ) -> Result<(Grant, NewToken)> {
        let account = match user {
            Some(u) => Account::User {
                name: &u.username,
                is_admin: u.is_admin,
            },
            None => Account::Anonymous,
        };
        let access: Vec<Access> = scopes
            .iter()
            .filter_map(|scope| {
                let actions = self.rules.allowed(account, scope);
                (!actions.is_empty()).then(|| Access {
                    resource_type: scope.resource_type.clone(),
                    class: scope.class.clone(),
                    name: scope.name.clone(),
                    actions,
                })
            })
            .collect();
        let new = NewToken::new(TokenType::Registry, now, Some(self.lifetime));
        let claims = RegistryClaims {
            iss: self.issuer.clone(),
            sub: user.map(|u| u.username.clone()).unwrap_or_default(),
            aud: service.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: now.timestamp() + self.lifetime.as_secs() as i64,
            jti: new.jti,
            access: access.clone(),
        };
        // Registry 3.x also accepts the certificate chain in the header.
        let token = self.registry.keys().sign_with_x5c(&claims)?;
        tracing::debug!(
            sub = %claims.sub,
            service,
            granted = ?access.iter().map(Access::scope).collect::<Vec<_>>(),
            "registry token issued"
        );
        let grant = Grant {
            token,
            expires_in: self.lifetime.as_secs(),
            issued_at: now,
            access,
            refresh_token: None,
        };
        Ok((grant, new))
    }
}

/// The user behind `Authorization: Basic` credentials at `/token`: the
/// user's password, or their own API token with their username. Failures
/// count toward the login throttle like failed obtains. The one place that
/// decides what a Basic password may be.
pub async fn authenticate_basic(
    state: &AppState,
    username: &str,
    password: Secret,
    address: &str,
) -> Result<users::Model> {
    let attempt = async {
        if !crate::api_tokens::well_formed(password.expose()) {
            return state.users.authenticate(username, password).await;
        }
        match state.api_tokens.authenticate(password.expose()).await {
            Ok(user) if user.username == username => Ok(user),
            Ok(_) | Err(Error::TokenNotValid) => Err(Error::NoActiveAccount),
            Err(e) => Err(e),
        }
    };
    state.users.throttled(username, address, attempt).await
}
