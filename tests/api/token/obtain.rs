use reqwest::StatusCode;
use serde_json::{Value, json};
use tokend::config::Lifetime;

use common::{ADMIN_PASSWORD, TestApp, claims, header};

use super::assert_refused;

#[tokio::test]
async fn obtain_returns_a_pair_with_simplejwt_fields_and_claims() {
    let app = TestApp::spawn().await;
    let resp = app.obtain("admin", ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["refresh_expires_in"], 86400);
    let access = claims(body["access"].as_str().unwrap());
    let refresh = claims(body["refresh"].as_str().unwrap());
    assert_eq!(access["token_type"], "access");
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["username"], "admin");
    assert_eq!(access["sub"], access["user_id"]);
    assert!(access["jti"].is_string() && access["iat"].is_i64());
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        300
    );
    assert_ne!(access["jti"], refresh["jti"]);
    let h = header(body["access"].as_str().unwrap());
    assert_eq!(h["alg"], "ES256");
    assert!(h["kid"].is_string());
}

#[tokio::test]
async fn obtain_accepts_form_encoded_credentials() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let wrong = app.obtain("admin", "not-the-password").await;
    let wrong_status = wrong.status();
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = app.obtain("nobody", "not-the-password").await;
    assert_eq!(unknown.status(), wrong_status);
    assert_eq!(unknown.json::<Value>().await.unwrap(), wrong_body);
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_body["code"], "no_active_account");
}

#[tokio::test]
async fn access_token_authenticates_me() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = app.me(&access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["auth"], "jwt");
}

#[tokio::test]
async fn every_issued_token_is_registered_with_user_and_device() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .header("user-agent", "tokend-tests/1.0")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let access = body["access"].as_str().unwrap();
    let refresh = body["refresh"].as_str().unwrap();
    let a = app.row(access).await;
    let r = app.row(refresh).await;
    assert_eq!(a.token_type, "access");
    assert_eq!(r.token_type, "refresh");
    assert_eq!(a.parent_id, Some(r.id));
    assert_eq!(r.parent_id, None);
    let user_id: uuid::Uuid = claims(access)["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(a.user_id, Some(user_id));
    assert!(a.expires_at.is_some() && a.expired_at.is_none());
    let device = app.device(a.device_id.expect("device")).await;
    assert_eq!(device.user_agent, "tokend-tests/1.0");
    assert_eq!(device.client_address, "127.0.0.1");
}

#[tokio::test]
async fn never_lifetimes_issue_tokens_without_expiry() {
    let app = TestApp::spawn_with(|c| {
        c.access_token_lifetime = Lifetime::NEVER;
        c.refresh_token_lifetime = Lifetime::NEVER;
    })
    .await;
    let resp = app.obtain("admin", ADMIN_PASSWORD).await;
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("expires_in").is_none());
    assert!(body.get("refresh_expires_in").is_none());
    let access = body["access"].as_str().unwrap();
    assert!(claims(access).get("exp").is_none());
    assert!(app.row(access).await.expires_at.is_none());
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    assert_eq!(app.expire(access, false).await.status(), StatusCode::OK);
    assert_refused(&app, access).await;
}

#[tokio::test]
async fn hs256_with_a_secret_signs_and_verifies() {
    let app = TestApp::spawn_with(|c| {
        c.algorithm = "HS256".into();
        c.secret = Some(tokend::secret::Secret::new(
            "0123456789abcdef0123456789abcdef",
        ));
    })
    .await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(header(&access)["alg"], "HS256");
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
}
