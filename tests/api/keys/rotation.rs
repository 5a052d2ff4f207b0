//! Key rotation: old tokens keep working while their key is in the ring.

use reqwest::StatusCode;
use serde_json::Value;
use tokend::{config::KeyConfig, jwt::Algorithm};

use common::{ADMIN_PASSWORD, TestApp, error_code, header};

use super::{assert_token_not_valid, key_dir, pem_entry, spawn_with_pem, write_key};

#[tokio::test]
async fn after_rotation_old_tokens_still_work_and_new_ones_carry_the_new_kid() {
    let dir = key_dir();
    let (a, key_a) = write_key(dir.path(), "a.pem", Algorithm::ES256);
    let (b, key_b) = write_key(dir.path(), "b.pem", Algorithm::RS256);
    let app = spawn_with_pem(&a).await;
    let (old_access, old_refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(header(&old_access)["kid"], key_a.kid().unwrap());

    let (entry_a, entry_b) = (pem_entry(&a), pem_entry(&b));
    let app = app.restart_with(|c| c.keys = vec![entry_b, entry_a]).await;

    assert_eq!(app.me(&old_access).await.status(), StatusCode::OK);
    let resp = app.refresh(&old_refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let refreshed = body["access"].as_str().unwrap();
    assert_eq!(header(refreshed)["kid"], key_b.kid().unwrap());
    let (new_access, new_refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for token in [&new_access, &new_refresh] {
        assert_eq!(header(token)["kid"], key_b.kid().unwrap());
        assert_eq!(header(token)["alg"], "RS256");
    }
}

#[tokio::test]
async fn removing_the_old_key_refuses_its_tokens_but_not_the_new_ones() {
    let dir = key_dir();
    let (a, _) = write_key(dir.path(), "a.pem", Algorithm::ES256);
    let (b, _) = write_key(dir.path(), "b.pem", Algorithm::ES256);
    let app = spawn_with_pem(&a).await;
    let (old_access, old_refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let (entry_a, entry_b) = (pem_entry(&a), pem_entry(&b));
    let app = app.restart_with(|c| c.keys = vec![entry_b, entry_a]).await;
    let (new_access, new_refresh) = app.pair("admin", ADMIN_PASSWORD).await;

    let entry_b = pem_entry(&b);
    let app = app.restart_with(|c| c.keys = vec![entry_b]).await;

    assert_token_not_valid(&app, &old_access).await;
    let (status, code) = error_code(app.refresh(&old_refresh).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
    assert_eq!(app.me(&new_access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&new_refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn signing_kid_chooses_the_key_that_signs() {
    let dir = key_dir();
    let (a, _) = write_key(dir.path(), "a.pem", Algorithm::ES256);
    let (b, key_b) = write_key(dir.path(), "b.pem", Algorithm::EdDSA);
    let kid_b = key_b.kid().unwrap();
    let entries = vec![pem_entry(&a), pem_entry(&b)];
    let signing = kid_b.clone();
    let app = TestApp::spawn_with(|c| {
        c.keys = entries;
        c.signing_kid = Some(signing);
    })
    .await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(header(&access)["kid"], kid_b);
    assert_eq!(header(&access)["alg"], "EdDSA");
}

#[tokio::test]
async fn configured_kid_replaces_the_derived_one() {
    let dir = key_dir();
    let (a, _) = write_key(dir.path(), "a.pem", Algorithm::ES384);
    let entry = KeyConfig {
        kid: Some("2026-11".into()),
        ..pem_entry(&a)
    };
    let app = TestApp::spawn_with(|c| c.keys = vec![entry]).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(header(&access)["kid"], "2026-11");
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"][0]["kid"], "2026-11");
}
