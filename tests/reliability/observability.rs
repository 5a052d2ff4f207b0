//! What whoever runs tokend sees (issue 15), on a process of its own so
//! that the counts are this test's alone: a walk-through with JSON logs at
//! `trace`, then its metrics counted exactly, its audit events and request
//! lines read, and every secret it used looked for in the logs.

use std::time::Duration;

use entity::{api_tokens, users};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use common::process::{Api, Launch, Server, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase};

pub const METRICS_TOKEN: &str = "metrics-token-of-the-walk-through";
const BOB_PASSWORD: &str = "bob-password-with-ünïcode-42";
const WRONG_PASSWORD: &str = "wrong-password-for-bob-1234";
const MALLORY_PASSWORD: &str = "mallory-guess-5678";

/// What a walk-through did: the secrets it used, and how often it did
/// what the metrics count.
pub struct Walk {
    pub secrets: Vec<(&'static str, String)>,
    pub refreshes: u64,
    pub reuses: u64,
}

/// A launch with rotation on, a throttle of two failures, JSON logs at
/// `trace`, and `/metrics` on its own port behind a token.
pub fn launch(db: &TestDatabase) -> Launch {
    let mut launch = Launch::new(db);
    launch
        .set("TOKEND_LOG", "trace")
        .set("TOKEND_LOG_FORMAT", "json")
        .set("TOKEND_ROTATE_REFRESH_TOKENS", "true")
        // The walk-through's reuse must be theft, not a forgiven retry.
        .set("TOKEND_REFRESH_REUSE_GRACE", "0s")
        .set("TOKEND_LOGIN_MAX_FAILURES", "2")
        .set("TOKEND_METRICS_BIND", "127.0.0.1:0")
        .set("TOKEND_METRICS_TOKEN", METRICS_TOKEN);
    launch
}

/// `/metrics` of a server started with [`launch`], with its token.
pub async fn scrape(server: &Server) -> String {
    let port = server
        .logged_port("metrics listening")
        .expect("the metrics port is logged");
    let resp = server
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("metrics text")
}

async fn call(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = api.client.request(method, api.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

fn text(v: &Value) -> String {
    v.as_str().expect("a string").to_owned()
}

/// Every kind of call, the failures too: an administrator creates bob; bob
/// and an unknown mallory fail to sign in (mallory until throttled); bob
/// signs in, refreshes three times, and his first refresh token comes back
/// (theft); he signs in again, makes, uses and revokes an API token,
/// expires a token, gets a container registry token with Basic
/// credentials; the administrator expires all of bob's tokens.
pub async fn walk_through(api: &Api) -> Walk {
    let mut secrets: Vec<(&'static str, String)> = vec![
        ("the admin password", ADMIN_PASSWORD.into()),
        ("bob's password", BOB_PASSWORD.into()),
        ("a wrong password", WRONG_PASSWORD.into()),
        ("mallory's guess", MALLORY_PASSWORD.into()),
        ("the metrics token", METRICS_TOKEN.into()),
    ];
    let mut tokens = Vec::new();
    let (admin_access, admin_refresh) = api.pair("admin", ADMIN_PASSWORD).await;
    let resp = call(
        api,
        reqwest::Method::POST,
        "/api/v1/users",
        &admin_access,
        Some(json!({"username": "bob", "password": BOB_PASSWORD})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let resp = api.obtain("bob", WRONG_PASSWORD).await.expect("obtain");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    for expected in [
        StatusCode::UNAUTHORIZED,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let resp = api
            .obtain("mallory", MALLORY_PASSWORD)
            .await
            .expect("obtain");
        assert_eq!(resp.status(), expected);
    }

    let (access, first_refresh) = api.pair("bob", BOB_PASSWORD).await;
    let resp = api.me(&access).await.expect("me");
    assert_eq!(resp.status(), StatusCode::OK);
    tokens.extend([
        admin_access.clone(),
        admin_refresh,
        access,
        first_refresh.clone(),
    ]);
    let mut refresh = first_refresh.clone();
    let refreshes = 3;
    for _ in 0..refreshes {
        let resp = api.refresh(&refresh).await.expect("refresh");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("json");
        refresh = text(&body["refresh"]);
        tokens.extend([text(&body["access"]), refresh.clone()]);
    }
    let resp = api.refresh(&first_refresh).await.expect("refresh");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "a reuse is theft");

    let (access, refresh) = api.pair("bob", BOB_PASSWORD).await;
    tokens.extend([access.clone(), refresh.clone()]);
    let resp = call(
        api,
        reqwest::Method::POST,
        "/api/v1/api-token",
        &access,
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let api_token = text(&resp.json::<Value>().await.expect("json")["token"]);
    secrets.push(("the API token", api_token.clone()));
    let resp = api.me(&api_token).await.expect("me");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = call(
        api,
        reqwest::Method::DELETE,
        "/api/v1/api-token",
        &access,
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = api.expire(&access, false).await.expect("expire");
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = api
        .client
        .get(api.url("/token?service=tokend&scope=repository:bob/app:pull"))
        .basic_auth("bob", Some(BOB_PASSWORD))
        .send()
        .await
        .expect("/token");
    assert_eq!(resp.status(), StatusCode::OK);
    tokens.push(text(&resp.json::<Value>().await.expect("json")["token"]));

    let resp = call(
        api,
        reqwest::Method::POST,
        "/api/v1/users/bob/tokens/expire",
        &admin_access,
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);

    for token in tokens {
        let signature = token.rsplit('.').next().expect("signature").to_owned();
        secrets.push(("a token's signature", signature));
        secrets.push(("a token", token));
    }
    Walk {
        secrets,
        refreshes,
        reuses: 1,
    }
}

/// The value of one series of a scrape.
pub fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} is not in the scrape:\n{scrape}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Every JSON log line of `target`.
fn lines_of(logs: &[Value], target: &str) -> Vec<Value> {
    logs.iter()
        .filter(|l| l["target"] == target)
        .cloned()
        .collect()
}

fn event<'a>(audit: &'a [Value], name: &str) -> Vec<&'a Value> {
    audit.iter().filter(|l| l["event"] == name).collect()
}

#[tokio::test]
async fn a_walk_through_is_counted_audited_and_logged_without_a_secret() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let mut server = launch(&db).start().await;
    let walk = walk_through(&server.api()).await;
    let scraped = scrape(&server).await;

    // 1. The metrics count what happened, exactly.
    let counts = [
        (
            r#"tokend_refreshes_total{outcome="ok"}"#,
            walk.refreshes as f64,
        ),
        (
            r#"tokend_refreshes_total{outcome="reuse_detected"}"#,
            walk.reuses as f64,
        ),
        (r#"tokend_logins_total{outcome="ok"}"#, 4.0),
        (r#"tokend_logins_total{outcome="failed"}"#, 3.0),
        (r#"tokend_logins_total{outcome="throttled"}"#, 1.0),
        (r#"tokend_login_throttled_total{scope="username"}"#, 1.0),
        (r#"tokend_tokens_issued_total{kind="access"}"#, 6.0),
        (r#"tokend_tokens_issued_total{kind="refresh"}"#, 6.0),
        (r#"tokend_tokens_issued_total{kind="registry"}"#, 1.0),
        (r#"tokend_tokens_expired_total{reason="request"}"#, 1.0),
        (
            r#"tokend_api_token_authentications_total{outcome="ok"}"#,
            1.0,
        ),
        (
            r#"tokend_registry_token_requests_total{grant="basic",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"tokend_http_requests_total{method="POST",route="/api/v1/token/refresh",status="200"}"#,
            3.0,
        ),
        (
            r#"tokend_http_requests_total{method="POST",route="/api/v1/token/obtain",status="429"}"#,
            1.0,
        ),
        (
            r#"tokend_http_request_duration_seconds_count{method="POST",route="/api/v1/token/refresh"}"#,
            4.0,
        ),
        (
            r#"tokend_password_hash_duration_seconds_count{operation="verify"}"#,
            7.0,
        ),
    ];
    for (series, expected) in counts {
        assert_eq!(value(&scraped, series), expected, "{series}");
    }
    assert!(value(&scraped, r#"tokend_tokens_expired_total{reason="user"}"#) >= 1.0);
    assert_eq!(value(&scraped, "tokend_password_hashes_waiting"), 0.0);

    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await;
    let output = server.output();
    let logs: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        logs.iter().any(|l| l["level"] == "DEBUG"),
        "every level was on"
    );

    // 3. One line per request, with its id, route template, status,
    // latency and user.
    let requests = lines_of(&logs, "tokend::request");
    let me: Vec<_> = requests
        .iter()
        .filter(|l| l["route"] == "/api/v1/me" && l["status"] == 200)
        .collect();
    assert_eq!(me.len(), 2, "{me:?}");
    for line in &me {
        assert_eq!(line["method"], "GET");
        assert!(line["request_id"].as_str().is_some_and(|id| id.len() == 32));
        assert!(line["latency_ms"].as_f64().is_some());
        assert!(
            line["user_id"].as_str().is_some_and(|id| id.len() == 36),
            "{line}"
        );
    }
    let throttled: Vec<_> = requests.iter().filter(|l| l["status"] == 429).collect();
    assert_eq!(throttled.len(), 1);
    assert!(throttled[0].get("user_id").is_none());

    // 4. The audit events, each with who and what.
    let audit = lines_of(&logs, "tokend::audit");
    let failed = event(&audit, "login_failed");
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|l| l["address"] == "127.0.0.1"));
    assert_eq!(event(&audit, "login_succeeded").len(), 4);
    let throttle = event(&audit, "login_throttled");
    assert_eq!(throttle.len(), 1);
    assert_eq!(throttle[0]["scope"], "username");
    assert!(
        throttle[0]["username"]
            .as_str()
            .unwrap()
            .contains("mallory")
    );
    let reuse = event(&audit, "refresh_reuse_detected");
    assert_eq!(reuse.len(), 1);
    assert!(reuse[0]["tree"].is_string());
    let expired = reuse[0]["expired"].as_f64().expect("how many it expired");
    assert!(expired >= 1.0);
    assert_eq!(
        value(&scraped, r#"tokend_tokens_expired_total{reason="reuse"}"#),
        expired
    );
    let admin = event(&audit, "admin_action");
    let actions: Vec<_> = admin
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user_created", "user_tokens_expired"]);
    assert!(
        admin
            .iter()
            .all(|l| l["admin"].as_str().unwrap().contains("admin")
                && l["username"].as_str().unwrap().contains("bob"))
    );
    assert_eq!(event(&audit, "api_token_created").len(), 1);
    assert_eq!(event(&audit, "api_token_revoked").len(), 1);
    let keys = event(&audit, "signing_key_loaded");
    assert_eq!(keys.len(), 1);
    assert!(keys[0]["kid"].as_str().is_some_and(|k| k.len() > 10));

    // No secret in any line, at any level: passwords, tokens, the API
    // token and the hashes kept of it and of the passwords, the key.
    let mut secrets = walk.secrets;
    let conn = db.connect().await;
    for user in users::Entity::find().all(&conn).await.expect("users") {
        secrets.push(("a password hash", user.password_hash.clone()));
        let digest = user.password_hash.rsplit('$').next().unwrap().to_owned();
        secrets.push(("a password hash's digest", digest));
    }
    for row in api_tokens::Entity::find()
        .all(&conn)
        .await
        .expect("api tokens")
    {
        secrets.push(("an API token's digest", row.digest));
    }
    let pem = std::fs::read_to_string(db.data_dir.path().join("signing-key.pem")).expect("key");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        secrets.push(("a line of the signing key", line.to_owned()));
    }
    for (what, secret) in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "{what} appears in the logs"
        );
    }
    eprintln!(
        "observability: {} secrets looked for in {} JSON lines of trace logs, none found",
        secrets.len(),
        logs.len()
    );
}
