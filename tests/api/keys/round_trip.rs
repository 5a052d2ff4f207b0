//! Every kind of key signs a pair that tokend then accepts.

use reqwest::StatusCode;
use serde_json::Value;
use tokend::{
    config::KeyConfig,
    jwt::{Algorithm, PrivateKey},
    secret::Secret,
};

use common::{ADMIN_PASSWORD, TestApp, header};

use super::{SECRET, key_dir, pem_entry, spawn_with_pem, write_key};

/// Obtains a pair, checks its header, and uses both tokens.
async fn assert_round_trip(app: &TestApp, alg: &str) {
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let ring = &app.state.keys;
    for token in [&access, &refresh] {
        assert_eq!(header(token)["alg"], alg);
        assert_eq!(header(token)["kid"], ring.signing_key().kid.as_str());
    }
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    let resp = app.refresh(&refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let new_access = body["access"].as_str().unwrap();
    assert_eq!(header(new_access)["alg"], alg);
    assert_eq!(app.me(new_access).await.status(), StatusCode::OK);
}

async fn assert_pem_round_trip(alg: Algorithm, name: &str) {
    let dir = key_dir();
    let (path, _) = write_key(dir.path(), "key.pem", alg);
    let app = spawn_with_pem(&path).await;
    assert_round_trip(&app, name).await;
}

async fn assert_secret_round_trip(alg: &str) {
    let app = TestApp::spawn_with(|c| {
        c.algorithm = alg.into();
        c.secret = Some(Secret::new(SECRET));
    })
    .await;
    assert_round_trip(&app, alg).await;
}

#[tokio::test]
async fn es256_key_signs_and_verifies_a_pair() {
    assert_pem_round_trip(Algorithm::ES256, "ES256").await;
}

#[tokio::test]
async fn es384_key_signs_and_verifies_a_pair() {
    assert_pem_round_trip(Algorithm::ES384, "ES384").await;
}

#[tokio::test]
async fn rs256_key_signs_and_verifies_a_pair() {
    assert_pem_round_trip(Algorithm::RS256, "RS256").await;
}

#[tokio::test]
async fn eddsa_key_signs_and_verifies_a_pair() {
    assert_pem_round_trip(Algorithm::EdDSA, "EdDSA").await;
}

#[tokio::test]
async fn hs256_secret_signs_and_verifies_a_pair() {
    assert_secret_round_trip("HS256").await;
}

#[tokio::test]
async fn hs384_secret_signs_and_verifies_a_pair() {
    assert_secret_round_trip("HS384").await;
}

#[tokio::test]
async fn hs512_secret_signs_and_verifies_a_pair() {
    assert_secret_round_trip("HS512").await;
}

#[tokio::test]
async fn secret_in_a_keys_entry_signs_and_verifies_a_pair() {
    let app = TestApp::spawn_with(|c| {
        c.keys = vec![KeyConfig {
            secret: Some(Secret::new(SECRET)),
            alg: Some("HS512".into()),
            kid: Some("shared-1".into()),
            ..KeyConfig::default()
        }]
    })
    .await;
    assert_round_trip(&app, "HS512").await;
    assert_eq!(app.state.keys.signing_key().kid, "shared-1");
}

#[tokio::test]
async fn sec1_and_pkcs1_pem_keys_are_accepted() {
    use p256::pkcs8::LineEnding;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let dir = key_dir();
    let sec1 = dir.path().join("ec.pem");
    let ec = p256::SecretKey::random(&mut rand::rngs::OsRng);
    std::fs::write(&sec1, ec.to_sec1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let pkcs1 = dir.path().join("rsa.pem");
    let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    std::fs::write(&pkcs1, rsa.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let entries = vec![pem_entry(&sec1), pem_entry(&pkcs1)];
    let app = TestApp::spawn_with(|c| c.keys = entries).await;
    let algs: Vec<_> = app.state.keys.keys().iter().map(|k| k.alg).collect();
    assert_eq!(algs, [Algorithm::ES256, Algorithm::RS256]);
}

#[tokio::test]
async fn bare_start_generates_a_key_of_the_configured_algorithm() {
    let app = TestApp::spawn_with(|c| c.algorithm = "EdDSA".into()).await;
    let pem = std::fs::read_to_string(app.data_dir().join("signing-key.pem")).unwrap();
    assert_eq!(PrivateKey::from_pem(&pem).unwrap().alg(), Algorithm::EdDSA);
    assert_round_trip(&app, "EdDSA").await;
}
