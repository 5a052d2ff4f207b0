//! What whoever runs tokend sees through HTTP (issue 15): request ids,
//! `/metrics` (where it is served, who may read it, what its labels hold)
//! and why `/ready` refuses. The metrics recorder is the process's, shared
//! by every test app of this binary: these tests look at what is there,
//! the exact counts are checked on a process of its own
//! (tests/reliability/observability.rs).

use reqwest::{StatusCode, header};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp, error_code};

const METRICS_TOKEN: &str = "metrics-token-for-the-tests-0123";

async fn request_id_of(app: &TestApp, sent: Option<&str>) -> String {
    let mut req = app.client.get(app.url("/health"));
    if let Some(id) = sent {
        req = req.header("x-request-id", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_is_replaced() {
    let app = TestApp::spawn().await;
    let sane = "req-1.A_b-".to_owned() + &"z".repeat(54);
    assert_eq!(sane.len(), 64);
    assert_eq!(request_id_of(&app, Some(&sane)).await, sane);

    let generated = request_id_of(&app, None).await;
    assert!(is_generated(&generated), "{generated}");
    assert_ne!(
        request_id_of(&app, None).await,
        generated,
        "one per request"
    );

    let too_long = "a".repeat(65);
    for insane in ["", "has space", "semi;colon", "quote\"", too_long.as_str()] {
        let id = request_id_of(&app, Some(insane)).await;
        assert!(is_generated(&id), "{insane:?} was answered as {id:?}");
    }
    // Errors carry it too.
    let resp = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "lost-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "lost-1");
}

async fn scrape(app: &TestApp, base: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{base}/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn metrics_label_requests_by_route_template_and_never_by_what_a_client_sent() {
    let app = TestApp::spawn().await;
    app.create_user("carol-the-labelled", "carol-password-1", false)
        .await;
    let (access, _) = app.pair("carol-the-labelled", "carol-password-1").await;
    let id = "0190a0a0-1234-7000-8000-00000000abcd";
    let resp = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tokens/{id}/expire"),
            &access,
            Some(json!({"affect_tree": false})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let _ = app.obtain("carol-the-labelled", "wrong-password-1").await;
    let _ = app.client.get(app.url("/no/such/9f8e7d")).send().await;

    let resp = scrape(&app, &app.address, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    for expected in [
        r#"tokend_http_requests_total{method="POST",route="/api/v1/tokens/{id}/expire",status="404"}"#,
        r#"route="unmatched",status="404""#,
        r#"tokend_http_request_duration_seconds_bucket{method="POST",route="/api/v1/token/obtain",le="0.5"}"#,
        r#"tokend_build_info{version=""#,
        r#"tokend_logins_total{outcome="failed"}"#,
        r#"tokend_tokens_issued_total{kind="access"}"#,
        "tokend_db_pool_connections{",
        "tokend_password_hash_duration_seconds_bucket{",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "process_cpu_seconds_total ",
        "# HELP tokend_logins_total ",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    for leaked in [id, "carol-the-labelled", "9f8e7d", &access, "127.0.0.1"] {
        assert!(!text.contains(leaked), "{leaked} is in the metrics");
    }
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    let app = TestApp::spawn_with(|c| {
        c.metrics_token = Some(tokend::secret::Secret::new(METRICS_TOKEN));
    })
    .await;
    let resp = scrape(&app, &app.address, None).await;
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(
        error_code(resp).await,
        (StatusCode::UNAUTHORIZED, "not_authenticated".into())
    );
    for wrong in ["metrics-token-for-the-tests-0124", "x", ""] {
        let resp = scrape(&app, &app.address, Some(wrong)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
    }
    let resp = scrape(&app, &app.address, Some(ADMIN_PASSWORD)).await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::UNAUTHORIZED, "token_not_valid".into())
    );
    let resp = scrape(&app, &app.address, Some(METRICS_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("tokend_build_info"));
}

#[tokio::test]
async fn metrics_bind_serves_metrics_on_their_own_address_only() {
    let app = TestApp::spawn_with(|c| {
        c.metrics_bind = Some("127.0.0.1:0".into());
        c.metrics_token = Some(tokend::secret::Secret::new(METRICS_TOKEN));
    })
    .await;
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    assert_ne!(metrics, app.address);
    let resp = scrape(&app, &app.address, Some(METRICS_TOKEN)).await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let resp = scrape(&app, &metrics, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = scrape(&app, &metrics, Some(METRICS_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("tokend_build_info"));
    // Only /metrics there: the API stays on the main port.
    let resp = app
        .client
        .get(format!("{metrics}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test]
async fn metrics_off_serves_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.metrics = false;
        c.metrics_bind = Some("127.0.0.1:0".into());
    })
    .await;
    assert!(app.metrics_address.is_none(), "no listener when off");
    let resp = scrape(&app, &app.address, None).await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    let resp = app.client.get(app.url("/ready")).send().await.unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn ready_names_the_database_when_it_is_unreachable() {
    let app = TestApp::spawn().await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["checks"],
        json!({"database": "ok", "migrations": "ok"})
    );
    app.close_database().await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert_eq!(body["checks"]["database"], "unreachable");
    assert!(body["detail"].as_str().unwrap().contains("database"));
}

#[tokio::test]
async fn ready_names_pending_migrations() {
    let app = TestApp::spawn().await;
    // As if this build brought a migration the database has not had.
    let db = app.db().await;
    let newest = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .expect("a migration row");
    let version: String = newest.try_get("", "version").unwrap();
    db.execute_unprepared(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{version}'"
    ))
    .await
    .unwrap();
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["checks"],
        json!({"database": "ok", "migrations": "pending"})
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1 database migrations are pending")
    );
}
