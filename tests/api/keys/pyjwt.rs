//! Interop: PyJWT verifies tokend's tokens, given only the JWKS.

use serde_json::{Value, json};
use tokend::jwt::Algorithm;

use common::{ADMIN_PASSWORD, TestApp, claims};

use super::{get_jwks, key_dir, pem_entry, write_key};
use crate::standards::interop::required;

/// Verifies a token with PyJWT using only the JWKS; prints the claims.
const PYJWT_VERIFY: &str = r#"
import json, sys, jwt
data = json.load(sys.stdin)
kid = jwt.get_unverified_header(data["token"])["kid"]
jwk = next(k for k in data["jwks"]["keys"] if k["kid"] == kid)
key = jwt.PyJWK(jwk)
claims = jwt.decode(data["token"], key=key.key, algorithms=[jwk["alg"]],
                    audience=data["audience"], issuer=data["issuer"])
print(json.dumps(claims))
"#;

/// Runs `script` with python3 and `input` on stdin; `None` (after saying
/// why) when python3 or PyJWT[crypto] is not installed, unless
/// `CI_REQUIRE_INTEROP=1`: then that fails the test.
pub fn run_python(script: &str, input: &str) -> Option<std::process::Output> {
    use std::io::Write;
    let probe = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output();
    match probe {
        Err(_) => {
            assert!(
                !required(),
                "CI_REQUIRE_INTEROP=1 and python3 is not installed"
            );
            println!("skipped: python3 is not installed");
            return None;
        }
        Ok(out) if !out.status.success() => {
            assert!(
                !required(),
                "CI_REQUIRE_INTEROP=1 and PyJWT[crypto] is missing"
            );
            println!("skipped: python3 has no PyJWT[crypto] (pip install 'pyjwt[crypto]')");
            return None;
        }
        Ok(_) => {}
    }
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().expect("python3 output"))
}

async fn assert_pyjwt_verifies(alg: Algorithm) {
    let dir = key_dir();
    let (path, _) = write_key(dir.path(), "key.pem", alg);
    let entry = pem_entry(&path);
    let app = TestApp::spawn_with(|c| {
        c.keys = vec![entry];
        c.issuer = Some("https://tokend.example".into());
        c.audience = Some("api.example".into());
    })
    .await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let (_, jwks) = get_jwks(&app).await;
    let input = json!({
        "token": access, "jwks": jwks,
        "audience": "api.example", "issuer": "https://tokend.example",
    });
    let Some(out) = run_python(PYJWT_VERIFY, &input.to_string()) else {
        return;
    };
    assert!(
        out.status.success(),
        "PyJWT refused the token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: Value = serde_json::from_slice(&out.stdout).expect("claims from PyJWT");
    assert_eq!(verified, claims(&access));
}

#[tokio::test]
async fn pyjwt_verifies_es256_tokens_with_the_jwks() {
    assert_pyjwt_verifies(Algorithm::ES256).await;
}

#[tokio::test]
async fn pyjwt_verifies_es384_tokens_with_the_jwks() {
    assert_pyjwt_verifies(Algorithm::ES384).await;
}

#[tokio::test]
async fn pyjwt_verifies_rs256_tokens_with_the_jwks() {
    assert_pyjwt_verifies(Algorithm::RS256).await;
}

#[tokio::test]
async fn pyjwt_verifies_eddsa_tokens_with_the_jwks() {
    assert_pyjwt_verifies(Algorithm::EdDSA).await;
}
