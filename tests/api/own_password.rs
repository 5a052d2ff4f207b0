//! `POST /api/v1/me/password`: a user changes their own password with the
//! current one; their other sessions die, the caller's stays.

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PATH: &str = "/api/v1/me/password";

async fn change(app: &TestApp, access: &str, current: &str, new: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        PATH,
        access,
        Some(json!({"current_password": current, "new_password": new})),
    )
    .await
}

async fn bob(app: &TestApp) {
    app.create_user("bob", "old-password", false).await;
}

#[tokio::test]
async fn a_password_change_keeps_the_callers_session_and_ends_the_others() {
    let app = TestApp::spawn().await;
    bob(&app).await;
    let (access, refresh) = app.pair("bob", "old-password").await;
    let (other_access, other_refresh) = app.pair("bob", "old-password").await;

    let resp = change(&app, &access, "old-password", "new-password").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["expired"], 2, "the other session's pair: {body}");

    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
    assert_eq!(
        app.me(&other_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&other_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.obtain("bob", "old-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.obtain("bob", "new-password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_callers_session_stays_after_its_refresh_token_was_rotated() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    bob(&app).await;
    let (_, refresh) = app.pair("bob", "old-password").await;
    let rotated: Value = app.refresh(&refresh).await.json().await.expect("json");
    let access = rotated["access"].as_str().expect("access");
    let refresh = rotated["refresh"].as_str().expect("refresh");

    let resp = change(&app, access, "old-password", "new-password").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.refresh(refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_revokes_the_api_token() {
    let app = TestApp::spawn().await;
    bob(&app).await;
    let (access, _) = app.pair("bob", "old-password").await;
    let created: Value = app
        .call(Method::POST, "/api/v1/api-token", &access, None)
        .await
        .json()
        .await
        .expect("json");
    let api_token = created["token"].as_str().expect("token");
    assert_eq!(app.me(api_token).await.status(), StatusCode::OK);

    let resp = change(&app, &access, "old-password", "new-password").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.me(api_token).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    bob(&app).await;
    let (access, _) = app.pair("bob", "old-password").await;
    let (other_access, _) = app.pair("bob", "old-password").await;

    let resp = change(&app, &access, "not-it", "new-password").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "invalid_request");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("current password")
    );
    assert_eq!(app.me(&other_access).await.status(), StatusCode::OK);
    assert_eq!(
        app.obtain("bob", "old-password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn wrong_current_passwords_count_toward_the_login_throttle() {
    let app = TestApp::spawn_with(|c| c.login_max_failures = 3).await;
    bob(&app).await;
    let (access, _) = app.pair("bob", "old-password").await;
    for _ in 0..3 {
        let resp = change(&app, &access, "guess", "new-password").await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let resp = change(&app, &access, "old-password", "new-password").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    // The sign-in form is throttled by the same failures.
    assert_eq!(
        app.obtain("bob", "old-password").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_api_token_may_not_change_the_password() {
    let app = TestApp::spawn().await;
    bob(&app).await;
    let (access, _) = app.pair("bob", "old-password").await;
    let created: Value = app
        .call(Method::POST, "/api/v1/api-token", &access, None)
        .await
        .json()
        .await
        .expect("json");
    let api_token = created["token"].as_str().expect("token");
    let resp = change(&app, api_token, "old-password", "new-password").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_password_change_needs_credentials_and_a_whole_body() {
    let app = TestApp::spawn().await;
    bob(&app).await;
    let (access, _) = app.pair("bob", "old-password").await;
    let resp = app
        .post_json(
            PATH,
            json!({"current_password": "old-password", "new_password": "x"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .call(
            Method::POST,
            PATH,
            &access,
            Some(json!({"current_password": "old-password"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = change(&app, &access, "old-password", "").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
