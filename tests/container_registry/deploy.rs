//! Issue 18 with the real registry and skopeo: the reason a login failed
//! reaches the user, and a signing key rotation in the documented order
//! (the new certificate in `rootcertbundle` first, then tokend signs with
//! it, then the old one goes) never breaks the registry.

use std::{fs, path::Path};

use tokend::config::KeyConfig;

use crate::{
    ALICE_PASSWORD, Keys, generate_keys,
    registry::{Registry, assert_success, push, skopeo},
    setup, token_header, tokend, tools_present,
};

/// `skopeo inspect` of alice's image with `creds`; its stderr.
async fn inspect(registry: &Registry, creds: &str) -> (bool, String) {
    let out = skopeo(vec![
        "inspect".into(),
        "--tls-verify=false".into(),
        "--creds".into(),
        creds.into(),
        registry.image("alice/hello:v1"),
    ])
    .await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_prints_a_wrong_password_and_a_throttled_login_differently() {
    if !tools_present() {
        return;
    }
    let s = setup("ES256", false).await;
    let out = push(
        &s.image,
        &s.registry,
        "alice/hello",
        &format!("alice:{ALICE_PASSWORD}"),
    )
    .await;
    assert_success(&out, "alice's push", &s.registry);

    // A tokend that throttles alice after two failures, on a registry
    // reading the same storage.
    let strict = tokend(&s.keys, false, |c| c.login_max_failures = 2).await;
    let registry = Registry::start(
        s.dir.path(),
        &strict,
        &s.keys.cert,
        &s.dir.path().join("storage"),
    )
    .await;
    let (ok, wrong) = inspect(&registry, "alice:wrong-password").await;
    assert!(!ok, "a wrong password must fail");
    assert!(
        wrong.contains("No active account found with the given credentials"),
        "skopeo should print tokend's reason:\n{wrong}"
    );
    let _ = inspect(&registry, "alice:wrong-password").await;
    // Now even the right password is throttled, and skopeo says so.
    let (ok, throttled) = inspect(&registry, &format!("alice:{ALICE_PASSWORD}")).await;
    assert!(!ok, "a throttled login must fail");
    assert!(
        throttled.to_lowercase().contains("too many requests"),
        "skopeo should say the login was throttled:\n{throttled}"
    );
    assert!(
        !throttled.contains("No active account"),
        "a throttled login is not a wrong password:\n{throttled}"
    );
}

/// A bundle file holding these certificates, for `rootcertbundle`.
fn bundle(dir: &Path, name: &str, certs: &[&Keys]) -> std::path::PathBuf {
    let path = dir.join(name);
    let text: String = certs
        .iter()
        .map(|k| fs::read_to_string(&k.cert).expect("certificate"))
        .collect();
    fs::write(&path, text).expect("write bundle");
    path
}

fn key(keys: &Keys) -> KeyConfig {
    KeyConfig {
        path: Some(keys.key.clone()),
        ..KeyConfig::default()
    }
}

/// The kid `tokend keys generate` printed is the key's: read it back from
/// a token header signed with it.
async fn signing_kid(app: &common::TestApp) -> String {
    token_header(app).await["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_in_the_documented_order_keeps_the_registry_working() {
    if !tools_present() {
        return;
    }
    // Key A signs; the registry trusts A.
    let s = setup("ES256", false).await;
    let alice = format!("alice:{ALICE_PASSWORD}");
    let out = push(&s.image, &s.registry, "alice/hello", &alice).await;
    assert_success(&out, "alice's push with key A", &s.registry);
    let kid_a = signing_kid(&s.tokend).await;
    let storage = s.dir.path().join("storage");
    let dir_b = s.dir.path().join("b");
    fs::create_dir(&dir_b).unwrap();
    let b = generate_keys(&dir_b, "ES256");

    // The wrong order: tokend signs with B while the registry trusts A only.
    let too_early = tokend(&s.keys, false, |c| {
        c.keys = vec![key(&s.keys), key(&b)];
        c.signing_kid = None;
        c.keys.swap(0, 1);
    })
    .await;
    let registry = Registry::start(s.dir.path(), &too_early, &s.keys.cert, &storage).await;
    let (ok, _) = inspect(&registry, &alice).await;
    assert!(!ok, "a token signed by a key the bundle lacks is refused");
    drop(registry);

    // 1. The new certificate joins the bundle; A still signs.
    let both = bundle(s.dir.path(), "a-and-b.pem", &[&s.keys, &b]);
    let registry = Registry::start(s.dir.path(), &s.tokend, &both, &storage).await;
    let (ok, err) = inspect(&registry, &alice).await;
    assert!(ok, "A still signs, the bundle holds A and B:\n{err}");

    // 2. tokend signs with B (A still verifies its own tokens).
    let rotated = tokend(&s.keys, false, |c| c.keys = vec![key(&b), key(&s.keys)]).await;
    let kid_b = signing_kid(&rotated).await;
    assert_ne!(kid_a, kid_b);
    let registry = Registry::start(s.dir.path(), &rotated, &both, &storage).await;
    let (ok, err) = inspect(&registry, &alice).await;
    assert!(ok, "B signs, the bundle holds A and B:\n{err}");

    // 3. A goes from tokend and from the bundle.
    let only_b = tokend(&s.keys, false, |c| c.keys = vec![key(&b)]).await;
    let bundle_b = bundle(s.dir.path(), "b.pem", &[&b]);
    let registry = Registry::start(s.dir.path(), &only_b, &bundle_b, &storage).await;
    let (ok, err) = inspect(&registry, &alice).await;
    assert!(ok, "B alone:\n{err}");
    assert_eq!(signing_kid(&only_b).await, kid_b);
}
