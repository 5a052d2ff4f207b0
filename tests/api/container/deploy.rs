//! What real container clients send and read (issue 18): repeated `scope`
//! fields, and errors in the distribution registry's `{"errors": [...]}`
//! shape, the only one docker and containers/image print.

use reqwest::StatusCode;
use serde_json::Value;

use common::TestApp;

use super::{SERVICE, get_token, json_ok, post_token, with_alice_and_bob};

#[tokio::test]
async fn post_token_grants_each_repeated_scope_field() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    // What containers/image sends to mount a blob from another repository.
    let body = json_ok(
        post_token(
            &app,
            &[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "containers/image"),
                ("username", "alice"),
                ("password", "alice-password"),
                ("scope", "repository:alice/x:pull,push"),
                ("scope", "repository:alice/y:pull"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        body["scope"],
        "repository:alice/x:pull,push repository:alice/y:pull"
    );
    let access = &common::claims(body["access_token"].as_str().unwrap())["access"];
    assert_eq!(access[0]["name"], "alice/x");
    assert_eq!(access[1]["name"], "alice/y");
}

#[tokio::test]
async fn get_token_grants_repeated_and_space_separated_scopes() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:alice/x:pull,push"),
                ("scope", "repository:alice/y:pull repository:alice/z:push"),
            ],
            Some(("alice", "alice-password")),
        )
        .await,
    )
    .await;
    let access = &common::claims(body["token"].as_str().unwrap())["access"];
    let names: Vec<&str> = access
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice/x", "alice/y", "alice/z"]);
}

#[tokio::test]
async fn post_token_still_refuses_another_field_given_twice() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", SERVICE),
            ("service", "other"),
            ("client_id", "docker"),
        ],
    )
    .await;
    let (status, body) = (resp.status(), resp.json::<Value>().await.unwrap());
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_request");
    assert!(
        body["detail"].as_str().unwrap().contains("service"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
}

/// The body of an error answer, checked for both shapes saying the same.
async fn registry_error(resp: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("JSON");
    assert!(body["code"].is_string(), "{body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["errors"][0]["message"], body["detail"], "{body}");
    body
}

#[tokio::test]
async fn token_errors_carry_the_distribution_registry_errors_list() {
    let app = TestApp::spawn_with(|c| c.login_max_failures = 2).await;
    with_alice_and_bob(&app).await;
    let get = |password: &'static str| {
        get_token(&app, &[("service", SERVICE)], Some(("alice", password)))
    };
    let wrong = registry_error(get("wrong").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong["code"], "no_active_account");
    assert_eq!(wrong["errors"][0]["code"], "UNAUTHORIZED");

    let form = |password: &'static str| {
        vec![
            ("grant_type", "password"),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("username", "alice"),
            ("password", password),
        ]
    };
    let wrong = registry_error(
        post_token(&app, &form("wrong")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong["error"], "invalid_grant");
    assert_eq!(wrong["errors"][0]["code"], "UNAUTHORIZED");

    // Two failures: alice is throttled, even with her password.
    let throttled =
        registry_error(get("alice-password").await, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(throttled["errors"][0]["code"], "TOOMANYREQUESTS");
    assert!(
        throttled["detail"].as_str().unwrap().contains("throttled"),
        "{throttled}"
    );
    let throttled = registry_error(
        post_token(&app, &form("alice-password")).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(throttled["errors"][0]["code"], "TOOMANYREQUESTS");

    let unknown = registry_error(
        get_token(&app, &[("service", "nope")], None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(unknown["code"], "invalid_request");
    let missing = registry_error(get_token(&app, &[], None).await, StatusCode::BAD_REQUEST).await;
    assert!(
        missing["detail"].as_str().unwrap().contains("`service`"),
        "{missing}"
    );
}
