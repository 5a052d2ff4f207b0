//! Settings: defaults, then `tokend.toml` (or `$TOKEND_CONFIG`), then `TOKEND_*`
//! environment variables. This is the only module that reads the environment.

use std::{fmt, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    pub refresh_reuse_grace: Dur,
    pub update_last_login: bool,
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
    /// `iss` put in and required on every token, when set.
    pub issuer: Option<String>,
    /// `aud` put in and required on every token, when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`.
    pub leeway: Dur,
    /// Largest accepted request body, in bytes.
    pub max_body_size: usize,
    pub trust_proxy_headers: bool,
    /// Names of the registration steps, in order.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub registration_pipeline: Vec<String>,
    /// Password of the `admin` user created on a first start with no users.
    pub admin_password: Option<Secret>,
    /// Failed logins for one username within the window before 429.
    pub login_max_failures: u64,
    /// Failed logins from one client address within the window before 429.
    pub login_max_failures_per_address: u64,
    pub login_throttle_window: Dur,
    /// How often the server archives dead tokens by itself; off when absent.
    pub archive_interval: Option<Dur>,
    /// How long a request waits for a database connection before answering 503.
    pub database_timeout: Dur,
    pub database_max_connections: u32,
    /// How long in-flight requests may run on shutdown.
    pub shutdown_grace: Dur,
    /// Longest a request may take before it is abandoned with a 503: bounds
    /// a query caught by a network that went silent, which
    /// `database_timeout` (a wait for a connection) does not.
    pub request_timeout: Dur,
    /// The container registry `service` names `/token` answers for.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub registry_service: Vec<String>,
    /// Lifetime of container registry tokens; at least 60 seconds.
    pub registry_token_lifetime: Dur,
    /// The container registry's access rules.
    pub registry: RegistryConfig,
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
            refresh_reuse_grace: Dur(Duration::ZERO),
            update_last_login: false,
            algorithm: "ES256".into(),
            secret: None,
            keys: Vec::new(),
            signing_kid: None,
            issuer: None,
            audience: None,
            leeway: Dur(Duration::ZERO),
            max_body_size: 64 * 1024,
            trust_proxy_headers: false,
            registration_pipeline: ["register_pairs", "connect_user", "connect_device"]
                .map(String::from)
                .to_vec(),
            admin_password: None,
            login_max_failures: 5,
            login_max_failures_per_address: 50,
            login_throttle_window: Dur(Duration::from_secs(15 * 60)),
            archive_interval: None,
            database_timeout: Dur(Duration::from_secs(5)),
            database_max_connections: 16,
            shutdown_grace: Dur(Duration::from_secs(10)),
            request_timeout: Dur(Duration::from_secs(30)),
            registry_service: vec!["tokend".into()],
            registry_token_lifetime: Dur(Duration::from_secs(5 * 60)),
            registry: RegistryConfig::default(),
        }
    }
}

/// The `[registry]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Ordered access rules; the first that matches an account and a
    /// resource decides. Setting them replaces the default list.
    pub rules: Vec<RegistryRule>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            rules: vec![RegistryRule {
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
pub struct RegistryRule {
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

/// A setting that could not be read: its message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("bad setting: {0}")]
pub struct ConfigError(pub String);

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

    /// Checks what serde cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "bind: `{}` is not an address like 127.0.0.1:8000",
                self.bind
            ));
        }
        if let Some(url) = &self.database_url {
            let url = url.expose();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return bad(
                    "database_url: must start with sqlite:, postgres:// or postgresql://".into(),
                );
            }
        }
        let alg = self.algorithm.as_str();
        if !crate::jwt::SUPPORTED_ALGORITHMS.contains(&alg) {
            return bad(format!(
                "algorithm: `{alg}` is not one of {}",
                crate::jwt::SUPPORTED_ALGORITHMS.join(", ")
            ));
        }
        if alg.starts_with("HS") && self.keys.is_empty() {
            match &self.secret {
                None => return bad(format!("secret: required with algorithm {alg}")),
                Some(s) if s.expose().len() < 32 => {
                    return bad("secret: must be at least 32 bytes".into());
                }
                _ => {}
            }
        }
        if self.archive_interval.is_some_and(|d| d.0.is_zero()) {
            return bad(
                "archive_interval: must be greater than 0s (leave it out to switch it off)".into(),
            );
        }
        if self.max_body_size == 0 {
            return bad("max_body_size: must be greater than 0".into());
        }
        if self.request_timeout.0.is_zero() {
            return bad("request_timeout: must be greater than 0s".into());
        }
        if self.database_max_connections == 0 {
            return bad("database_max_connections: must be greater than 0".into());
        }
        crate::registry::pipeline::Pipeline::check_names(&self.registration_pipeline)
            .map_err(|e| ConfigError(format!("registration_pipeline: {e}")))?;
        self.validate_registry()?;
        Ok(())
    }

    /// The container registry settings: services, token lifetime, rules.
    pub fn validate_registry(&self) -> Result<(), ConfigError> {
        if self.registry_service.is_empty() {
            return Err(ConfigError(
                "registry_service: name at least one service".into(),
            ));
        }
        if self.registry_token_lifetime.0 < Duration::from_secs(60) {
            return Err(ConfigError(
                "registry_token_lifetime: must be at least 60s (the token spec's minimum)".into(),
            ));
        }
        crate::container::Rules::compile(&self.registry.rules)
            .map_err(|e| ConfigError(format!("registry.rules: {e}")))?;
        Ok(())
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

/// A string that must never be printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A duration written like `30s`, `5m`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(d)?.into_string();
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// A token lifetime: a duration, or `never` (no expiry at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub Option<Duration>);

impl Lifetime {
    pub const NEVER: Lifetime = Lifetime(None);

    pub fn secs(secs: u64) -> Self {
        Lifetime(Some(Duration::from_secs(secs)))
    }
}

impl Serialize for Lifetime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_str("never"),
            Some(d) => Dur(d).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(d)?.into_string();
        if text.trim() == "never" {
            return Ok(Lifetime(None));
        }
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => Err(serde::de::Error::custom(
                "a lifetime must be positive, or `never`",
            )),
            Ok(d) => Ok(Lifetime(Some(d))),
            Err(e) => Err(serde::de::Error::custom(format!("{e}, or `never`"))),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a duration like 30s, 5m, 1d"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    S(String),
    N(u64),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::S(s) => s,
            StringOrNumber::N(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrString<T> {
    List(Vec<T>),
    Text(String),
}

fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrString::<String>::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::Text(text) => split_list(&text),
    })
}

/// `[[keys]]` tables in the file, or `TOKEND_KEYS=a.pem,b.pem`.
fn keys_from_list_or_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyConfig>, D::Error> {
    Ok(match ListOrString::<KeyConfig>::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::Text(text) => split_list(&text)
            .into_iter()
            .map(|path| KeyConfig {
                path: Some(path.into()),
                ..KeyConfig::default()
            })
            .collect(),
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_humans_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn never_is_a_lifetime_without_expiry() {
        let l: Lifetime = serde_json::from_str("\"never\"").unwrap();
        assert_eq!(l, Lifetime::NEVER);
        let l: Lifetime = serde_json::from_str("\"1d\"").unwrap();
        assert_eq!(l, Lifetime::secs(86400));
        assert!(serde_json::from_str::<Lifetime>("\"0s\"").is_err());
    }

    fn from_toml(text: &str) -> Result<Config, String> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| describe(&e))
    }

    #[test]
    fn registry_rules_from_the_file_replace_the_default_list() {
        let c = from_toml(
            r#"
            [[registry.rules]]
            account = ""
            repository = "public/*"
            actions = ["pull"]

            [[registry.rules]]
            account = "*"
            type = "registry"
            repository = "catalog"
            actions = ["*"]
            "#,
        )
        .unwrap();
        assert_eq!(c.registry.rules.len(), 2);
        assert_eq!(c.registry.rules[0].resource_type, "repository");
        assert_eq!(c.registry.rules[1].resource_type, "registry");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn registry_service_takes_a_list_or_comma_separated_names() {
        let c = from_toml(r#"registry_service = "one, two""#).unwrap();
        assert_eq!(c.registry_service, ["one", "two"]);
        let c = from_toml(r#"registry_service = ["three"]"#).unwrap();
        assert_eq!(c.registry_service, ["three"]);
    }

    #[test]
    fn registry_settings_are_checked() {
        let short = from_toml(r#"registry_token_lifetime = "59s""#).unwrap();
        assert!(short.validate().is_err());
        let none = from_toml(r#"registry_service = """#).unwrap();
        assert!(none.validate().is_err());
        let bad_rule = from_toml(
            r#"
            [[registry.rules]]
            account = "*"
            repository = "${user}/*"
            actions = ["pull"]
            "#,
        )
        .unwrap();
        let err = bad_rule.validate().unwrap_err().to_string();
        assert!(err.contains("registry.rules"), "{err}");
    }

    #[test]
    fn a_zero_request_timeout_is_refused_by_name() {
        assert_eq!(
            from_toml("").unwrap().request_timeout.0,
            Duration::from_secs(30)
        );
        let c = from_toml(r#"request_timeout = "0s""#).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("request_timeout: must be"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let c = Config {
            secret: Some(Secret::new("super-secret-value-super-secret-value")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("super-secret"));
    }
}
