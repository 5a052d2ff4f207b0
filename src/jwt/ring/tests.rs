//! The key ring: signing, verifying, the low-S rule, the verified-token cache.
use std::{fs, path::Path};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::*;
use crate::jwt::{
    SUPPORTED_ALGORITHMS,
    key::{Key, is_hmac},
    signature::Curve,
};

/// A ring whose key of `alg` is generated in a temporary data dir (it
/// holds `signing-key.pem`), or made from a secret for HS*.
fn ring(alg: &str) -> (KeyRing, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = KeySettings {
        data_dir: dir.path().to_owned(),
        algorithm: alg.into(),
        secret: alg.starts_with("HS").then(|| Secret::new(SECRET)),
        ..KeySettings::default()
    };
    let ring = KeyRing::load(&settings, Generate::IfMissing, crate::clock::system()).unwrap();
    (ring, dir)
}

fn es256_ring() -> (KeyRing, tempfile::TempDir) {
    ring("ES256")
}

const SECRET: &str = "a-secret-of-more-than-thirty-two-bytes";

/// jsonwebtoken's key for what `ring` made.
fn jsonwebtoken_key(alg: Algorithm, dir: &Path) -> jsonwebtoken::EncodingKey {
    use jsonwebtoken::EncodingKey;
    if is_hmac(alg) {
        return EncodingKey::from_secret(SECRET.as_bytes());
    }
    let pem = fs::read(dir.join("signing-key.pem")).unwrap();
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_ec_pem(&pem),
    }
    .unwrap()
}

/// `token` with its signature changed by `change`.
fn with_signature(token: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    change(&mut signature);
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn signature_of(token: &str) -> Vec<u8> {
    let mut signature = Vec::new();
    with_signature(token, |s| signature = s.clone());
    signature
}

/// ECDSA signatures are randomized, so tokens cannot be compared with
/// jsonwebtoken's: each must verify with the other instead, tokend's
/// with the public key of the JWKS.
#[test]
fn tokens_verify_with_jsonwebtoken_and_jsonwebtoken_tokens_with_tokend() {
    let claims = serde_json::json!({"sub": "someone", "jti": "x", "iat": 1});
    for alg in SUPPORTED_ALGORITHMS {
        let (ring, dir) = ring(alg);
        let key = ring.signing_key();
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims.clear();
        let public = match ring.jwks()["keys"].get(0) {
            Some(jwk) => {
                let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
                DecodingKey::from_jwk(&jwk).unwrap()
            }
            None => DecodingKey::from_secret(SECRET.as_bytes()),
        };
        let theirs_key = jsonwebtoken_key(key.alg, dir.path());
        let mut x5c = ring.header.clone();
        x5c.x5c = Some(vec!["MIIB".into()]);
        for header in [&ring.header, &x5c] {
            let ours = ring.sign_with_header(header, &claims).unwrap();
            let decoded = jsonwebtoken::decode::<serde_json::Value>(&ours, &public, &validation)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(decoded.claims, claims);
            assert_eq!(&decoded.header, header);

            let theirs = jsonwebtoken::encode(header, &claims, &theirs_key).unwrap();
            assert_eq!(
                ours.rsplit_once('.').unwrap().0,
                theirs.rsplit_once('.').unwrap().0,
                "{alg}: the same header and payload"
            );
            // jsonwebtoken leaves ECDSA signatures as aws-lc makes them,
            // high-S half of the time: tokend takes only the low-S form.
            let theirs = match Curve::of(key.alg) {
                Some(curve) if !curve.is_low_s(&signature_of(&theirs)) => {
                    assert!(ring.verify::<serde_json::Value>(&theirs, None).is_err());
                    with_signature(&theirs, |s| curve.negate_s(s))
                }
                _ => theirs,
            };
            let verified = ring.verify::<serde_json::Value>(&theirs, None);
            assert_eq!(verified.unwrap(), claims, "{alg}");
        }
    }
}

/// Issue 13.11: (r, n − s) is as valid an ECDSA signature as (r, s);
/// tokend takes only the low-S one, so a token has one valid text.
#[test]
fn ecdsa_tokens_with_the_high_s_twin_of_their_signature_are_refused() {
    for alg in ["ES256", "ES384"] {
        let (ring, _dir) = ring(alg);
        let key = ring.signing_key();
        let curve = Curve::of(key.alg).unwrap();
        let token = ring.sign_claims(&claims(None)).unwrap();
        assert!(ring.verify_claims(&token, None).is_ok(), "{alg}");
        let twin = with_signature(&token, |s| curve.negate_s(s));
        assert_ne!(twin, token);
        // A valid signature all the same: jsonwebtoken alone takes it.
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims.clear();
        assert!(jsonwebtoken::decode::<Claims>(&twin, &key.decoding, &validation).is_ok());
        assert!(ring.verify::<Claims>(&twin, None).is_err(), "{alg}");
        assert!(ring.verify_claims(&twin, None).is_err(), "{alg}");
    }
}

#[test]
fn freshly_signed_ecdsa_tokens_are_low_s_and_verify() {
    for alg in ["ES256", "ES384"] {
        let (ring, _dir) = ring(alg);
        let curve = Curve::of(ring.signing_key().alg).unwrap();
        for _ in 0..200 {
            let token = ring.sign_claims(&claims(None)).unwrap();
            assert!(curve.is_low_s(&signature_of(&token)), "{alg}: {token}");
            assert!(ring.verify::<Claims>(&token, None).is_ok(), "{alg}");
        }
    }
}

fn claims(exp: Option<i64>) -> Claims {
    let user_id = uuid::Uuid::now_v7();
    Claims {
        token_type: crate::jwt::TokenType::Access,
        jti: uuid::Uuid::new_v4(),
        iat: 0,
        exp,
        sub: user_id.to_string(),
        user_id,
        username: "ann".into(),
        client_id: "tokend".into(),
        iss: None,
        aud: None,
    }
}

#[test]
fn a_remembered_token_still_expires() {
    let (ring, _dir) = es256_ring();
    let now = chrono::Utc::now().timestamp();
    let live = ring.sign_claims(&claims(Some(now + 60))).unwrap();
    assert!(ring.verify_claims(&live, None).is_ok());
    assert!(ring.verify_claims(&live, None).is_ok(), "a hit");
    // Past its expiry (and the leeway) by the time of the second call:
    // the first verifies and remembers it, the hit checks the time again.
    let leeway = ring.leeway as i64;
    let dying = ring.sign_claims(&claims(Some(now - leeway - 1))).unwrap();
    assert!(ring.verify_claims(&dying, None).is_err());
    let text = ring.sign_claims(&claims(Some(now + 60))).unwrap();
    let verified = ring.verify_claims(&text, None).unwrap();
    ring.verified.put(
        &text,
        None,
        &Verified {
            claims: Claims {
                exp: Some(now - leeway - 1),
                ..verified
            },
            nbf: None,
        },
    );
    assert!(ring.verify_claims(&text, None).is_err(), "an expired hit");
}

#[test]
fn a_remembered_token_is_checked_for_the_audience_asked() {
    let (ring, _dir) = es256_ring();
    let token = ring.sign_claims(&claims(None)).unwrap();
    assert!(ring.verify_claims(&token, None).is_ok());
    assert!(ring.verify_claims(&token, Some("registry")).is_err());
}

#[test]
fn a_tampered_copy_of_a_remembered_token_is_refused() {
    let (ring, _dir) = es256_ring();
    let token = ring.sign_claims(&claims(None)).unwrap();
    assert!(ring.verify_claims(&token, None).is_ok());
    let mut tampered = token.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(ring.verify_claims(&tampered, None).is_err());
}

#[test]
fn hmac_keys_refuse_short_secrets() {
    assert!(Key::from_secret(Algorithm::HS256, "short", None).is_err());
}

#[test]
fn secrets_need_an_hmac_algorithm() {
    let secret = "a-secret-of-more-than-thirty-two-bytes";
    assert!(Key::from_secret(Algorithm::ES256, secret, None).is_err());
}

#[test]
fn a_token_the_ring_signs_is_remembered_for_the_audience_it_names() {
    let (ring, dir) = es256_ring();
    let plain = ring.sign_claims(&claims(None)).unwrap();
    assert!(ring.verified.get(&plain, None).is_some());
    let bound = Claims {
        aud: Some("registry".into()),
        ..claims(None)
    };
    let for_registry = ring.sign_claims(&bound).unwrap();
    assert!(ring.verified.get(&for_registry, Some("registry")).is_some());
    assert!(ring.verified.get(&for_registry, None).is_none());
    assert!(ring.verify_claims(&for_registry, None).is_err());
    // The hit gives what a ring that never saw the token verifies.
    let hit = ring.verify_claims(&for_registry, Some("registry")).unwrap();
    let settings = KeySettings {
        data_dir: dir.path().to_owned(),
        algorithm: "ES256".into(),
        ..KeySettings::default()
    };
    let fresh = KeyRing::load(&settings, Generate::Never, crate::clock::system()).unwrap();
    assert!(
        fresh
            .verified
            .get(&for_registry, Some("registry"))
            .is_none()
    );
    assert_eq!(
        fresh
            .verify_claims(&for_registry, Some("registry"))
            .unwrap(),
        hit
    );
    assert_eq!(hit, bound);
}

#[test]
fn a_token_without_the_issuer_the_ring_requires_is_not_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = "https://tokend.example";
    let settings = KeySettings {
        data_dir: dir.path().to_owned(),
        algorithm: "ES256".into(),
        issuer: Some(issuer.into()),
        ..KeySettings::default()
    };
    let ring = KeyRing::load(&settings, Generate::IfMissing, crate::clock::system()).unwrap();
    let without = ring.sign_claims(&claims(None)).unwrap();
    assert!(ring.verified.get(&without, None).is_none());
    assert!(ring.verify_claims(&without, None).is_err());
    let with = ring
        .sign_claims(&Claims {
            iss: Some(issuer.into()),
            ..claims(None)
        })
        .unwrap();
    assert!(ring.verified.get(&with, None).is_some());
    assert!(ring.verify_claims(&with, None).is_ok());
}
