use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

async fn revoke(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/oauth/revoke"))
        .form(&[("token", token), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn revoking_a_refresh_token_expires_its_tree() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(revoke(&app, &refresh).await.status(), StatusCode::OK);
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn revoking_an_access_token_expires_only_it() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(revoke(&app, &access).await.status(), StatusCode::OK);
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_an_unknown_token_is_200() {
    let app = TestApp::spawn().await;
    assert_eq!(revoke(&app, "no-such-token").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn introspection_is_registry_aware() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let introspect = |token: String| {
        app.call(
            Method::POST,
            "/api/v1/oauth/introspect",
            &admin,
            Some(json!({ "token": token })),
        )
    };
    let body: Value = introspect(access.clone()).await.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["username"], "admin");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["tokend_kind"], "access");
    assert!(body["exp"].is_i64() && body["iat"].is_i64() && body["jti"].is_string());

    app.expire(&access, false).await;
    let body: Value = introspect(access).await.json().await.unwrap();
    assert_eq!(body, json!({"active": false}));
    let body: Value = introspect("garbage".into()).await.json().await.unwrap();
    assert_eq!(body, json!({"active": false}));
}

#[tokio::test]
async fn introspection_takes_the_rfc_form_encoding() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let resp = app
        .client
        .post(app.url("/api/v1/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], true);
}
