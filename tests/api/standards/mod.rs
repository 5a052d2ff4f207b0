//! Issue 17: what real OAuth clients and resource servers rely on —
//! discovery, RFC 6750 challenges, RFC 9068 token types, revocation and
//! introspection of every credential, registered clients, and the real
//! client libraries themselves.

mod challenges;
mod clients;
mod coverage;
mod discovery;
pub mod interop;
mod token_types;

use reqwest::Response;
use serde_json::{Value, json};

use common::TestApp;

/// A registered client: its id and secret.
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// Registers a client through the admin API.
pub async fn add_client(app: &TestApp, name: &str, introspect: bool, revoke: bool) -> Client {
    let admin = app.admin_token().await;
    let resp = app
        .call(
            reqwest::Method::POST,
            "/api/v1/clients",
            &admin,
            Some(json!({"name": name, "introspect": introspect, "revoke": revoke})),
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    Client {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: body["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// `POST /api/v1/oauth/{endpoint}` with `client_secret_basic`.
pub async fn with_basic(app: &TestApp, endpoint: &str, client: &Client, token: &str) -> Response {
    app.client
        .post(app.url(&format!("/api/v1/oauth/{endpoint}")))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// `POST /api/v1/oauth/{endpoint}` with `client_secret_post`.
pub async fn with_post(app: &TestApp, endpoint: &str, client: &Client, token: &str) -> Response {
    app.client
        .post(app.url(&format!("/api/v1/oauth/{endpoint}")))
        .form(&[
            ("token", token),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])
        .send()
        .await
        .unwrap()
}

/// Introspection by `client`, answered 200; the body.
pub async fn introspect(app: &TestApp, client: &Client, token: &str) -> Value {
    let resp = with_basic(app, "introspect", client, token).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    resp.json().await.unwrap()
}

/// Revocation without credentials, by the token's holder.
pub async fn revoke(app: &TestApp, token: &str) -> Response {
    app.client
        .post(app.url("/api/v1/oauth/revoke"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// Status, `code` and `error` of an OAuth error answer.
pub async fn oauth_error(resp: Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error");
    assert!(body["detail"].is_string(), "{body}");
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}
