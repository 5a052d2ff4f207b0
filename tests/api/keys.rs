//! Signing keys over HTTP: every algorithm's round trip, the refusals of the
//! verifier, rotation, the JWKS, issuer/audience/leeway, and interop with a
//! second JWT library (PyJWT) given only the JWKS.

use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokend::{
    Config,
    config::{Dur, KeyConfig, Secret},
    jwt::{Algorithm, PrivateKey},
};

use crate::helpers::{ADMIN_PASSWORD, TestApp, claims, error_code, header};

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

/// Obtains a pair, checks its header, and uses both tokens.
async fn assert_round_trip(app: &TestApp, alg: &str) {
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let ring = app.state.registry.keys();
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
    assert_eq!(app.state.registry.keys().signing_key().kid, "shared-1");
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
    let algs: Vec<_> = app
        .state
        .registry
        .keys()
        .keys()
        .iter()
        .map(|k| k.alg)
        .collect();
    assert_eq!(algs, [Algorithm::ES256, Algorithm::RS256]);
}

#[tokio::test]
async fn bare_start_generates_a_key_of_the_configured_algorithm() {
    let app = TestApp::spawn_with(|c| c.algorithm = "EdDSA".into()).await;
    let pem = std::fs::read_to_string(app.data_dir.path().join("signing-key.pem")).unwrap();
    assert_eq!(PrivateKey::from_pem(&pem).unwrap().alg(), Algorithm::EdDSA);
    assert_round_trip(&app, "EdDSA").await;
}

// --- refusals ---------------------------------------------------------------

/// A token with `header` and the claims of `token`, signed by `key`.
fn forge(token: &str, header: &Header, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, &claims(token), key).expect("encode")
}

fn header_with(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(String::from);
    header
}

#[tokio::test]
async fn alg_none_token_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = header(&access)["kid"].clone();
    let head = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let body = access.split('.').nth(1).unwrap();
    for signature in ["", access.split('.').nth(2).unwrap()] {
        let token = format!("{head}.{body}.{signature}");
        assert_token_not_valid(&app, &token).await;
        let (status, _) = error_code(app.me(&token).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

/// The classic key confusion: an HS256 token whose HMAC key is the public
/// key of an asymmetric key of the ring, as PEM and as DER.
async fn assert_key_confusion_is_refused(alg: Algorithm) {
    let dir = key_dir();
    let (path, key) = write_key(dir.path(), "key.pem", alg);
    let app = spawn_with_pem(&path).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = app.state.registry.keys().signing_key().kid.clone();
    let der = key.spki_der().unwrap();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    for public in [pem.as_bytes(), &der] {
        for kid in [Some(kid.as_str()), None] {
            let token = forge(
                &access,
                &header_with(Algorithm::HS256, kid),
                &EncodingKey::from_secret(public),
            );
            assert_token_not_valid(&app, &token).await;
        }
    }
}

#[tokio::test]
async fn hs256_token_signed_with_an_rsa_public_key_is_refused() {
    assert_key_confusion_is_refused(Algorithm::RS256).await;
}

#[tokio::test]
async fn hs256_token_signed_with_an_ec_public_key_is_refused() {
    assert_key_confusion_is_refused(Algorithm::ES256).await;
}

#[tokio::test]
async fn token_of_an_algorithm_the_kid_does_not_have_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = app.state.registry.keys().signing_key().kid.clone();
    let other = PrivateKey::generate(Algorithm::ES384, 0).unwrap();
    let pem = other.to_pkcs8_pem().unwrap();
    let token = forge(
        &access,
        &header_with(Algorithm::ES384, Some(&kid)),
        &EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap(),
    );
    assert_token_not_valid(&app, &token).await;
}

#[tokio::test]
async fn hs512_token_with_the_secret_of_an_hs256_ring_is_refused() {
    let app = TestApp::spawn_with(|c| {
        c.algorithm = "HS256".into();
        c.secret = Some(Secret::new(SECRET));
    })
    .await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = app.state.registry.keys().signing_key().kid.clone();
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let same = forge(&access, &header_with(Algorithm::HS256, Some(&kid)), &secret);
    assert_valid(&app, &same).await;
    let token = forge(&access, &header_with(Algorithm::HS512, Some(&kid)), &secret);
    assert_token_not_valid(&app, &token).await;
}

#[tokio::test]
async fn token_with_an_unknown_or_missing_kid_is_refused() {
    let dir = key_dir();
    let (path, key) = write_key(dir.path(), "key.pem", Algorithm::ES256);
    let app = spawn_with_pem(&path).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = app.state.registry.keys().signing_key().kid.clone();
    let right_key =
        EncodingKey::from_ec_pem(key.to_pkcs8_pem().unwrap().expose().as_bytes()).unwrap();
    let resigned = forge(
        &access,
        &header_with(Algorithm::ES256, Some(&kid)),
        &right_key,
    );
    assert_valid(&app, &resigned).await;
    for kid in [Some("no-such-kid"), None] {
        let token = forge(&access, &header_with(Algorithm::ES256, kid), &right_key);
        assert_token_not_valid(&app, &token).await;
    }
}

#[tokio::test]
async fn token_signed_by_a_foreign_key_with_a_known_kid_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = app.state.registry.keys().signing_key().kid.clone();
    let foreign = PrivateKey::generate(Algorithm::ES256, 0).unwrap();
    let pem = foreign.to_pkcs8_pem().unwrap();
    let token = forge(
        &access,
        &header_with(Algorithm::ES256, Some(&kid)),
        &EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap(),
    );
    assert_token_not_valid(&app, &token).await;
}

// --- rotation ---------------------------------------------------------------

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

// --- JWKS -------------------------------------------------------------------

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

/// A ring of one key of each type (and a secret); returns the key folder,
/// the app, and the private keys in ring order.
async fn spawn_full_ring() -> (tempfile::TempDir, TestApp, Vec<PrivateKey>) {
    let dir = key_dir();
    let mut entries = Vec::new();
    let mut keys = Vec::new();
    for (i, alg) in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .enumerate()
    {
        let (path, key) = write_key(dir.path(), &format!("{i}.pem"), alg);
        entries.push(pem_entry(&path));
        keys.push(key);
    }
    entries.push(KeyConfig {
        secret: Some(Secret::new(SECRET)),
        ..KeyConfig::default()
    });
    let app = TestApp::spawn_with(|c| c.keys = entries).await;
    (dir, app, keys)
}

#[tokio::test]
async fn jwks_publishes_every_asymmetric_key_in_rfc7517_form() {
    let (_dir, app, keys) = spawn_full_ring().await;
    let (headers, jwks) = get_jwks(&app).await;
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(cache.contains("max-age="), "{cache}");
    let published = jwks["keys"].as_array().unwrap();
    assert_eq!(published.len(), 4, "the secret is not published");
    for (jwk, key) in published.iter().zip(&keys) {
        assert_eq!(jwk["kid"], key.kid().unwrap());
        assert_eq!(jwk["use"], "sig");
        let members = |names: &[&str]| names.iter().all(|n| jwk[*n].is_string());
        match key.alg() {
            Algorithm::ES256 => {
                assert_eq!(
                    (&jwk["alg"], &jwk["kty"], &jwk["crv"]),
                    (&json!("ES256"), &json!("EC"), &json!("P-256"))
                );
                assert!(members(&["x", "y"]));
            }
            Algorithm::ES384 => {
                assert_eq!(
                    (&jwk["alg"], &jwk["kty"], &jwk["crv"]),
                    (&json!("ES384"), &json!("EC"), &json!("P-384"))
                );
                assert!(members(&["x", "y"]));
            }
            Algorithm::RS256 => {
                assert_eq!((&jwk["alg"], &jwk["kty"]), (&json!("RS256"), &json!("RSA")));
                assert!(members(&["n", "e"]));
                assert_eq!(jwk["e"], "AQAB");
                assert_eq!(
                    URL_SAFE_NO_PAD
                        .decode(jwk["n"].as_str().unwrap())
                        .unwrap()
                        .len(),
                    256
                );
            }
            Algorithm::EdDSA => {
                assert_eq!(
                    (&jwk["alg"], &jwk["kty"], &jwk["crv"]),
                    (&json!("EdDSA"), &json!("OKP"), &json!("Ed25519"))
                );
                assert_eq!(
                    URL_SAFE_NO_PAD
                        .decode(jwk["x"].as_str().unwrap())
                        .unwrap()
                        .len(),
                    32
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn jwks_holds_no_private_part_and_no_secret() {
    let (_dir, app, _) = spawn_full_ring().await;
    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(!text.contains(SECRET));
    let jwks: Value = serde_json::from_str(&text).unwrap();
    for jwk in jwks["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(jwk.get(private).is_none(), "{private} in {jwk}");
        }
    }
}

#[tokio::test]
async fn jwks_is_empty_when_only_secrets_are_configured() {
    let app = TestApp::spawn_with(|c| {
        c.algorithm = "HS256".into();
        c.secret = Some(Secret::new(SECRET));
    })
    .await;
    let (_, jwks) = get_jwks(&app).await;
    assert_eq!(jwks, json!({"keys": []}));
}

#[tokio::test]
async fn jwks_lists_old_and_new_keys_during_a_rotation() {
    let dir = key_dir();
    let (a, key_a) = write_key(dir.path(), "a.pem", Algorithm::ES256);
    let (b, key_b) = write_key(dir.path(), "b.pem", Algorithm::ES256);
    let entries = vec![pem_entry(&b), pem_entry(&a)];
    let app = TestApp::spawn_with(|c| c.keys = entries).await;
    let (_, jwks) = get_jwks(&app).await;
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(
        kids,
        [json!(key_b.kid().unwrap()), json!(key_a.kid().unwrap())]
    );
}

#[tokio::test]
async fn configured_certificate_is_published_as_x5c_and_offered_for_signing() {
    let dir = key_dir();
    let (path, key) = write_key(dir.path(), "key.pem", Algorithm::ES256);
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, tokend::jwt::cert::self_signed_pem(&key, 30).unwrap()).unwrap();
    let entry = KeyConfig {
        cert: Some(cert.clone()),
        ..pem_entry(&path)
    };
    let app = TestApp::spawn_with(|c| c.keys = vec![entry]).await;
    let ring = app.state.registry.keys();
    let chain = ring.signing_cert_chain().expect("a chain");
    let (_, jwks) = get_jwks(&app).await;
    assert_eq!(jwks["keys"][0]["x5c"], json!(chain));
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert!(
        header(&access).get("x5c").is_none(),
        "access tokens stay small"
    );
    let with_x5c = ring.sign_with_x5c(&claims(&access)).unwrap();
    assert_eq!(header(&with_x5c)["x5c"], json!(chain));
    assert_valid(&app, &with_x5c).await;
}

// --- issuer, audience, leeway -------------------------------------------------

/// `token`'s claims changed by `change`, signed by the app's own signing key:
/// only the changed claims can make it fail.
fn resign(
    app: &TestApp,
    token: &str,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut claims = claims(token);
    change(claims.as_object_mut().unwrap());
    app.state.registry.keys().sign(&claims).unwrap()
}

async fn spawn_with_issuer_and_audience() -> TestApp {
    TestApp::spawn_with(|c| {
        c.issuer = Some("https://tokend.example".into());
        c.audience = Some("api.example".into());
    })
    .await
}

#[tokio::test]
async fn issuer_and_audience_are_put_in_every_token() {
    let app = spawn_with_issuer_and_audience().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for token in [&access, &refresh] {
        assert_eq!(claims(token)["iss"], "https://tokend.example");
        assert_eq!(claims(token)["aud"], "api.example");
    }
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    let app = spawn_with_issuer_and_audience().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_valid(&app, &resign(&app, &access, |_| {})).await;
    let other = resign(&app, &access, |c| {
        c.insert("aud".into(), "other.example".into());
    });
    assert_token_not_valid(&app, &other).await;
    let missing = resign(&app, &access, |c| {
        c.remove("aud");
    });
    assert_token_not_valid(&app, &missing).await;
}

#[tokio::test]
async fn token_for_another_issuer_is_refused() {
    let app = spawn_with_issuer_and_audience().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let other = resign(&app, &access, |c| {
        c.insert("iss".into(), "https://evil.example".into());
    });
    assert_token_not_valid(&app, &other).await;
    let missing = resign(&app, &access, |c| {
        c.remove("iss");
    });
    assert_token_not_valid(&app, &missing).await;
}

#[tokio::test]
async fn token_with_an_audience_is_refused_when_none_is_configured() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let aimed = resign(&app, &access, |c| {
        c.insert("aud".into(), "registry.example".into());
    });
    assert_token_not_valid(&app, &aimed).await;
}

fn expired_seconds_ago(app: &TestApp, token: &str, secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    resign(app, token, |c| {
        c.insert("exp".into(), (now - secs).into());
    })
}

#[tokio::test]
async fn leeway_accepts_a_token_just_past_its_expiry() {
    let app = TestApp::spawn_with(|c| c.leeway = Dur(std::time::Duration::from_secs(120))).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_valid(&app, &expired_seconds_ago(&app, &access, 30)).await;
    assert_token_not_valid(&app, &expired_seconds_ago(&app, &access, 600)).await;
}

#[tokio::test]
async fn without_leeway_a_token_past_its_expiry_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_token_not_valid(&app, &expired_seconds_ago(&app, &access, 30)).await;
}

// --- start-up refusals --------------------------------------------------------

async fn start_error(configure: impl FnOnce(&mut Config)) -> String {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        bind: "127.0.0.1:0".into(),
        data_dir: data_dir.path().to_owned(),
        // Never reached: the keys are loaded before the database.
        database_url: Some(Secret::new("postgres://127.0.0.1:1/none")),
        ..Config::default()
    };
    configure(&mut config);
    match tokend::Application::build(config).await {
        Ok(_) => panic!("tokend started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn short_secret_in_a_keys_entry_stops_the_start_naming_it() {
    let err = start_error(|c| {
        c.keys = vec![KeyConfig {
            secret: Some(Secret::new("too-short")),
            ..KeyConfig::default()
        }]
    })
    .await;
    assert!(
        err.starts_with("keys[0]: a secret must be at least 32 bytes"),
        "{err}"
    );
    assert!(!err.contains("too-short"), "the secret is not shown");
}

#[tokio::test]
async fn small_rsa_key_stops_the_start_naming_it() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let dir = key_dir();
    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let path = dir.path().join("small.pem");
    std::fs::write(
        &path,
        small.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let (good, _) = write_key(dir.path(), "good.pem", Algorithm::ES256);
    let entries = vec![pem_entry(&good), pem_entry(&path)];
    let err = start_error(|c| c.keys = entries).await;
    assert!(err.starts_with("keys[1]: "), "{err}");
    assert!(
        err.contains("at least 2048 bits, this one has 1024"),
        "{err}"
    );
}

#[tokio::test]
async fn file_that_is_not_a_key_stops_the_start_naming_it() {
    let dir = key_dir();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a key").unwrap();
    let entry = pem_entry(&path);
    let err = start_error(|c| c.keys = vec![entry]).await;
    assert!(err.starts_with("keys[0]: "), "{err}");
    assert!(err.contains("no PEM block"), "{err}");
}

#[tokio::test]
async fn alg_that_does_not_fit_the_key_stops_the_start() {
    let dir = key_dir();
    let (path, _) = write_key(dir.path(), "key.pem", Algorithm::ES256);
    let entry = KeyConfig {
        alg: Some("RS256".into()),
        ..pem_entry(&path)
    };
    let err = start_error(|c| c.keys = vec![entry]).await;
    assert!(err.starts_with("keys[0]: alg: RS256 does not fit"), "{err}");
}

#[tokio::test]
async fn certificate_of_another_key_stops_the_start() {
    let dir = key_dir();
    let (path, _) = write_key(dir.path(), "key.pem", Algorithm::ES256);
    let other = PrivateKey::generate(Algorithm::ES256, 0).unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(
        &cert,
        tokend::jwt::cert::self_signed_pem(&other, 30).unwrap(),
    )
    .unwrap();
    let entry = KeyConfig {
        cert: Some(cert),
        ..pem_entry(&path)
    };
    let err = start_error(|c| c.keys = vec![entry]).await;
    assert!(err.starts_with("keys[0]: cert: "), "{err}");
    assert!(err.contains("for another key"), "{err}");
}

#[tokio::test]
async fn unknown_signing_kid_stops_the_start() {
    let err = start_error(|c| c.signing_kid = Some("nope".into())).await;
    assert_eq!(err, "signing_kid: no key has kid `nope`");
}

#[tokio::test]
async fn same_key_twice_stops_the_start() {
    let dir = key_dir();
    let (path, _) = write_key(dir.path(), "key.pem", Algorithm::ES256);
    let entries = vec![pem_entry(&path), pem_entry(&path)];
    let err = start_error(|c| c.keys = entries).await;
    assert!(err.starts_with("keys[1]: kid `"), "{err}");
}

// --- interop: PyJWT, given only the JWKS ------------------------------------

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
/// why) when python3 or PyJWT[crypto] is not installed.
pub fn run_python(script: &str, input: &str) -> Option<std::process::Output> {
    use std::io::Write;
    let probe = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output();
    match probe {
        Err(_) => {
            println!("skipped: python3 is not installed");
            return None;
        }
        Ok(out) if !out.status.success() => {
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
