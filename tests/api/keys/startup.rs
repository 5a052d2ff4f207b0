//! Key settings that stop the start, each named.

use tokend::{
    Config,
    config::KeyConfig,
    jwt::{Algorithm, PrivateKey},
    secret::Secret,
};

use super::{key_dir, pem_entry, write_key};

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
