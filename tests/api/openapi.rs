use serde_json::Value;

use common::TestApp;

#[tokio::test]
async fn checked_in_spec_equals_the_generated_one() {
    let generated: Value = serde_json::from_str(&tokend::api::spec_json()).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let checked_in: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("openapi/openapi.json exists"))
            .expect("openapi/openapi.json is JSON");
    assert!(
        generated == checked_in,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn served_spec_lists_routes_but_not_itself_and_has_no_servers() {
    let app = TestApp::spawn().await;
    let spec: Value = app.get_json("/openapi.json").await;
    let paths = spec["paths"].as_object().unwrap();
    for route in [
        "/api/v1/token/obtain",
        "/api/v1/token/refresh",
        "/api/v1/token/verify",
        "/api/v1/token/expire",
        "/api/v1/me",
        "/health",
        "/ready",
        "/.well-known/jwks.json",
        "/token",
    ] {
        assert!(paths.contains_key(route), "{route} missing from the spec");
    }
    assert!(!paths.contains_key("/openapi.json"));
    assert!(!paths.contains_key("/docs"));
    assert!(
        spec.get("servers")
            .is_none_or(|s| s.as_array().is_some_and(|a| a.is_empty()))
    );
}

#[tokio::test]
async fn docs_are_served_as_a_page() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("<html"));
}

/// What the token server refuses without, its spec requires: a client
/// generated from the spec sends these fields.
#[tokio::test]
async fn the_token_server_documents_the_fields_it_requires() {
    let spec: Value = serde_json::from_str(&tokend::api::spec_json()).unwrap();
    let service = spec["paths"]["/token"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "service")
        .unwrap();
    assert_eq!(service["required"], true);
    let required = &spec["components"]["schemas"]["OAuthRequest"]["required"];
    for field in ["grant_type", "service", "client_id"] {
        assert!(
            required.as_array().unwrap().iter().any(|f| f == field),
            "{field}: {required}"
        );
    }
}
