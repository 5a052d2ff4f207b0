//! API tokens as Basic passwords, and the login throttle behind Basic auth.

use reqwest::StatusCode;
use serde_json::Value;

use common::{TestApp, claims, error_code};

use super::{SERVICE, get_token, json_ok, post_token, with_alice_and_bob};

async fn api_token(app: &TestApp, user: &str, password: &str) -> String {
    let (access, _) = app.pair(user, password).await;
    let resp = app
        .call(reqwest::Method::POST, "/api/v1/api-token", &access, None)
        .await;
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_api_token_is_a_basic_password_with_its_owners_username() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let token = api_token(&app, "alice", "alice-password").await;
    let query = [("service", SERVICE), ("scope", "repository:alice/app:pull")];
    let body = json_ok(get_token(&app, &query, Some(("alice", &token))).await).await;
    assert_eq!(claims(body["token"].as_str().unwrap())["sub"], "alice");
    let form = [
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "tests"),
        ("username", "alice"),
        ("password", token.as_str()),
    ];
    json_ok(post_token(&app, &form).await).await;
}

#[tokio::test]
async fn an_api_token_with_another_username_is_refused() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let token = api_token(&app, "alice", "alice-password").await;
    let query = [("service", SERVICE), ("scope", "repository:alice/app:pull")];
    let resp = get_token(&app, &query, Some(("bob", &token))).await;
    assert!(resp.headers().contains_key("www-authenticate"));
    let (status, code) = error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "no_active_account")
    );
}

#[tokio::test]
async fn a_revoked_api_token_is_refused_as_a_basic_password() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let token = api_token(&app, "alice", "alice-password").await;
    app.state.users.revoke_api_token("alice").await.unwrap();
    let query = [("service", SERVICE)];
    let resp = get_token(&app, &query, Some(("alice", &token))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn basic_auth_failures_count_toward_the_login_throttle() {
    let app = TestApp::spawn_with(|c| c.login_max_failures = 2).await;
    with_alice_and_bob(&app).await;
    let query = [("service", SERVICE)];
    for _ in 0..2 {
        let resp = get_token(&app, &query, Some(("alice", "wrong"))).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = get_token(&app, &query, Some(("alice", "alice-password"))).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        app.obtain("alice", "alice-password").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
