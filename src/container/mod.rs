//! The container registry token server (the Docker/distribution token
//! authentication spec): a registry sends clients here for a short-lived
//! token that says which actions they may do on which repositories.
//!
//! The scope grammar is in [`scope`], the access rules in [`rules`]; this
//! module grants: it authenticates, intersects what was asked with what the
//! rules allow, and has the token registry issue the token (so it is
//! registered like every other token), with an offline refresh token when
//! asked.

mod request;
pub mod rules;
pub mod scope;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::users;

use crate::{
    config::{ConfigError, ContainerRule},
    error::{Error, Result},
    jwt::{ContainerAccess, KeyRing},
    registry::{ContainerToken, IssuedToken, Registry, pipeline::ClientInfo},
    secret::Secret,
    telemetry,
    users::Users,
};
pub use request::{OAuthError, OAuthRequest, TokenRequest};
pub use rules::{Account, ContainerRules};
pub use scope::{Scope, ScopeError, parse_scopes};

/// The issuer of container registry tokens when `issuer` is not configured.
pub const DEFAULT_ISSUER: &str = "tokend";

/// The container registry settings.
#[derive(Debug, Clone)]
pub struct ContainerSettings {
    /// `registry_service`: the service names `/token` answers for.
    pub services: Vec<String>,
    /// `registry_token_lifetime`; at least 60 seconds.
    pub lifetime: Duration,
    /// `registry.rules`.
    pub rules: Vec<ContainerRule>,
    /// `issuer`, when configured.
    pub issuer: Option<String>,
}

/// A container registry token, and a refresh token when one was issued.
#[derive(Debug, Clone)]
pub struct ContainerGrant {
    pub token: IssuedToken,
    pub access: Vec<ContainerAccess>,
    pub refresh: Option<IssuedToken>,
}

impl ContainerGrant {
    /// When the token was issued.
    pub fn issued_at(&self) -> DateTime<Utc> {
        self.token.issued_at
    }

    /// The scopes granted, space-separated, as the OAuth2 answer says them.
    pub fn scope(&self) -> String {
        self.access
            .iter()
            .map(access_scope)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The scope one `access` entry grants, as the spec writes it.
pub fn access_scope(access: &ContainerAccess) -> String {
    Scope {
        resource_type: access.resource_type.clone(),
        class: access.class.clone(),
        name: access.name.clone(),
        actions: access.actions.clone(),
    }
    .to_string()
}

/// The container registry settings, checked: what `/token` answers for and
/// grants.
#[derive(Clone, Debug)]
pub struct ContainerPolicy {
    rules: Arc<ContainerRules>,
    services: Arc<[String]>,
    issuer: String,
    lifetime: Duration,
}

impl ContainerPolicy {
    /// Checks the settings; each error names its setting.
    pub fn new(settings: ContainerSettings) -> Result<Self, ConfigError> {
        if settings.services.is_empty() {
            return Err(ConfigError::new(
                "registry_service",
                "name at least one service",
            ));
        }
        if settings.lifetime < Duration::from_secs(60) {
            return Err(ConfigError::new(
                "registry_token_lifetime",
                "must be at least 60s (the token spec's minimum)",
            ));
        }
        let rules = ContainerRules::compile(&settings.rules)
            .map_err(|e| ConfigError::new("registry.rules", e))?;
        Ok(ContainerPolicy {
            rules: Arc::new(rules),
            services: settings.services.into(),
            issuer: settings.issuer.unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
            lifetime: settings.lifetime,
        })
    }
}

/// The grant service behind `/token`.
#[derive(Clone, Debug)]
pub struct ContainerTokenServer {
    users: Users,
    registry: Registry,
    policy: ContainerPolicy,
}

impl ContainerTokenServer {
    pub fn new(policy: ContainerPolicy, users: Users, registry: Registry, keys: &KeyRing) -> Self {
        if keys.signing_key().is_symmetric() {
            tracing::warn!(
                "the signing key is a secret: a container registry cannot verify \
                 the tokens of /token (it needs an ES256 or RS256 key and its certificate)"
            );
        }
        ContainerTokenServer {
            users,
            registry,
            policy,
        }
    }

    /// `GET /token`: a registry token for the caller of `request` granting
    /// what its scopes ask and the rules allow, with an offline refresh
    /// token when asked by an authenticated caller.
    pub async fn token(&self, request: TokenRequest) -> Result<ContainerGrant> {
        let grant = if request.credentials.is_some() {
            "basic"
        } else {
            "anonymous"
        };
        let result = self.token_uncounted(request).await;
        count(grant, result.as_ref().err());
        result
    }

    async fn token_uncounted(&self, request: TokenRequest) -> Result<ContainerGrant> {
        let user = match request.credentials {
            Some((username, password)) => {
                if request.account.as_ref().is_some_and(|a| *a != username) {
                    return Err(Error::InvalidRequest(
                        "`account` is not the username of the credentials.".into(),
                    ));
                }
                let address = request.client.address.clone().unwrap_or_default();
                Some(
                    self.users
                        .login_basic(&username, password, &address)
                        .await?,
                )
            }
            None => None,
        };
        self.grant(
            user.as_ref(),
            &request.service,
            &request.scopes,
            request.offline,
            request.client,
        )
        .await
    }

    /// `POST /token`: the password grant or the refresh grant.
    pub async fn oauth_token(&self, request: OAuthRequest) -> Result<ContainerGrant, OAuthError> {
        let grant = match request.grant_type.as_str() {
            "password" => "password",
            "refresh_token" => "refresh_token",
            _ => "unsupported",
        };
        let result = self.oauth_token_uncounted(request).await;
        count(grant, result.as_ref().err().map(|e| &e.error));
        result
    }

    async fn oauth_token_uncounted(
        &self,
        request: OAuthRequest,
    ) -> Result<ContainerGrant, OAuthError> {
        required(Some(&request.grant_type), "grant_type")?;
        required(Some(&request.service), "service")?;
        required(Some(&request.client_id), "client_id")?;
        let scopes = parse_scopes(request.scope.as_deref())
            .map_err(|e| OAuthError::new(Error::InvalidRequest(e.to_string()), "invalid_scope"))?;
        match request.grant_type.as_str() {
            "password" => {
                let username = required(request.username.as_deref(), "username")?;
                let password = required_secret(request.password, "password")?;
                let address = request.client.address.clone().unwrap_or_default();
                let user = self.users.login_basic(username, password, &address).await?;
                let offline = request.access_type.as_deref() == Some("offline");
                Ok(self
                    .grant(
                        Some(&user),
                        &request.service,
                        &scopes,
                        offline,
                        request.client,
                    )
                    .await?)
            }
            "refresh_token" => {
                let refresh = required_secret(request.refresh_token, "refresh_token")?;
                Ok(self
                    .refresh_grant(refresh.expose(), &request.service, &scopes, request.client)
                    .await?)
            }
            other => Err(OAuthError::new(
                Error::InvalidRequest(format!(
                    "Unsupported grant_type `{}`: use password or refresh_token.",
                    other.chars().take(50).collect::<String>()
                )),
                "unsupported_grant_type",
            )),
        }
    }

    /// A registry token for `user` (`None`: anonymous) on `service`, granting
    /// what `scopes` ask and the rules allow. With `offline` and a user, also
    /// a refresh token bound to the service.
    async fn grant(
        &self,
        user: Option<&users::Model>,
        service: &str,
        scopes: &[Scope],
        offline: bool,
        client: ClientInfo,
    ) -> Result<ContainerGrant> {
        self.check_service(service)?;
        let token = self.token_for(user, service, scopes);
        let issued = self
            .registry
            .issue_container(user, &token, offline, client)
            .await?;
        Ok(ContainerGrant {
            token: issued.token,
            access: token.access,
            refresh: issued.refresh,
        })
    }

    /// A registry token for the user of an offline refresh token of
    /// `service`, as a child of it. The refresh token is never rotated:
    /// container clients keep the one of their login.
    async fn refresh_grant(
        &self,
        refresh_token: &str,
        service: &str,
        scopes: &[Scope],
        client: ClientInfo,
    ) -> Result<ContainerGrant> {
        self.check_service(service)?;
        let parent = self
            .registry
            .check_offline_refresh(refresh_token, service)
            .await?;
        let token = self.token_for(Some(&parent.user), service, scopes);
        let issued = self
            .registry
            .issue_container_child(&parent, &token, client)
            .await?;
        Ok(ContainerGrant {
            token: issued,
            access: token.access,
            refresh: None,
        })
    }

    fn check_service(&self, service: &str) -> Result<()> {
        if self.policy.services.iter().any(|s| s == service) {
            Ok(())
        } else {
            Err(Error::InvalidRequest(format!(
                "Unknown service `{}`: this token server answers for {}.",
                service.chars().take(100).collect::<String>(),
                self.policy.services.join(", ")
            )))
        }
    }

    /// What a token for `user` on `service` says: the asked actions the
    /// rules allow, scope by scope; a scope that gets nothing is left out.
    fn token_for(
        &self,
        user: Option<&users::Model>,
        service: &str,
        scopes: &[Scope],
    ) -> ContainerToken {
        let account = match user {
            Some(u) => Account::User {
                name: &u.username,
                is_admin: u.is_admin,
            },
            None => Account::Anonymous,
        };
        let access: Vec<ContainerAccess> = scopes
            .iter()
            .filter_map(|scope| {
                let actions = self.policy.rules.allowed(account, scope);
                (!actions.is_empty()).then(|| ContainerAccess {
                    resource_type: scope.resource_type.clone(),
                    class: scope.class.clone(),
                    name: scope.name.clone(),
                    actions,
                })
            })
            .collect();
        tracing::debug!(
            sub = user.map_or("", |u| u.username.as_str()),
            service,
            granted = ?access.iter().map(access_scope).collect::<Vec<_>>(),
            "container registry token granted"
        );
        ContainerToken {
            service: service.to_owned(),
            access,
            issuer: self.policy.issuer.clone(),
            lifetime: self.policy.lifetime,
        }
    }
}

/// Counts a `/token` request of `grant` by its outcome: `ok`, or the code
/// of its error.
fn count(grant: &'static str, error: Option<&Error>) {
    telemetry::metrics::registry_token_request(grant, error.map_or("ok", Error::code));
}

fn missing(field: &str) -> OAuthError {
    OAuthError::from(Error::InvalidRequest(format!(
        "The `{field}` field is required."
    )))
}

/// A form field that must be there and not empty.
fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, OAuthError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| missing(name))
}

fn required_secret(value: Option<Secret>, name: &str) -> Result<Secret, OAuthError> {
    value
        .filter(|v| !v.expose().is_empty())
        .ok_or_else(|| missing(name))
}
