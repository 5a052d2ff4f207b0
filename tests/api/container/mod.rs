//! `GET|POST /token`: the container registry token server.

mod basic;
mod deploy;
mod get;
mod oauth;
mod rows;

use reqwest::{Response, StatusCode};
use serde_json::Value;

use common::TestApp;

const SERVICE: &str = "tokend";

/// `GET /token` with these query pairs and, optionally, Basic credentials.
async fn get_token(app: &TestApp, query: &[(&str, &str)], creds: Option<(&str, &str)>) -> Response {
    let mut req = app.client.get(app.url("/token")).query(query);
    if let Some((user, password)) = creds {
        req = req.basic_auth(user, Some(password));
    }
    req.send().await.expect("request")
}

/// `POST /token` with a form.
async fn post_token(app: &TestApp, form: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .expect("request")
}

async fn json_ok(resp: Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The `error` and `code` of an OAuth2 error answer.
async fn oauth_error(resp: Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error body is JSON");
    assert!(body["detail"].is_string(), "error without detail: {body}");
    (
        status,
        body["code"].as_str().expect("code").to_owned(),
        body["error"].as_str().expect("error").to_owned(),
    )
}

async fn with_alice_and_bob(app: &TestApp) {
    app.create_user("alice", "alice-password", false).await;
    app.create_user("bob", "bob-password", false).await;
}
