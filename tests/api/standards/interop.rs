//! Point 7: the real clients — Authlib (introspection, revocation, its
//! `IntrospectTokenValidator`), node's `jose` and PyJWT's `PyJWKClient`,
//! both from the discovery document's `jwks_uri` — against a running
//! tokend. The scripts live in `tests/interop/`. Without the tools a run
//! skips (saying why), unless `CI_REQUIRE_INTEROP=1` (`.ci/run` sets it):
//! then it fails.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use reqwest::Method;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp, claims};

use super::add_client;

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Whether the interop tools must be there (CI).
pub fn required() -> bool {
    std::env::var_os("CI_REQUIRE_INTEROP").is_some_and(|v| v == "1")
}

/// Whether `program args…` runs and succeeds; when not, skips saying why,
/// or fails when the tools are required.
fn tool_ready(program: &str, args: &[&str], install: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .current_dir(interop_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = format!("{program} {args:?} failed: {install}");
        assert!(!required(), "CI_REQUIRE_INTEROP=1 and {why}");
        println!("skipped: {why}");
    }
    ok
}

fn python_ready(modules: &str) -> bool {
    tool_ready(
        "python3",
        &["-c", &format!("import {modules}")],
        "pip install authlib 'pyjwt[crypto]' requests",
    )
}

fn jose_ready() -> bool {
    tool_ready(
        "node",
        &["--input-type=module", "-e", "await import('jose')"],
        "npm ci --prefix tests/interop",
    )
}

/// Runs a script of `tests/interop` with `input` on stdin, off the
/// runtime's thread (the script calls back into the server); panics with
/// its output unless it succeeds, and returns its stdout as JSON.
async fn run(program: &'static str, script: &'static str, input: Value) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(program)
            .arg(interop_dir().join(script))
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the script");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().expect("script output")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// tokend whose `public_url` is its own address, so the discovery
/// document points back at it.
async fn spawn_public() -> (TestApp, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let public = base.clone();
    let app = TestApp::spawn_with(move |c| {
        c.bind = format!("127.0.0.1:{port}");
        c.public_url = Some(public);
    })
    .await;
    (app, base)
}

#[tokio::test]
async fn authlib_introspects_revokes_and_validates_with_both_client_auth_methods() {
    if !python_ready("authlib, requests") {
        return;
    }
    let (app, base) = spawn_public().await;
    let client = add_client(&app, "authlib", true, true).await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let (revoke_basic, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let (revoke_post, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let out = run(
        "python3",
        "authlib_resource_server.py",
        json!({
            "base": base, "client_id": client.id, "client_secret": client.secret,
            "access": access, "refresh": refresh,
            "revoke_basic": revoke_basic, "revoke_post": revoke_post,
        }),
    )
    .await;
    assert_eq!(
        out["checked"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    for revoked in [&revoke_basic, &revoke_post] {
        assert_eq!(
            app.me(revoked).await.status(),
            reqwest::StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.me(&access).await.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn jose_verifies_access_tokens_from_the_discovered_jwks_uri_requiring_at_jwt() {
    if !jose_ready() {
        return;
    }
    let (app, base) = spawn_public().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let verified = run(
        "node",
        "jose_verify.mjs",
        json!({ "base": base, "access": access, "refresh": refresh }),
    )
    .await;
    assert_eq!(verified, claims(&access));
}

#[tokio::test]
async fn pyjwt_jwks_client_verifies_access_tokens_from_the_discovered_jwks_uri() {
    if !python_ready("jwt, cryptography, requests") {
        return;
    }
    let (app, base) = spawn_public().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let verified = run(
        "python3",
        "pyjwt_jwks_client.py",
        json!({ "base": base, "access": access }),
    )
    .await;
    assert_eq!(verified, claims(&access));
    // And a resource server asks tokend, which still vouches for it.
    let admin = app.admin_token().await;
    let body: Value = app
        .call(
            Method::POST,
            "/api/v1/oauth/introspect",
            &admin,
            Some(json!({"token": access})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);
}
