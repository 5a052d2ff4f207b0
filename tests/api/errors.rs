use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{TestApp, error_code};

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: &'static str,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = TestApp::spawn().await;
    let resp = post_raw(
        &app,
        "/api/v1/token/obtain",
        "application/json",
        "{\"username\":",
    )
    .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn missing_field_is_a_400() {
    let app = TestApp::spawn().await;
    let resp = post_raw(
        &app,
        "/api/v1/token/obtain",
        "application/json",
        "{\"username\":\"admin\"}",
    )
    .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let resp = post_raw(
        &app,
        "/api/v1/token/refresh",
        "application/x-www-form-urlencoded",
        "nothing=here",
    )
    .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn wrong_type_is_a_400() {
    let app = TestApp::spawn().await;
    let resp = post_raw(
        &app,
        "/api/v1/token/obtain",
        "application/json",
        "{\"username\":5,\"password\":[]}",
    )
    .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let resp = post_raw(
        &app,
        "/api/v1/token/expire",
        "application/json",
        "{\"token\":\"x\",\"affect_tree\":\"yes\"}",
    )
    .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/api/v1/token/obtain"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
}

#[tokio::test]
async fn a_405_names_the_methods_the_route_allows() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/api/v1/token/obtain", "POST"),
        (reqwest::Method::TRACE, "/health", "GET"),
        (reqwest::Method::DELETE, "/api/v1/me", "GET"),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn other_content_types_are_a_415() {
    let app = TestApp::spawn().await;
    let resp = post_raw(&app, "/api/v1/token/obtain", "text/plain", "username=admin").await;
    assert_eq!(
        error_code(resp).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );
}

#[tokio::test]
async fn oversized_body_is_a_413_by_length_and_by_stream() {
    let app = TestApp::spawn_with(|c| c.max_body_size = 1024).await;
    let big = "x".repeat(2048);
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
    // Chunked, without Content-Length.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
}

#[tokio::test]
async fn no_credentials_is_not_authenticated() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::UNAUTHORIZED, "not_authenticated".into())
    );
}

#[tokio::test]
async fn garbage_bearer_is_token_not_valid() {
    let app = TestApp::spawn().await;
    for token in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"x".repeat(20_000),
    ] {
        let resp = app.me(token).await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::UNAUTHORIZED, "token_not_valid".into())
        );
    }
}

#[tokio::test]
async fn health_needs_no_database_and_ready_checks_it() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// poem-openapi alone would read `5` or `true` as the string "5" or "true";
/// the spec says `string`, so each is a 400 and changes nothing.
#[tokio::test]
async fn a_number_or_boolean_where_a_string_belongs_is_a_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("12345678", "12345678", false).await;
    let admin = app.admin_token().await;
    let (_, refresh) = app.pair("12345678", "12345678").await;
    let cases = [
        (
            "/api/v1/token/obtain",
            json!({"username": 12345678, "password": 12345678}),
        ),
        (
            "/api/v1/users/12345678/password",
            json!({"password": 87654321}),
        ),
        (
            "/api/v1/users",
            json!({"username": 42, "password": "a-good-password"}),
        ),
        ("/api/v1/oauth/revoke", json!({"token": true})),
        ("/api/v1/oauth/introspect", json!({"token": 1})),
        ("/api/v1/token/verify", json!({"token": false})),
        ("/api/v1/token/refresh", json!({"refresh": 0})),
    ];
    for (path, body) in cases {
        let resp = app
            .call(Method::POST, path, &admin, Some(body.clone()))
            .await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{path} {body}"
        );
    }
    // The password did not change and no user "42" exists.
    app.pair("12345678", "12345678").await;
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
    let resp = app.get_with("/api/v1/users", &admin).await;
    let users: serde_json::Value = resp.json().await.unwrap();
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["username"] != "42"),
        "{users}"
    );
}
