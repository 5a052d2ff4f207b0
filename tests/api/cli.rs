//! The real binary: first start, settings, and the CLI commands.

use std::{os::unix::fs::PermissionsExt, path::Path};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::Sandbox;

async fn obtain(base: &str, user: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/token/obtain"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn me(base: &str, access: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_bare_start_serves_with_a_new_key_and_prints_the_admin_password_once() {
    let sandbox = Sandbox::new().await;
    let (server, base, lines) = sandbox.serve(&[]);
    let password_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("admin password: "))
        .collect();
    assert_eq!(password_lines.len(), 1, "{lines:?}");
    let password = password_lines[0].trim_start_matches("admin password: ");
    let data = sandbox.path().join("tokend-data");
    assert_eq!(mode(&data.join("signing-key.pem")), 0o600);
    if !sandbox.uses_postgres() {
        assert_eq!(mode(&data.join("tokend.db")), 0o600);
    }
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        obtain(&base, "admin", password).await.status(),
        StatusCode::OK
    );
    drop(server);

    // A second start keeps the key and prints no password.
    let key = std::fs::read(data.join("signing-key.pem")).unwrap();
    let (_server, _, lines) = sandbox.serve(&[]);
    assert!(
        lines.iter().all(|l| !l.contains("admin password")),
        "{lines:?}"
    );
    assert_eq!(std::fs::read(data.join("signing-key.pem")).unwrap(), key);
}

#[tokio::test]
async fn the_admin_password_comes_from_the_environment_when_set() {
    let sandbox = Sandbox::new().await;
    let (_server, base, lines) = sandbox.serve(&[("TOKEND_ADMIN_PASSWORD", "from-the-env")]);
    assert!(lines.iter().all(|l| !l.contains("from-the-env")));
    assert_eq!(
        obtain(&base, "admin", "from-the-env").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    let sandbox = Sandbox::new().await;
    for (key, value) in [
        ("TOKEND_ACCESS_TOKEN_LIFETIME", "soon"),
        ("TOKEND_ROTATE_REFRESH_TOKENS", "perhaps"),
        ("TOKEND_BIND", "not-an-address"),
        ("TOKEND_ALGORITHM", "XX512"),
        ("TOKEND_REGISTRATION_PIPELINE", "connect_user"),
        ("TOKEND_MAX_BODY_SIZE", "lots"),
    ] {
        let (code, stdout, stderr) = sandbox.run(&["serve"], &[(key, value)], "");
        assert_ne!(code, 0, "{key}={value} started");
        let lines: Vec<_> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{key}: {stderr}");
        let name = key.trim_start_matches("TOKEND_").to_lowercase();
        assert!(
            lines[0].contains(key) || lines[0].contains(&name),
            "{key} not named in: {}",
            lines[0]
        );
        assert!(!stderr.contains("panicked") && stdout.is_empty());
    }
    let (code, _, stderr) = sandbox.run(
        &["serve"],
        &[
            ("TOKEND_ALGORITHM", "HS256"),
            ("TOKEND_SECRET", "too-short"),
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("secret") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[tokio::test]
async fn settings_come_from_tokend_toml_and_the_environment_wins() {
    let sandbox = Sandbox::new().await;
    std::fs::write(
        sandbox.path().join("tokend.toml"),
        "access_token_lifetime = \"10m\"\nrefresh_token_lifetime = \"never\"\n",
    )
    .unwrap();
    let (_server, base, _) = sandbox.serve(&[
        ("TOKEND_ADMIN_PASSWORD", "pw-for-toml"),
        ("TOKEND_ACCESS_TOKEN_LIFETIME", "2m"),
    ]);
    let body: Value = obtain(&base, "admin", "pw-for-toml")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 120);
    assert!(body.get("refresh_expires_in").is_none());

    std::fs::write(sandbox.path().join("tokend.toml"), "leeway = \"forever\"\n").unwrap();
    let (code, _, stderr) = sandbox.run(&["serve"], &[], "");
    assert_ne!(code, 0);
    assert!(stderr.contains("leeway"), "{stderr}");
}

#[tokio::test]
async fn openapi_prints_only_the_spec_on_stdout() {
    let sandbox = Sandbox::new().await;
    let (code, stdout, _) = sandbox.run(&["openapi"], &[], "");
    assert_eq!(code, 0);
    let spec: Value = serde_json::from_str(&stdout).expect("stdout is JSON only");
    assert_eq!(
        spec,
        serde_json::from_str::<Value>(&tokend::api::spec_json()).unwrap()
    );
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let sandbox = Sandbox::new().await;
    for _ in 0..2 {
        let (code, _, stderr) = sandbox.run(&["migrate"], &[], "");
        assert_eq!(code, 0, "{stderr}");
    }
}

#[tokio::test]
async fn user_add_reads_the_first_line_of_stdin_then_list_and_delete() {
    let sandbox = Sandbox::new().await;
    let env = [("TOKEND_ADMIN_PASSWORD", "admin-pw")];
    let (code, _, stderr) = sandbox.run(
        &["user", "add", "carol", "--admin", "--password-stdin"],
        &env,
        "carol-secret\nignored second line\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("carol-secret"));
    let (code, stdout, _) = sandbox.run(&["user", "list"], &env, "");
    assert_eq!(code, 0);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("carol\tadmin\tactive")),
        "{stdout}"
    );

    let (_server, base, _) = sandbox.serve(&env);
    assert_eq!(
        obtain(&base, "carol", "carol-secret").await.status(),
        StatusCode::OK
    );
    let (code, _, _) = sandbox.run(&["user", "add", "carol", "--password-stdin"], &env, "x\n");
    assert_ne!(code, 0, "a taken name is refused");

    let (code, _, _) = sandbox.run(&["user", "delete", "carol"], &env, "");
    assert_eq!(code, 0);
    assert_eq!(
        obtain(&base, "carol", "carol-secret").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn cli_invalidations_take_effect_on_a_running_server() {
    let sandbox = Sandbox::new().await;
    let env = [("TOKEND_ADMIN_PASSWORD", "admin-pw")];
    let (_server, base, _) = sandbox.serve(&env);
    let pair = |body: Value| body["access"].as_str().unwrap().to_owned();

    // tokens expire-user
    let a1 = pair(
        obtain(&base, "admin", "admin-pw")
            .await
            .json()
            .await
            .unwrap(),
    );
    let (code, _, _) = sandbox.run(&["tokens", "expire-user", "admin"], &env, "");
    assert_eq!(code, 0);
    assert_eq!(me(&base, &a1).await, StatusCode::UNAUTHORIZED);

    // user deactivate / activate
    let a2 = pair(
        obtain(&base, "admin", "admin-pw")
            .await
            .json()
            .await
            .unwrap(),
    );
    // The last active administrator: refused, unless forced.
    let (code, _, err) = sandbox.run(&["user", "deactivate", "admin"], &env, "");
    assert_ne!(code, 0);
    assert!(err.contains("last active administrator"), "{err}");
    assert_eq!(me(&base, &a2).await, StatusCode::OK);
    let (code, _, _) = sandbox.run(&["user", "deactivate", "admin", "--force"], &env, "");
    assert_eq!(code, 0);
    assert_eq!(me(&base, &a2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        obtain(&base, "admin", "admin-pw").await.status(),
        StatusCode::UNAUTHORIZED
    );
    sandbox.run(&["user", "activate", "admin"], &env, "");
    assert_eq!(me(&base, &a2).await, StatusCode::OK);

    // user passwd
    let (code, _, _) = sandbox.run(
        &["user", "passwd", "admin", "--password-stdin"],
        &env,
        "new-pw\n",
    );
    assert_eq!(code, 0);
    assert_eq!(me(&base, &a2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        obtain(&base, "admin", "new-pw").await.status(),
        StatusCode::OK
    );

    // archive
    let (code, stdout, stderr) = sandbox.run(&["archive", "--older-than", "0s"], &env, "");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("archived 4 tokens"), "{stdout}");
    let (code, stdout, _) = sandbox.run(
        &["archive", "--expired-before", "2000-01-01T00:00:00Z"],
        &env,
        "",
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("archived 0 tokens"), "{stdout}");
}

#[tokio::test]
async fn tokend_log_is_the_one_variable_that_sets_the_logs() {
    let sandbox = Sandbox::new().await;
    // `user list` logs the migrations it applies at debug level.
    let (_, _, quiet) = sandbox.run(&["user", "list"], &[("RUST_LOG", "debug")], "");
    assert!(!quiet.contains("DEBUG"), "RUST_LOG is not read: {quiet}");
    let (_, _, chatty) = sandbox.run(&["user", "list"], &[("TOKEND_LOG", "debug")], "");
    assert!(chatty.contains("DEBUG"), "{chatty}");
    let (_, _, silent) = sandbox.run(&["user", "list"], &[("TOKEND_LOG", "error")], "");
    assert!(!silent.contains("INFO"), "{silent}");
}
