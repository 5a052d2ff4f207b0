//! Hostile input at the HTTP edge: huge headers, deep nesting, invalid
//! UTF-8, NUL bytes. Each gets a clean 4xx, never a 5xx or a dropped
//! connection.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use common::{ADMIN_PASSWORD, TestApp, error_code};

/// Sends raw bytes as a request and returns the status code of the answer.
/// The server may answer and close before it has read everything (a huge
/// header): the answer is read while the request is still being written,
/// and what arrived before a reset counts.
async fn raw_status(app: &TestApp, request: &[u8]) -> u16 {
    let addr = app.address.trim_start_matches("http://");
    let conn = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = conn.into_split();
    let request = request.to_vec();
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    drop(sending.await);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: tokend\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn get_with_authorization(value: &[u8]) -> Vec<u8> {
    let mut request =
        b"GET /api/v1/me HTTP/1.1\r\nHost: tokend\r\nConnection: close\r\nAuthorization: ".to_vec();
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n\r\n");
    request
}

fn assert_clean_4xx(status: u16, what: &str) {
    assert!((400..500).contains(&status), "{what}: answered {status}");
}

#[tokio::test]
async fn a_one_mib_authorization_header_is_a_clean_4xx() {
    let app = TestApp::spawn().await;
    let mut value = b"Bearer ".to_vec();
    value.resize(1024 * 1024, b'a');

    let status = raw_status(&app, &get_with_authorization(&value)).await;

    assert_clean_4xx(status, "1 MiB Authorization header");
}

#[tokio::test]
async fn a_token_just_under_the_header_limit_is_not_valid() {
    let app = TestApp::spawn().await;
    let token = "a.".repeat(20 * 1024) + "a";

    let (status, code) = error_code(app.me(&token).await).await;

    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
}

#[tokio::test]
async fn ten_thousand_nesting_levels_are_a_clean_400() {
    let app = TestApp::spawn().await;
    let arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let in_field = format!(r#"{{"username":{arrays},"password":"x"}}"#);
    for path in [
        "/api/v1/token/obtain",
        "/api/v1/token/refresh",
        "/api/v1/token/verify",
    ] {
        for body in [&arrays, &objects, &in_field] {
            let resp = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("request");
            assert_eq!(
                error_code(resp).await,
                (StatusCode::BAD_REQUEST, "invalid_request".to_owned()),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn invalid_utf8_is_a_clean_4xx() {
    let app = TestApp::spawn().await;
    let cases: [(&str, &str, &[u8]); 5] = [
        (
            "/api/v1/token/obtain",
            "application/json",
            b"{\"username\":\"ad\xffmin\",\"password\":\"x\"}",
        ),
        (
            "/api/v1/token/verify",
            "application/json",
            b"{\"token\":\"\xc3\x28\"}",
        ),
        (
            "/api/v1/token/obtain",
            "application/x-www-form-urlencoded",
            b"username=ad%FFmin&password=x",
        ),
        (
            "/api/v1/token/obtain",
            "application/x-www-form-urlencoded",
            b"username=ad\xffmin&password=x",
        ),
        (
            "/api/v1/token/refresh",
            "application/x-www-form-urlencoded",
            b"refresh=\xfe\xff",
        ),
    ];
    for (path, content_type, body) in cases {
        let status = raw_status(&app, &post(path, content_type, body)).await;
        assert_clean_4xx(status, &format!("{path} {content_type} {body:?}"));
    }
    let status = raw_status(&app, &get_with_authorization(b"Bearer \xff\xfe\xfd")).await;
    assert_clean_4xx(status, "invalid UTF-8 in Authorization");
    let status = raw_status(
        &app,
        b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: tokend\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_clean_4xx(status, "invalid UTF-8 in the path");
}

#[tokio::test]
async fn nul_bytes_are_a_clean_4xx() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let bodies = [
        (
            "/api/v1/token/obtain",
            json!({"username": "ad\0min", "password": ADMIN_PASSWORD}),
        ),
        (
            "/api/v1/token/obtain",
            json!({"username": "admin", "password": "pass\0word"}),
        ),
        (
            "/api/v1/token/obtain",
            json!({"username": "\0", "password": "\0"}),
        ),
        (
            "/api/v1/token/refresh",
            json!({"refresh": format!("{refresh}\0")}),
        ),
        (
            "/api/v1/token/verify",
            json!({"token": format!("\0{access}")}),
        ),
        (
            "/api/v1/token/expire",
            json!({"token": "\0\0\0", "affect_tree": true}),
        ),
    ];
    for (path, body) in bodies {
        let resp = app.post_json(path, body.clone()).await;
        let status = resp.status();
        assert!(status.is_client_error(), "{path} {body}: answered {status}");
        let answer: Value = resp.json().await.expect("a JSON error");
        assert!(answer["code"].is_string(), "{answer}");
    }
    let form = post(
        "/api/v1/token/obtain",
        "application/x-www-form-urlencoded",
        b"username=ad%00min&password=x",
    );
    assert_clean_4xx(raw_status(&app, &form).await, "NUL in a form");
    let status = raw_status(&app, &get_with_authorization(b"Bearer a\0b")).await;
    assert_clean_4xx(status, "NUL in Authorization");
    // The pair is untouched by all this.
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
}
