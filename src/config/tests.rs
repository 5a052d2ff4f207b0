//! Reading and checking settings.

use super::*;

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
    assert_eq!(c.container.rules.len(), 2);
    assert_eq!(c.container.rules[0].resource_type, "repository");
    assert_eq!(c.container.rules[1].resource_type, "registry");
    assert!(c.validate().is_ok());
}

#[test]
fn registry_service_takes_a_list_or_comma_separated_names() {
    let c = from_toml(r#"registry_service = "one, two""#).unwrap();
    assert_eq!(c.container_services, ["one", "two"]);
    let c = from_toml(r#"registry_service = ["three"]"#).unwrap();
    assert_eq!(c.container_services, ["three"]);
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

#[test]
fn public_url_must_be_an_absolute_http_url_and_is_named_when_not() {
    for bad in [
        "auth.example.com",
        "ftp://auth.example.com",
        "https://",
        "https://a b",
        "https://x/?q=1",
    ] {
        let c = from_toml(&format!("public_url = {bad:?}")).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("public_url: "), "{bad}: {err}");
    }
    let c = from_toml(r#"public_url = "https://auth.example.com/""#).unwrap();
    assert!(c.validate().is_ok());
    assert_eq!(c.public_url(), Some("https://auth.example.com"));
}

#[test]
fn issuer_defaults_to_public_url_and_wins_when_set() {
    let c = from_toml(r#"public_url = "https://auth.example.com""#).unwrap();
    assert_eq!(c.issuer().as_deref(), Some("https://auth.example.com"));
    let c = from_toml(
        r#"public_url = "https://auth.example.com"
        issuer = "tokend-prod""#,
    )
    .unwrap();
    assert_eq!(c.issuer().as_deref(), Some("tokend-prod"));
    assert_eq!(from_toml("").unwrap().issuer(), None);
}

#[test]
fn metrics_and_log_settings_are_read_and_checked() {
    let c = from_toml("").unwrap();
    assert!(c.metrics && c.metrics_bind.is_none() && c.metrics_token.is_none());
    assert_eq!(c.log_format, LogFormat::Text);
    let c = from_toml(
        r#"
        metrics = false
        metrics_bind = "127.0.0.1:9100"
        metrics_token = "sixteen-chars-or-more"
        log_format = "json"
        "#,
    )
    .unwrap();
    assert!(!c.metrics);
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(c.validate().is_ok());
    assert!(
        !format!("{c:?}").contains("sixteen-chars"),
        "the token is redacted"
    );
    let c = from_toml(r#"metrics_bind = "localhost""#).unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("metrics_bind: `localhost`"), "{err}");
    let c = from_toml(r#"metrics_token = "short""#).unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("metrics_token: must be at least 16"), "{err}");
    assert!(from_toml(r#"log_format = "xml""#).is_err());
}
