//! What tokend answers where an attacker looked: 400 for dates no database
//! holds, no 503 from racing API tokens, a JSON body on every answer, no
//! cacheable token, no key given twice.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::Arc,
};

use common::{ADMIN_PASSWORD, TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Barrier;

#[tokio::test]
async fn an_archive_date_no_database_holds_is_a_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for date in ["-5000-01-01T00:00:00Z", "+10000-01-01T00:00:00Z"] {
        let resp = app
            .call(
                Method::POST,
                "/api/v1/registry/archive",
                &admin,
                Some(json!({"expired_before": date})),
            )
            .await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{date}"
        );
    }
}

#[tokio::test]
async fn api_tokens_made_at_once_for_one_user_all_succeed_and_the_last_one_works() {
    let app = Arc::new(TestApp::spawn().await);
    let access = app.admin_token().await;
    const AT_ONCE: usize = 6;
    let barrier = Arc::new(Barrier::new(AT_ONCE));
    let tasks: Vec<_> = (0..AT_ONCE)
        .map(|_| {
            let (app, barrier, access) = (app.clone(), barrier.clone(), access.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = app
                    .call(Method::POST, "/api/v1/api-token", &access, None)
                    .await;
                let status = resp.status();
                let body: Value = resp.json().await.unwrap();
                (status, body["token"].as_str().map(String::from))
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        let (status, token) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED);
        tokens.push(token.unwrap());
    }
    let working: Vec<_> = {
        let mut working = Vec::new();
        for token in &tokens {
            if app.me(token).await.status() == StatusCode::OK {
                working.push(token.clone());
            }
        }
        working
    };
    assert_eq!(working.len(), 1, "exactly one API token works");
}

/// Sends `raw` on a new connection and reads the whole answer.
fn raw_answer(app: &TestApp, raw: &[u8]) -> (u16, Value) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_hyper_gives_by_itself_carry_the_json_body_too() {
    let app = TestApp::spawn().await;
    let cases: [(Vec<u8>, u16, &str); 3] = [
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        (
            [
                b"GET /".as_slice(),
                &[b'a'; 70_000],
                b" HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            .concat(),
            414,
            "uri_too_long",
        ),
        (
            [
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".as_slice(),
                &vec![b'a'; 1024 * 1024],
                b"\r\n\r\n",
            ]
            .concat(),
            431,
            "header_fields_too_large",
        ),
    ];
    for (raw, status, code) in cases {
        let app = &app;
        let (got, body) = tokio::task::block_in_place(|| raw_answer(app, &raw));
        assert_eq!(got, status);
        assert!(body["detail"].is_string(), "{status}: {body}");
        assert_eq!(body["code"], code, "{status}: {body}");
    }
}

#[tokio::test]
async fn answers_that_carry_a_token_are_not_cacheable() {
    let app = TestApp::spawn().await;
    let obtain = app.obtain("admin", ADMIN_PASSWORD).await;
    let body: Value = {
        assert_no_store(&obtain);
        obtain.json().await.unwrap()
    };
    let (access, refresh) = (
        body["access"].as_str().unwrap().to_owned(),
        body["refresh"].as_str().unwrap().to_owned(),
    );
    assert_no_store(&app.refresh(&refresh).await);
    assert_no_store(
        &app.call(Method::POST, "/api/v1/api-token", &access, None)
            .await,
    );
    let introspection = app
        .client
        .post(app.url("/api/v1/oauth/introspect"))
        .bearer_auth(&access)
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_no_store(&introspection);
}

fn assert_no_store(resp: &reqwest::Response) {
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        resp.headers()["cache-control"],
        "no-store",
        "{}",
        resp.url()
    );
    assert_eq!(resp.headers()["pragma"], "no-cache", "{}", resp.url());
}

#[tokio::test]
async fn a_json_key_given_twice_is_a_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let admin = app.admin_token().await;
    let resp = app
        .client
        .patch(app.url("/api/v1/users/bob"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"is_admin": false, "is_admin": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let bob = app.state.users.find("bob").await.unwrap().unwrap();
    assert!(!bob.is_admin);
}
