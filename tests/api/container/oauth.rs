//! `POST /token`: the oauth.md flow (password and refresh token grants).

use reqwest::{Response, StatusCode};
use serde_json::json;

use common::{ADMIN_PASSWORD, TestApp, claims, error_code};

use super::{SERVICE, json_ok, oauth_error, post_token, with_alice_and_bob};

#[tokio::test]
async fn password_grant_answers_the_oauth2_fields() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        post_token(
            &app,
            &[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "docker"),
                ("username", "alice"),
                ("password", "alice-password"),
                (
                    "scope",
                    "repository:alice/hello:pull,push repository:bob/app:pull",
                ),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(body["scope"], "repository:alice/hello:pull,push");
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].is_string());
    assert!(body.get("refresh_token").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["access"][0]["name"], "alice/hello");
    assert_eq!(
        app.row(body["access_token"].as_str().unwrap())
            .await
            .token_type,
        "registry"
    );
}

#[tokio::test]
async fn password_grant_with_offline_access_returns_a_refresh_token() {
    let app = TestApp::spawn().await;
    let body = json_ok(
        post_token(
            &app,
            &[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "docker"),
                ("access_type", "offline"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await,
    )
    .await;
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(claims(refresh)["aud"], SERVICE);
    assert_eq!(body["scope"], "");
}

/// A refresh token of `service` for alice, from the password grant.
async fn offline_token(app: &TestApp, service: &str) -> String {
    let body = json_ok(
        post_token(
            app,
            &[
                ("grant_type", "password"),
                ("service", service),
                ("client_id", "docker"),
                ("access_type", "offline"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await,
    )
    .await;
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

async fn refresh_grant(app: &TestApp, refresh: &str, service: &str, scope: &str) -> Response {
    post_token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("service", service),
            ("client_id", "containers/image"),
            ("refresh_token", refresh),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test]
async fn refresh_grant_issues_a_token_child_of_the_refresh_token() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    let body =
        json_ok(refresh_grant(&app, &refresh, SERVICE, "repository:alice/hello:pull").await).await;
    assert_eq!(body["scope"], "repository:alice/hello:pull");
    assert!(
        body.get("refresh_token").is_none(),
        "no rotation, no new refresh token"
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["sub"], "alice");
    let token_row = app.row(token).await;
    assert_eq!(token_row.token_type, "registry");
    assert_eq!(token_row.parent_id, Some(app.row(&refresh).await.id));
    assert_eq!(token_row.user_id, Some(app.user_id("alice").await));
}

#[tokio::test]
async fn a_refresh_token_works_for_its_own_service_only() {
    let app =
        TestApp::spawn_with(|c| c.container_services = vec!["one".into(), "two".into()]).await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, "one").await;
    assert_eq!(
        refresh_grant(&app, &refresh, "one", "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        oauth_error(refresh_grant(&app, &refresh, "two", "").await).await,
        (
            StatusCode::UNAUTHORIZED,
            "token_not_valid".into(),
            "invalid_grant".into()
        )
    );
}

#[tokio::test]
async fn a_registry_refresh_token_is_refused_by_the_api_refresh() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    assert_eq!(
        error_code(app.refresh(&refresh).await).await,
        (StatusCode::UNAUTHORIZED, "token_not_valid".into())
    );
}

#[tokio::test]
async fn an_api_refresh_token_is_refused_by_the_refresh_grant() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for token in [&refresh, &access] {
        assert_eq!(
            oauth_error(refresh_grant(&app, token, SERVICE, "").await).await,
            (
                StatusCode::UNAUTHORIZED,
                "token_not_valid".into(),
                "invalid_grant".into()
            )
        );
    }
}

#[tokio::test]
async fn a_garbage_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(
        oauth_error(refresh_grant(&app, "not-a-token", SERVICE, "").await).await,
        (
            StatusCode::UNAUTHORIZED,
            "token_not_valid".into(),
            "invalid_grant".into()
        )
    );
}

#[tokio::test]
async fn an_offline_refresh_token_is_never_rotated_and_keeps_working() {
    // docker and containers/image keep the refresh token of their login as
    // their identity token and present it again for every token they need.
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    for _ in 0..3 {
        let body = json_ok(refresh_grant(&app, &refresh, SERVICE, "").await).await;
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    let token_row = app.row(&refresh).await;
    assert!(token_row.rotated_at.is_none());
    assert!(token_row.expired_at.is_none());
}

#[tokio::test]
async fn a_deleted_user_can_no_longer_refresh() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    app.state
        .users
        .delete("alice", tokend::users::LastAdmin::Keep)
        .await
        .unwrap();
    assert_eq!(
        refresh_grant(&app, &refresh, SERVICE, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_password_in_the_password_grant_is_an_invalid_grant() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("username", "admin"),
            ("password", "wrong"),
        ],
    )
    .await;
    assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"tokend\"");
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::UNAUTHORIZED,
            "no_active_account".into(),
            "invalid_grant".into()
        )
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("service", SERVICE),
            ("client_id", "x"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "unsupported_grant_type".into()
        )
    );
}

#[tokio::test]
async fn a_missing_field_is_an_invalid_request() {
    let app = TestApp::spawn().await;
    let full = [
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "docker"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
    ];
    for left_out in ["grant_type", "service", "client_id", "username", "password"] {
        let form: Vec<_> = full
            .iter()
            .copied()
            .filter(|(k, _)| *k != left_out)
            .collect();
        assert_eq!(
            oauth_error(post_token(&app, &form).await).await,
            (
                StatusCode::BAD_REQUEST,
                "invalid_request".into(),
                "invalid_request".into()
            ),
            "without {left_out}"
        );
    }
    let resp = post_token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("service", SERVICE),
            ("client_id", "docker"),
        ],
    )
    .await;
    assert_eq!(oauth_error(resp).await.2, "invalid_request");
}

#[tokio::test]
async fn an_unknown_service_in_the_form_is_an_invalid_request() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", "elsewhere"),
            ("client_id", "docker"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "invalid_request".into()
        )
    );
}

#[tokio::test]
async fn a_malformed_scope_in_the_form_is_an_invalid_scope() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("scope", "repository:a/b:pull repository:"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "invalid_scope".into()
        )
    );
}

#[tokio::test]
async fn a_json_body_is_an_unsupported_media_type_with_an_oauth_error() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/token"))
        .json(&json!({"grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into(),
            "invalid_request".into()
        )
    );
}

#[tokio::test]
async fn a_repeated_form_field_is_an_invalid_request() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[("grant_type", "password"), ("grant_type", "password")],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "invalid_request".into()
        )
    );
}
