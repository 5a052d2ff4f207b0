//! The application state: every service, built once from the settings and
//! handed to the HTTP layer. Each service gets its own settings and its own
//! collaborators, never the whole [`Config`].

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    api_tokens::ApiTokens,
    auth::ValidatorChain,
    clients::Clients,
    clock::{self, SharedClock},
    config::{Config, TrustedProxies},
    container::{ContainerPolicy, ContainerSettings, ContainerTokenServer},
    db::{Db, DbSettings},
    error::Result,
    health::Health,
    jwt::{Generate, KeyRing, KeySettings},
    oauth::OAuth,
    passwords::{self, Passwords},
    registry::{
        Registry, TokenSettings,
        pipeline::{Pipeline, RegistrationStep},
    },
    secret::Secret,
    store::{ApiTokenStore, ClientStore, LoginFailureStore, TokenStore, UserStore},
    telemetry::Metrics,
    throttle::{self, Throttle},
    users::Users,
};

/// What the HTTP layer itself needs from the settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `trusted_proxies`: who may say, in `X-Forwarded-For`, who the client is.
    pub trusted_proxies: TrustedProxies,
    /// `max_body_size`, in bytes.
    pub max_body_size: usize,
    /// `request_timeout`.
    pub request_timeout: Duration,
    /// `public_url` (no trailing slash): the base of the discovery
    /// documents, which are off without it.
    pub public_url: Option<String>,
    /// The `iss` of tokens (`issuer`, or else `public_url`).
    pub issuer: Option<String>,
    /// `metrics_bind`: `/metrics` on its own address instead of `bind`'s.
    pub metrics_bind: Option<String>,
    /// `metrics_token`: the Bearer token `/metrics` requires, when set.
    pub metrics_token: Option<Secret>,
    /// `simplejwt_routes`: whether `/api/token/…` answers.
    pub simplejwt_routes: bool,
}

/// What a library user adds to tokend when building it: registration steps
/// of their own, and the clock (tests set one they move by hand).
#[derive(Clone)]
pub struct Extras {
    pub steps: Vec<Arc<dyn RegistrationStep>>,
    pub clock: SharedClock,
}

impl Default for Extras {
    fn default() -> Self {
        Extras {
            steps: Vec::new(),
            clock: clock::system(),
        }
    }
}

/// Everything a request handler needs, shared by all of them.
#[derive(Clone, Debug)]
pub struct AppState {
    pub http: HttpSettings,
    pub keys: Arc<KeyRing>,
    pub registry: Registry,
    pub users: Users,
    pub api_tokens: ApiTokens,
    /// The container registry token server behind `/token`.
    pub container: ContainerTokenServer,
    pub validators: ValidatorChain,
    /// Registered OAuth clients.
    pub clients: Clients,
    /// Revocation and introspection.
    pub oauth: OAuth,
    pub health: Health,
    /// The metrics recorder, unless `metrics` is off.
    pub metrics: Option<Metrics>,
    /// What every service takes "now" from.
    pub clock: SharedClock,
}

/// What the settings make before anything connects: a setting one of them
/// refuses stops the start before the database is touched.
pub struct Prebuilt {
    keys: Arc<KeyRing>,
    pipeline: Pipeline,
    container: ContainerPolicy,
}

impl Prebuilt {
    /// The key ring (a key generated on a first start), the registration
    /// pipeline and the container registry's policy.
    pub fn from_settings(config: &Config, extras: &Extras) -> anyhow::Result<Self> {
        let pipeline = Pipeline::build(&config.registration_pipeline, &extras.steps)?;
        let container = ContainerPolicy::new(container_settings(config))?;
        // Last: it may write the generated key.
        let keys = KeyRing::load(
            &key_settings(config),
            Generate::IfMissing,
            extras.clock.clone(),
        )?;
        Ok(Prebuilt {
            keys: Arc::new(keys),
            pipeline,
            container,
        })
    }
}

impl AppState {
    /// Builds every service from the settings, over a migrated database.
    pub async fn build(
        config: &Config,
        db: &Db,
        extras: &Extras,
        prebuilt: Prebuilt,
    ) -> anyhow::Result<Self> {
        let Prebuilt {
            keys,
            pipeline,
            container,
        } = prebuilt;
        let clock = extras.clock.clone();
        // First, so that what the services do from the start is counted.
        let metrics = config
            .metrics
            .then(|| Metrics::install(env!("CARGO_PKG_VERSION")))
            .transpose()?;
        let tokens = TokenStore::new(db.clone());
        // A login's statements share the registry's SQLite threads.
        let sqlite = tokens.sqlite_threads();
        let registry = Registry::new(
            tokens,
            keys.clone(),
            token_settings(config),
            pipeline,
            clock.clone(),
        );
        let api_tokens = ApiTokens::new(ApiTokenStore::new(db.clone()), clock.clone());
        let throttle = Throttle::new(
            LoginFailureStore::new(db.clone(), sqlite.clone()),
            throttle::Limits {
                per_username: config.login_max_failures,
                per_address: config.login_max_failures_per_address,
                window: config.login_throttle_window.0,
            },
            clock.clone(),
        );
        let users = Users::new(
            UserStore::sharing(db.clone(), sqlite),
            throttle,
            Passwords::start(passwords::default_threads())?,
            registry.clone(),
            api_tokens.clone(),
            clock.clone(),
            config.update_last_login,
        )
        .await?;
        let container =
            ContainerTokenServer::new(container, users.clone(), registry.clone(), &keys);
        let validators = ValidatorChain::standard(api_tokens.clone(), registry.clone());
        let clients = Clients::new(ClientStore::new(db.clone()), clock.clone());
        let oauth = OAuth::new(
            registry.clone(),
            api_tokens.clone(),
            clients.clone(),
            validators.clone(),
        );
        Ok(AppState {
            http: HttpSettings {
                trusted_proxies: config.trusted_proxies.clone(),
                max_body_size: config.max_body_size,
                request_timeout: config.request_timeout.0,
                public_url: config.public_url().map(str::to_owned),
                issuer: config.issuer(),
                metrics_bind: config.metrics_bind.clone(),
                metrics_token: config.metrics_token.clone(),
                simplejwt_routes: config.simplejwt_routes,
            },
            validators,
            clients,
            oauth,
            keys,
            registry,
            users,
            api_tokens,
            container,
            health: Health::new(db.clone()),
            metrics,
            clock,
        })
    }

    /// Creates the first administrator when there are no users; returns the
    /// generated password, to be shown once.
    pub async fn bootstrap(&self, config: &Config) -> Result<Option<Secret>> {
        self.users
            .bootstrap_admin(config.admin_password.as_ref())
            .await
    }

    /// Removes what is dead before `cutoff` (default: now): tokens, then
    /// login failures older than the throttle's window. Returns how many
    /// tokens went.
    pub async fn archive(&self, cutoff: Option<DateTime<Utc>>) -> Result<u64> {
        let archived = self.registry.archive(cutoff).await?;
        self.users.purge_login_failures().await?;
        Ok(archived)
    }
}

/// How to reach the database.
pub fn db_settings(config: &Config) -> DbSettings {
    DbSettings {
        url: Secret::new(config.database_url()),
        timeout: config.database_timeout.0,
        max_connections: config.database_max_connections,
    }
}

/// The key ring's settings.
pub fn key_settings(config: &Config) -> KeySettings {
    KeySettings {
        algorithm: config.algorithm.clone(),
        secret: config.secret.clone(),
        keys: config.keys.clone(),
        signing_kid: config.signing_kid.clone(),
        data_dir: config.data_dir.clone(),
        issuer: config.issuer(),
        leeway: config.leeway.0,
    }
}

fn token_settings(config: &Config) -> TokenSettings {
    TokenSettings {
        access_lifetime: config.access_token_lifetime,
        refresh_lifetime: config.refresh_token_lifetime,
        rotate_refresh_tokens: config.rotate_refresh_tokens,
        expire_on_refresh: config.expire_on_refresh,
        refresh_reuse_grace: config.refresh_reuse_grace.0,
        issuer: config.issuer(),
        audience: config.audience.clone(),
    }
}

fn container_settings(config: &Config) -> ContainerSettings {
    ContainerSettings {
        services: config.container_services.clone(),
        lifetime: config.container_token_lifetime.0,
        rules: config.container.rules.clone(),
        issuer: config.issuer(),
    }
}
