//! Settings: defaults, then `tokend.toml` (or `$TOKEND_CONFIG`), then `TOKEND_*`
//! environment variables. This is the only module that reads the environment.
//!
//! A leaf: it parses settings and checks each value's type and range. What
//! a value means to a service (an algorithm, a key file, a rule) is checked
//! by that service when it is built; start-up names the setting either way.

use std::{path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

mod values;

pub use values::{HumanDuration, Lifetime, TrustedProxies};
use values::{keys_from_list_or_paths, list_or_comma_separated};

use crate::secret::Secret;

/// Every setting of tokend. `Config::default()` is a working configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// `sqlite://…` or `postgres://…`; empty means `<data_dir>/tokend.db`.
    pub database_url: Option<Secret>,
    /// Folder for the SQLite database and the generated signing key.
    pub data_dir: PathBuf,
    pub access_token_lifetime: Lifetime,
    pub refresh_token_lifetime: Lifetime,
    pub rotate_refresh_tokens: bool,
    pub expire_on_refresh: bool,
    pub refresh_reuse_grace: HumanDuration,
    pub update_last_login: bool,
    /// Mount simplejwt's routes (`/api/token/`, …) beside tokend's own.
    pub simplejwt_routes: bool,
    /// Algorithm of the key generated when `keys` is empty (`ES256`, `ES384`,
    /// `RS256`, `EdDSA`), or of `secret` (`HS256`, `HS384`, `HS512`).
    pub algorithm: String,
    /// Raw UTF-8 secret for the HS* algorithms, at least 32 bytes.
    pub secret: Option<Secret>,
    /// Signing keys; the first (or `signing_kid`) signs, all verify.
    #[serde(deserialize_with = "keys_from_list_or_paths")]
    pub keys: Vec<KeyConfig>,
    /// `kid` of the key that signs; default: the first key.
    pub signing_kid: Option<String>,
    /// Where clients reach tokend, like `https://auth.example.com`: the
    /// base of the discovery documents' URLs, and `issuer` unless that is
    /// set. Without it the discovery documents answer 404.
    pub public_url: Option<String>,
    /// `iss` put in and required on every token, when set (default:
    /// `public_url`).
    pub issuer: Option<String>,
    /// `aud` put in and required on every token, when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`.
    pub leeway: HumanDuration,
    /// Largest accepted request body, in bytes.
    pub max_body_size: usize,
    /// Which proxies in front of tokend are trusted to say, in
    /// `X-Forwarded-For`, who the client is: none, a number of hops, or
    /// the proxies' networks.
    pub trusted_proxies: TrustedProxies,
    /// Replaced by `trusted_proxies`; refused with a line saying so.
    #[serde(skip_serializing)]
    pub trust_proxy_headers: Option<bool>,
    /// Names of the registration steps, in order.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub registration_pipeline: Vec<String>,
    /// Password of the `admin` user created on a first start with no users.
    pub admin_password: Option<Secret>,
    /// Failed logins for one username within the window before 429.
    pub login_max_failures: u64,
    /// Failed logins from one client address within the window before 429.
    pub login_max_failures_per_address: u64,
    pub login_throttle_window: HumanDuration,
    /// How often the server archives dead tokens by itself; off when absent.
    pub archive_interval: Option<HumanDuration>,
    /// How long a request waits for a database connection before answering
    /// 503; on PostgreSQL also the longest a registry look-up or write takes.
    pub database_timeout: HumanDuration,
    pub database_max_connections: u32,
    /// How long in-flight requests may run on shutdown.
    pub shutdown_grace: HumanDuration,
    /// Longest a request may take before it is abandoned with a 503: bounds
    /// a query caught by a network that went silent, which
    /// `database_timeout` (a wait for a connection) does not.
    pub request_timeout: HumanDuration,
    /// The container registry `service` names `/token` answers for.
    #[serde(
        rename = "registry_service",
        deserialize_with = "list_or_comma_separated"
    )]
    pub container_services: Vec<String>,
    /// Lifetime of container registry tokens; at least 60 seconds.
    #[serde(rename = "registry_token_lifetime")]
    pub container_token_lifetime: HumanDuration,
    /// The container registry's access rules (the `[registry]` table).
    #[serde(rename = "registry")]
    pub container: ContainerConfig,
    /// Prometheus metrics at `/metrics`; off: nothing is recorded or served.
    pub metrics: bool,
    /// Serve `/metrics` on this address instead of on `bind`.
    pub metrics_bind: Option<String>,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<Secret>,
    /// `text` (default) or `json`: one JSON object per log line.
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON formatter).
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            database_url: None,
            data_dir: PathBuf::from("tokend-data"),
            access_token_lifetime: Lifetime(Some(Duration::from_secs(5 * 60))),
            refresh_token_lifetime: Lifetime(Some(Duration::from_secs(24 * 3600))),
            rotate_refresh_tokens: false,
            expire_on_refresh: false,
            refresh_reuse_grace: HumanDuration(Duration::from_secs(10)),
            update_last_login: false,
            simplejwt_routes: true,
            algorithm: "ES256".into(),
            secret: None,
            keys: Vec::new(),
            signing_kid: None,
            public_url: None,
            issuer: None,
            audience: None,
            leeway: HumanDuration(Duration::ZERO),
            max_body_size: 64 * 1024,
            trusted_proxies: TrustedProxies::None,
            trust_proxy_headers: None,
            registration_pipeline: ["register_pairs", "connect_user", "connect_device"]
                .map(String::from)
                .to_vec(),
            admin_password: None,
            login_max_failures: 5,
            login_max_failures_per_address: 50,
            login_throttle_window: HumanDuration(Duration::from_secs(15 * 60)),
            archive_interval: None,
            database_timeout: HumanDuration(Duration::from_secs(5)),
            database_max_connections: 16,
            shutdown_grace: HumanDuration(Duration::from_secs(10)),
            request_timeout: HumanDuration(Duration::from_secs(30)),
            container_services: vec!["tokend".into()],
            container_token_lifetime: HumanDuration(Duration::from_secs(5 * 60)),
            container: ContainerConfig::default(),
            metrics: true,
            metrics_bind: None,
            metrics_token: None,
            log_format: LogFormat::Text,
        }
    }
}

/// The `[registry]` table: the container registry's access rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// Ordered access rules; the first that matches an account and a
    /// resource decides. Setting them replaces the default list.
    pub rules: Vec<ContainerRule>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            rules: vec![ContainerRule {
                account: "*".into(),
                resource_type: "repository".into(),
                repository: "${account}/*".into(),
                actions: ["pull", "push", "delete"].map(String::from).to_vec(),
            }],
        }
    }
}

/// One `[[registry.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRule {
    /// A username, `*` for any authenticated user, `""` for anonymous callers.
    pub account: String,
    /// The resource type the rule is about: `repository` unless told.
    #[serde(rename = "type", default = "repository_type")]
    pub resource_type: String,
    /// A glob over resource names (`*` any run of characters, `?` one);
    /// `${account}` stands for the caller's username.
    pub repository: String,
    /// Actions granted (`pull`, `push`, `delete`, …), or `*` for every action.
    pub actions: Vec<String>,
}

fn repository_type() -> String {
    "repository".into()
}

/// A configured signing key: a PEM file or a raw secret.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// PEM private key (PKCS#8, SEC1 or PKCS#1): P-256, P-384, RSA or Ed25519.
    pub path: Option<PathBuf>,
    /// Raw UTF-8 secret for HS256/HS384/HS512, at least 32 bytes.
    pub secret: Option<Secret>,
    /// Default: the libtrust fingerprint of the public key.
    pub kid: Option<String>,
    /// A PEM key's algorithm follows from its type (this must agree);
    /// a secret's defaults to HS256.
    pub alg: Option<String>,
    /// PEM certificate chain for the key (leaf first), sent as `x5c`.
    pub cert: Option<PathBuf>,
}

/// A setting that could not be read or does not work: its message names
/// the setting. Services return it for the settings they check themselves.
#[derive(Debug, thiserror::Error)]
#[error("bad setting: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// `setting: why`.
    pub fn new(setting: &str, why: impl std::fmt::Display) -> Self {
        ConfigError(format!("{setting}: {why}"))
    }
}

impl Config {
    /// Reads `tokend.toml` (or `$TOKEND_CONFIG`) and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os("TOKEND_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("tokend.toml"));
        let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(Env::raw().only(&["database_url"]))
            .merge(
                Env::prefixed("TOKEND_")
                    .ignore(&["config", "test_database_url", "log"])
                    .split("__"),
            )
            .extract()
            .map_err(|e| ConfigError(describe(&e)))?;
        // Key and certificate paths in the file are relative to the file
        // (those of TOKEND_KEYS to the working directory).
        let keys_from_env = std::env::var_os("TOKEND_KEYS").is_some();
        if let Some(dir) = file.parent().filter(|_| file.exists() && !keys_from_env) {
            for key in &mut config.keys {
                for path in [key.path.as_mut(), key.cert.as_mut()].into_iter().flatten() {
                    if path.is_relative() {
                        *path = dir.join(&*path);
                    }
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks each value's range; what a value means to a service is
    /// checked by that service.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "bind",
                format!("`{}` is not an address like 127.0.0.1:8000", self.bind),
            ));
        }
        if let Some(addr) = &self.metrics_bind
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::new(
                "metrics_bind",
                format!("`{addr}` is not an address like 127.0.0.1:9100"),
            ));
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().len() < 16)
        {
            return Err(ConfigError::new(
                "metrics_token",
                "must be at least 16 characters",
            ));
        }
        if let Some(url) = &self.database_url {
            let url = url.expose();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(ConfigError::new(
                    "database_url",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
        }
        if let Some(url) = &self.public_url {
            values::check_public_url(url).map_err(|why| ConfigError::new("public_url", why))?;
        }
        if self.trust_proxy_headers.is_some() {
            return Err(ConfigError::new(
                "trust_proxy_headers",
                "replaced by trusted_proxies: a number of proxy hops (e.g. 1), or the proxies' networks (e.g. 10.0.0.0/8)",
            ));
        }
        if self.archive_interval.is_some_and(|d| d.0.is_zero()) {
            return Err(ConfigError::new(
                "archive_interval",
                "must be greater than 0s (leave it out to switch it off)",
            ));
        }
        let positive = [
            ("max_body_size", self.max_body_size as u128),
            ("request_timeout", self.request_timeout.0.as_nanos()),
            (
                "database_max_connections",
                u128::from(self.database_max_connections),
            ),
        ];
        for (setting, value) in positive {
            if value == 0 {
                let zero = if setting == "request_timeout" {
                    "0s"
                } else {
                    "0"
                };
                return Err(ConfigError::new(
                    setting,
                    format!("must be greater than {zero}"),
                ));
            }
        }
        Ok(())
    }

    /// The `iss` of tokens: `issuer`, or else `public_url`.
    pub fn issuer(&self) -> Option<String> {
        self.issuer
            .clone()
            .or_else(|| self.public_url().map(str::to_owned))
    }

    /// `public_url` without a trailing slash, when set.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }

    /// The database URL, defaulting to a SQLite file in `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("tokend.db").display()
            ),
        }
    }
}

/// One line naming the setting that failed.
fn describe(err: &figment::Error) -> String {
    let key = err.path.join(".");
    let from_env = err
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let name = if key.is_empty() {
        "configuration".to_owned()
    } else if from_env {
        format!("TOKEND_{}", key.to_uppercase())
    } else {
        key
    };
    let mut kind = err.kind.to_string();
    kind = kind.replace('\n', " ");
    format!("{name}: {kind}")
}

#[cfg(test)]
mod tests;
