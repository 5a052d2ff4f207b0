//! Point 4: revocation and introspection cover every credential tokend
//! issues: API tokens, container registry tokens and their offline refresh
//! tokens.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

use super::{Client, add_client, introspect, oauth_error, revoke};

async fn api_token(app: &TestApp) -> String {
    let access = app.admin_token().await;
    let resp = app
        .call(Method::POST, "/api/v1/api-token", &access, None)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// A container registry token and its offline refresh token, for admin.
async fn registry_tokens(app: &TestApp) -> (String, String) {
    let resp = app
        .client
        .get(app.url("/token"))
        .query(&[
            ("service", "tokend"),
            ("scope", "repository:admin/app:pull"),
            ("offline_token", "true"),
        ])
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    (
        body["token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh_grant(app: &TestApp, refresh: &str) -> StatusCode {
    app.client
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", "tokend"),
            ("client_id", "tests"),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

async fn resource_server(app: &TestApp) -> Client {
    add_client(app, "resource-server", true, true).await
}

#[tokio::test]
async fn a_live_api_token_introspects_active_and_revoking_deletes_it() {
    let app = TestApp::spawn().await;
    let client = resource_server(&app).await;
    let token = api_token(&app).await;
    let body = introspect(&app, &client, &token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["tokend_kind"], "api_token");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["username"], "admin");
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);

    assert_eq!(revoke(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        introspect(&app, &client, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn a_live_registry_token_introspects_active_and_revoking_expires_it() {
    let app = TestApp::spawn().await;
    let client = resource_server(&app).await;
    let (token, _) = registry_tokens(&app).await;
    let body = introspect(&app, &client, &token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["tokend_kind"], "registry");
    assert_eq!(body["aud"], "tokend");
    assert_eq!(body["username"], "admin");

    assert_eq!(revoke(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(
        introspect(&app, &client, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revoking_an_offline_refresh_token_expires_its_tree() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (token, refresh) = registry_tokens(&app).await;
    assert_eq!(refresh_grant(&app, &refresh).await, StatusCode::OK);
    let body: Value = app
        .call(
            Method::POST,
            "/api/v1/oauth/introspect",
            &admin,
            Some(json!({ "token": refresh })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");

    assert_eq!(revoke(&app, &refresh).await.status(), StatusCode::OK);
    assert_eq!(
        refresh_grant(&app, &refresh).await,
        StatusCode::UNAUTHORIZED
    );
    let client = resource_server(&app).await;
    assert_eq!(
        introspect(&app, &client, &token).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn an_anonymous_registry_token_cannot_be_revoked() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/token"))
        .query(&[("service", "tokend")])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let (status, code, error) = oauth_error(revoke(&app, token).await).await;
    assert_eq!(
        (status, code.as_str(), error.as_str()),
        (400, "unsupported_token_type", "unsupported_token_type")
    );
}
