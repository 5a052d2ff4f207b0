//! Private keys: read, generated, written, described.
use super::*;

#[test]
fn libtrust_kid_has_twelve_groups_of_four() {
    let kid = libtrust_kid(b"any bytes");
    let groups: Vec<_> = kid.split(':').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups.iter().all(|g| g.len() == 4));
}

#[test]
fn every_generated_key_reads_back_from_its_pem() {
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let key = PrivateKey::generate(alg, 0).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let back = PrivateKey::from_pem(pem.expose()).unwrap();
        assert_eq!(back.alg(), alg);
        assert_eq!(back.kid().unwrap(), key.kid().unwrap());
    }
}

#[test]
fn sec1_ec_keys_are_accepted() {
    let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let sec1 = key.private_key().as_der().unwrap();
    let pem = format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        STANDARD.encode(sec1.as_ref())
    );
    let back = PrivateKey::from_pem(&pem).unwrap();
    assert_eq!(back.alg(), Algorithm::ES384);
    assert_eq!(
        back.spki_der().unwrap(),
        key.public_key().as_der().unwrap().as_ref()
    );
}

/// Keys written and fingerprinted by tokend when it used the RustCrypto
/// crates: the same `kid` and JWK, or every configured key would get a
/// new default kid and every token in flight would fail.
#[test]
fn keys_keep_the_kid_and_jwk_they_had() {
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("testdata/expected.json")).unwrap();
    let files = [
        ("p256-pkcs8.pem", include_str!("testdata/p256-pkcs8.pem")),
        ("p256-sec1.pem", include_str!("testdata/p256-sec1.pem")),
        ("p384-pkcs8.pem", include_str!("testdata/p384-pkcs8.pem")),
        ("rsa-pkcs8.pem", include_str!("testdata/rsa-pkcs8.pem")),
        ("rsa-pkcs1.pem", include_str!("testdata/rsa-pkcs1.pem")),
        (
            "ed25519-pkcs8.pem",
            include_str!("testdata/ed25519-pkcs8.pem"),
        ),
        (
            "ed25519-pkcs8-v2.pem",
            include_str!("testdata/ed25519-pkcs8-v2.pem"),
        ),
    ];
    assert_eq!(files.len(), expected.as_object().unwrap().len());
    for (name, pem) in files {
        let key = PrivateKey::from_pem(pem).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(key.kid().unwrap(), expected[name]["kid"], "{name}");
        let jwk = serde_json::Value::Object(key.public_jwk().unwrap());
        assert_eq!(jwk, expected[name]["jwk"], "{name}");
        // Written again and read back: still the same key.
        let again = PrivateKey::from_pem(key.to_pkcs8_pem().unwrap().expose()).unwrap();
        assert_eq!(again.kid().unwrap(), expected[name]["kid"], "{name}");
    }
}

#[test]
fn small_rsa_keys_are_refused_naming_their_size() {
    let err = PrivateKey::from_pem(include_str!("testdata/rsa-1024-pkcs8.pem")).unwrap_err();
    assert!(err.to_string().contains("this one has 1024"), "{err:#}");
}

#[test]
fn keys_of_other_types_are_refused_naming_the_algorithm() {
    // PKCS#8 of an X25519 key (OID 1.3.101.110): SEQUENCE { version 0,
    // AlgorithmIdentifier { OID }, OCTET STRING { OCTET STRING (32) } }.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend([7; 32]);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    );
    let err = PrivateKey::from_pem(&pem).unwrap_err().to_string();
    assert!(
        err.contains("unsupported key type (algorithm 1.3.101.110)"),
        "{err}"
    );
}

#[test]
fn every_generated_rsa_size_reads_back_and_others_are_refused() {
    let key = PrivateKey::generate(Algorithm::RS256, 2048).unwrap();
    let back = PrivateKey::from_pem(key.to_pkcs8_pem().unwrap().expose()).unwrap();
    assert_eq!(back.kid().unwrap(), key.kid().unwrap());
    let err = PrivateKey::generate(Algorithm::RS256, 2050).unwrap_err();
    assert!(
        err.to_string().contains("2048, 3072, 4096 or 8192"),
        "{err}"
    );
}

#[test]
fn a_file_without_a_private_key_is_refused_by_name() {
    let text = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let err = PrivateKey::from_pem(text).unwrap_err().to_string();
    assert!(err.contains("only CERTIFICATE"), "{err}");
    assert!(PrivateKey::from_pem("hello").is_err());
}

#[test]
fn malformed_pem_is_an_error_not_a_panic() {
    for text in [
        "-----BEGIN X-----END X-----",
        "-----BEGIN X",
        "-----BEGIN PRIVATE KEY-----\n%%%\n-----END PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ] {
        assert!(PrivateKey::from_pem(text).is_err(), "{text}");
    }
}

#[test]
fn small_rsa_keys_are_refused() {
    assert!(PrivateKey::generate(Algorithm::RS256, 1024).is_err());
}
