//! Signing keys over HTTP: every algorithm's round trip, the refusals of the
//! verifier, rotation, the JWKS, issuer/audience/leeway, start-up refusals,
//! and interop with a second JWT library (PyJWT) given only the JWKS.

mod claims;
mod jwks;
mod pyjwt;
mod refusals;
mod rotation;
mod round_trip;
mod startup;

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::Value;
use tokend::{
    config::KeyConfig,
    jwt::{Algorithm, PrivateKey},
};

use common::{TestApp, error_code};

pub use pyjwt::run_python;

const SECRET: &str = "a-secret-for-tests-of-at-least-32-bytes";

/// A new key of `alg` written as PKCS#8 PEM into `dir`.
fn write_key(dir: &Path, name: &str, alg: Algorithm) -> (PathBuf, PrivateKey) {
    let key = PrivateKey::generate(alg, 2048).expect("generate key");
    let path = dir.join(name);
    std::fs::write(&path, key.to_pkcs8_pem().unwrap().expose()).expect("write key");
    (path, key)
}

fn pem_entry(path: &Path) -> KeyConfig {
    KeyConfig {
        path: Some(path.to_owned()),
        ..KeyConfig::default()
    }
}

/// A folder for key files that outlives the apps of a test.
fn key_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

async fn spawn_with_pem(path: &Path) -> TestApp {
    let entry = pem_entry(path);
    TestApp::spawn_with(|c| c.keys = vec![entry]).await
}

async fn assert_token_not_valid(app: &TestApp, token: &str) {
    let (status, code) = error_code(app.verify(token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
}

async fn assert_valid(app: &TestApp, token: &str) {
    assert_eq!(app.verify(token).await.status(), StatusCode::OK);
}

async fn get_jwks(app: &TestApp) -> (reqwest::header::HeaderMap, Value) {
    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    (headers, resp.json().await.unwrap())
}
