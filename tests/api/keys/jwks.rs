//! The JWKS: every public key in RFC 7517 form, nothing private.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokend::{
    config::KeyConfig,
    jwt::{Algorithm, PrivateKey},
    secret::Secret,
};

use common::{ADMIN_PASSWORD, TestApp, claims, header};

use super::{SECRET, assert_valid, get_jwks, key_dir, pem_entry, write_key};

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
    let ring = &app.state.keys;
    let chain = ring.signing_cert_chain().expect("a chain");
    let (_, jwks) = get_jwks(&app).await;
    assert_eq!(jwks["keys"][0]["x5c"], json!(chain));
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert!(
        header(&access).get("x5c").is_none(),
        "access tokens stay small"
    );
    let with_x5c = ring
        .sign_with_x5c(header(&access)["typ"].as_str().unwrap(), &claims(&access))
        .unwrap();
    assert_eq!(header(&with_x5c)["x5c"], json!(chain));
    assert_valid(&app, &with_x5c).await;
}
