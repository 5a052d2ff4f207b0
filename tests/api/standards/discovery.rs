//! Point 1: RFC 8414 metadata at both well-known paths, from `public_url`.

use reqwest::StatusCode;
use serde_json::Value;

use common::{TestApp, error_code};

const PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

#[tokio::test]
async fn discovery_is_served_at_both_paths_from_public_url() {
    let app =
        TestApp::spawn_with(|c| c.public_url = Some("https://auth.example.com/".into())).await;
    let first = app.get_json(PATHS[0]).await;
    let second = app.get_json(PATHS[1]).await;
    assert_eq!(first, second);
    let base = "https://auth.example.com";
    assert_eq!(first["issuer"], base);
    assert_eq!(first["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(first["token_endpoint"], format!("{base}/token"));
    assert_eq!(
        first["revocation_endpoint"],
        format!("{base}/api/v1/oauth/revoke")
    );
    assert_eq!(
        first["introspection_endpoint"],
        format!("{base}/api/v1/oauth/introspect")
    );
    assert_eq!(first["response_types_supported"], serde_json::json!([]));
    let methods = &first["introspection_endpoint_auth_methods_supported"];
    for method in ["client_secret_basic", "client_secret_post"] {
        assert!(methods.as_array().unwrap().iter().any(|m| m == method));
    }
    assert!(first["grant_types_supported"].is_array());
    assert!(first["token_endpoint_auth_methods_supported"].is_array());
    assert!(first["revocation_endpoint_auth_methods_supported"].is_array());
    // Nothing that does not apply is invented.
    assert!(first.get("authorization_endpoint").is_none());
    assert!(first.get("userinfo_endpoint").is_none());
}

#[tokio::test]
async fn issuer_defaults_to_public_url_in_tokens_too() {
    let app = TestApp::spawn_with(|c| c.public_url = Some("https://auth.example.com".into())).await;
    let (access, _) = app.pair("admin", common::ADMIN_PASSWORD).await;
    assert_eq!(common::claims(&access)["iss"], "https://auth.example.com");
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_configured_issuer_wins_over_public_url() {
    let app = TestApp::spawn_with(|c| {
        c.public_url = Some("https://auth.example.com".into());
        c.issuer = Some("https://issuer.example.com".into());
    })
    .await;
    let doc: Value = app.get_json(PATHS[0]).await;
    assert_eq!(doc["issuer"], "https://issuer.example.com");
    assert_eq!(
        doc["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
}

#[tokio::test]
async fn without_public_url_both_paths_answer_404_naming_the_setting() {
    let app = TestApp::spawn().await;
    for path in PATHS {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("public_url"),
            "{body}"
        );
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            error_code(resp).await,
            (StatusCode::NOT_FOUND, "not_found".into())
        );
    }
}

#[tokio::test]
async fn a_bad_public_url_stops_the_start_with_one_line_naming_it() {
    let sandbox = common::Sandbox::new().await;
    let (code, _, stderr) = sandbox.run(
        &["migrate"],
        &[("TOKEND_PUBLIC_URL", "auth.example.com")],
        "",
    );
    assert_eq!(code, 2, "{stderr}");
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("public_url"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
}
