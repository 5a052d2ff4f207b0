//! Secrets hygiene: nothing secret in the logs even at `trace`, and the
//! files that hold secrets readable by their owner only.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;

use common::process::{Launch, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase, on_postgres};

const USER_PASSWORD: &str = "bob-password-with-ünïcode-42";
const WRONG_PASSWORD: &str = "wrong-password-for-bob-1234";

#[tokio::test]
async fn trace_logs_of_a_full_flow_hold_no_token_password_or_key() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let mut launch = Launch::new(&db);
    launch
        .set("TOKEND_LOG", "trace")
        .set("TOKEND_ROTATE_REFRESH_TOKENS", "true")
        .set("TOKEND_REFRESH_REUSE_GRACE", "0s");
    let (status, cli_output) = launch.run(
        &["user", "add", "bob", "--password-stdin"],
        &format!("{USER_PASSWORD}\n"),
    );
    assert!(status.success(), "user add: {cli_output}");
    let mut server = launch.start().await;
    let mut tokens = Vec::new();

    // Every endpoint, the failures too.
    let resp = server.obtain("bob", WRONG_PASSWORD).await.expect("obtain");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (access, refresh) = server.pair("bob", USER_PASSWORD).await;
    assert_eq!(
        server.me(&access).await.expect("me").status(),
        StatusCode::OK
    );
    assert_eq!(
        server.verify(&refresh).await.expect("verify").status(),
        StatusCode::OK
    );
    let body: Value = server
        .refresh(&refresh)
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let (access2, refresh2) = (text(&body["access"]), text(&body["refresh"]));
    // A reuse: the whole tree is expired, and the warning must not name it.
    let resp = server.refresh(&refresh).await.expect("refresh");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (access3, refresh3) = server.pair("bob", USER_PASSWORD).await;
    let tampered = format!("{}x", &access3[..access3.len() - 1]);
    assert_eq!(
        server.me(&tampered).await.expect("me").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .expire(&refresh3, true)
            .await
            .expect("expire")
            .status(),
        StatusCode::OK
    );
    let (admin_access, admin_refresh) = server.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        server.me(&admin_access).await.expect("me").status(),
        StatusCode::OK
    );
    tokens.extend([
        access,
        refresh,
        access2,
        refresh2,
        access3,
        refresh3,
        tampered,
        admin_access,
        admin_refresh,
    ]);

    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await;
    let logs = format!("{cli_output}\n{}", server.output());
    assert!(logs.contains("DEBUG"), "the flow ran with every level on");

    let pem = std::fs::read_to_string(db.data_dir.path().join("signing-key.pem")).expect("key");
    let key_lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_body: String = key_lines.concat();
    let mut secrets: Vec<(&str, String)> = vec![
        ("the admin password", ADMIN_PASSWORD.into()),
        ("a user's password", USER_PASSWORD.into()),
        ("a wrong password", WRONG_PASSWORD.into()),
        ("the signing key", key_body),
    ];
    secrets.extend(
        key_lines
            .iter()
            .map(|l| ("a line of the signing key", l.to_string())),
    );
    for token in &tokens {
        secrets.push(("a token", token.clone()));
        let signature = token.rsplit('.').next().expect("signature").to_owned();
        secrets.push(("a token's signature", signature));
    }
    for (what, secret) in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{what} appears in the logs"
        );
    }
    eprintln!(
        "secrets hygiene: {} secrets looked for in {} lines of trace logs, none found",
        secrets.len(),
        logs.lines().count()
    );
}

fn text(v: &Value) -> String {
    v.as_str().expect("a token string").to_owned()
}

#[tokio::test]
async fn key_and_sqlite_files_are_private_after_a_flow() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let server = Launch::new(&db).start().await;
    let (_, refresh) = server.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        server.refresh(&refresh).await.expect("refresh").status(),
        StatusCode::OK
    );

    let mut files = vec!["signing-key.pem"];
    if !on_postgres() {
        files.extend(["tokend.db", "tokend.db-wal", "tokend.db-shm"]);
    }
    for file in files {
        let path = db.data_dir.path().join(file);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}
