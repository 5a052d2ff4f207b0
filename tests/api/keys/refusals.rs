//! What the verifier refuses: `alg: none`, key confusion, a kid that does
//! not fit, a foreign key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;
use tokend::{
    jwt::{Algorithm, PrivateKey},
    secret::Secret,
};

use common::{ADMIN_PASSWORD, TestApp, claims, error_code, header};

use super::{SECRET, assert_token_not_valid, assert_valid, key_dir, spawn_with_pem, write_key};

/// A token with `header` (and the `typ` of `token`, so that only what the
/// test changes differs) and the claims of `token`, signed by `key`.
fn forge(token: &str, with: &Header, key: &EncodingKey) -> String {
    let mut with = with.clone();
    with.typ = header(token)["typ"].as_str().map(String::from);
    jsonwebtoken::encode(&with, &claims(token), key).expect("encode")
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
    let kid = app.state.keys.signing_key().kid.clone();
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
    let kid = app.state.keys.signing_key().kid.clone();
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
    let kid = app.state.keys.signing_key().kid.clone();
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
    let kid = app.state.keys.signing_key().kid.clone();
    let right_key =
        EncodingKey::from_ec_pem(key.to_pkcs8_pem().unwrap().expose().as_bytes()).unwrap();
    let resigned = forge(
        &access,
        &header_with(Algorithm::ES256, Some(&kid)),
        &right_key,
    );
    assert_valid(&app, &es256_low_s(&resigned)).await;
    for kid in [Some("no-such-kid"), None] {
        let token = forge(&access, &header_with(Algorithm::ES256, kid), &right_key);
        assert_token_not_valid(&app, &token).await;
    }
}

/// `token` with its ES256 signature (r, s) replaced by `change(r, s)`.
fn with_es256_signature(
    token: &str,
    change: impl FnOnce(p256::ecdsa::Signature) -> p256::ecdsa::Signature,
) -> String {
    let (message, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let signature = change(p256::ecdsa::Signature::from_slice(&signature).unwrap());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// `token` with its ES256 signature in its low-S form, the only one tokend
/// takes (issue 13.11): jsonwebtoken, like OpenSSL, makes either.
fn es256_low_s(token: &str) -> String {
    with_es256_signature(token, |sig| sig.normalize_s().unwrap_or(sig))
}

#[tokio::test]
async fn es256_token_with_the_high_s_twin_of_its_signature_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_valid(&app, &access).await;
    let twin = with_es256_signature(&access, |sig| {
        let (r, s) = sig.split_scalars();
        p256::ecdsa::Signature::from_scalars(r, -s).unwrap()
    });
    assert_token_not_valid(&app, &twin).await;
}

#[tokio::test]
async fn token_signed_by_a_foreign_key_with_a_known_kid_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let kid = app.state.keys.signing_key().kid.clone();
    let foreign = PrivateKey::generate(Algorithm::ES256, 0).unwrap();
    let pem = foreign.to_pkcs8_pem().unwrap();
    let token = forge(
        &access,
        &header_with(Algorithm::ES256, Some(&kid)),
        &EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap(),
    );
    assert_token_not_valid(&app, &token).await;
}
