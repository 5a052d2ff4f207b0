use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{TestApp, error_code};

async fn create(app: &TestApp, access: &str) -> Value {
    let resp = app
        .call(Method::POST, "/api/v1/api-token", access, None)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

/// A new API token's text.
async fn create_token(app: &TestApp, access: &str) -> String {
    create(app, access).await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn bob(app: &TestApp) -> String {
    app.create_user("bob", "bob-password", false).await;
    app.pair("bob", "bob-password").await.0
}

#[tokio::test]
async fn an_api_token_is_created_once_and_authenticates_like_an_access_token() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let body = create(&app, &access).await;
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("tkd_") && token.len() == 42, "{token}");
    assert!(token.starts_with(body["prefix"].as_str().unwrap()));
    let me: Value = app.me(token).await.json().await.unwrap();
    assert_eq!(me["username"], "bob");
    assert_eq!(me["auth"], "api_token");
    // Every Bearer route takes it.
    let resp = app.get_with("/api/v1/tokens", token).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn metadata_never_shows_the_token_and_records_use_once_a_minute() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let token = create_token(&app, &access).await;
    let info: Value = app
        .get_with("/api/v1/api-token", &access)
        .await
        .json()
        .await
        .unwrap();
    assert!(info["last_used_at"].is_null());
    assert!(!info.to_string().contains(&token[8..]));
    assert!(info["created_at"].is_string() && info["prefix"].is_string());

    app.me(&token).await;
    let first: Value = app
        .get_with("/api/v1/api-token", &access)
        .await
        .json()
        .await
        .unwrap();
    assert!(first["last_used_at"].is_string());
    app.me(&token).await;
    let second: Value = app
        .get_with("/api/v1/api-token", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["last_used_at"], second["last_used_at"],
        "no write within the minute"
    );
}

#[tokio::test]
async fn regenerating_refuses_the_old_token_and_accepts_the_new() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let old = create_token(&app, &access).await;
    let new = create_token(&app, &access).await;
    assert_ne!(old, new);
    let (status, code) = error_code(app.me(&old).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
    assert_eq!(app.me(&new).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_refuses_the_token_and_leaves_no_metadata() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let token = create_token(&app, &access).await;
    let resp = app
        .call(Method::DELETE, "/api/v1/api-token", &access, None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = error_code(app.get_with("/api/v1/api-token", &access).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_api_token_cannot_manage_api_tokens() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let token = create_token(&app, &access).await;
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let resp = app
            .call(method.clone(), "/api/v1/api-token", &token, None)
            .await;
        let (status, code) = error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{method}"
        );
    }
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_administrator_revokes_another_users_token() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let token = create_token(&app, &access).await;
    let admin = app.admin_token().await;
    let resp = app
        .call(Method::DELETE, "/api/v1/users/bob/api-token", &admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .call(Method::DELETE, "/api/v1/users/bob/api-token", &access, None)
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn user_operations_revoke_the_api_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let cases: [(Method, &str, Option<Value>); 3] = [
        (Method::POST, "/api/v1/users/bob/tokens/expire", None),
        (
            Method::POST,
            "/api/v1/users/bob/password",
            Some(json!({"password": "bob-password"})),
        ),
        (Method::DELETE, "/api/v1/users/bob", None),
    ];
    app.create_user("bob", "bob-password", false).await;
    for (method, path, body) in cases {
        let (access, _) = app.pair("bob", "bob-password").await;
        let token = create_token(&app, &access).await;
        assert_eq!(app.me(&token).await.status(), StatusCode::OK);
        let resp = app.call(method.clone(), path, &admin, body).await;
        assert!(resp.status().is_success(), "{method} {path}");
        assert_eq!(
            app.me(&token).await.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_bad_checksum_is_refused_without_touching_the_database() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let token = create_token(&app, &access).await;
    let mut typo = token.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let foreign = token.replacen("tkd_", "ghp_", 1);

    // With the database gone, a well-formed token needs it (503) but a
    // malformed one is refused by its shape alone (401).
    app.close_database().await;
    let (status, code) = error_code(app.me(&token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    for bad in [&typo, &foreign] {
        let (status, code) = error_code(app.me(bad).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "token_not_valid"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn an_inactive_users_api_token_is_refused() {
    let app = TestApp::spawn().await;
    let access = bob(&app).await;
    let token = create_token(&app, &access).await;
    app.state
        .users
        .update("bob", Some(false), None, tokend::users::LastAdmin::Keep)
        .await
        .unwrap();
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    app.state
        .users
        .update("bob", Some(true), None, tokend::users::LastAdmin::Keep)
        .await
        .unwrap();
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
}
