//! tokend as the token server of a real container registry, driven by a real
//! client: Debian's `docker-registry` (the CNCF distribution registry) with
//! `auth.token` pointing at tokend, and `skopeo` pushing and pulling a small
//! OCI image the test builds itself. Plain HTTP on 127.0.0.1.
//!
//! The tests skip, saying why, when either program is missing; `.ci/run`
//! installs both, so CI never skips them.

mod deploy;
mod image;
mod registry;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::{Value, json};
use tokend::config::{Config, ContainerRule, KeyConfig};

use common::TestApp;
use image::build_image;
use registry::{Registry, args, assert_refused, assert_success, push, skopeo};

pub const SERVICE: &str = "tokend";

const ALICE_PASSWORD: &str = "alice-password";

const BOB_PASSWORD: &str = "bob-password";

/// Whether `docker-registry` and `skopeo` are on PATH; prints why not.
/// With `CI_REQUIRE_CONTAINER_REGISTRY=1` (`.ci/run` sets it) their absence
/// fails the test instead.
fn tools_present() -> bool {
    let missing: Vec<_> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} not installed (apt-get install -y docker-registry skopeo)",
        missing.join(" and ")
    );
    if std::env::var_os("CI_REQUIRE_CONTAINER_REGISTRY").is_some_and(|v| v == "1") {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// A signing key and its self-signed certificate, made by `tokend keys generate`.
struct Keys {
    key: PathBuf,
    cert: PathBuf,
}

fn generate_keys(dir: &Path, alg: &str) -> Keys {
    let keys = Keys {
        key: dir.join("key.pem"),
        cert: dir.join("cert.pem"),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["keys", "generate", "--alg", alg, "--out"])
        .arg(&keys.key)
        .arg("--cert")
        .arg(&keys.cert)
        .env_clear()
        .output()
        .expect("run tokend keys generate");
    assert!(
        out.status.success(),
        "keys generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    keys
}

/// tokend signing with `keys` (and, with `x5c`, sending the certificate in
/// each token's header), with alice and bob as users.
async fn tokend(keys: &Keys, x5c: bool, configure: impl FnOnce(&mut Config)) -> TestApp {
    let key = KeyConfig {
        path: Some(keys.key.clone()),
        cert: x5c.then(|| keys.cert.clone()),
        ..KeyConfig::default()
    };
    let app = TestApp::spawn_with(|c| {
        c.keys = vec![key];
        configure(c);
    })
    .await;
    app.create_user("alice", ALICE_PASSWORD, false).await;
    app.create_user("bob", BOB_PASSWORD, false).await;
    app
}

/// Everything one scenario needs: a folder, keys, an image, tokend, a registry.
struct Setup {
    dir: tempfile::TempDir,
    keys: Keys,
    image: PathBuf,
    layer: String,
    tokend: TestApp,
    registry: Registry,
}

async fn setup(alg: &str, x5c: bool) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = generate_keys(dir.path(), alg);
    let image = dir.path().join("image");
    let layer = build_image(&image);
    let tokend = tokend(&keys, x5c, |_| {}).await;
    let registry =
        Registry::start(dir.path(), &tokend, &keys.cert, &dir.path().join("storage")).await;
    Setup {
        dir,
        keys,
        image,
        layer,
        tokend,
        registry,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_pushes_inspects_and_pulls_back_her_own_image() {
    if !tools_present() {
        return;
    }
    let s = setup("ES256", false).await;
    let alice = format!("alice:{ALICE_PASSWORD}");

    let digest_file = s.dir.path().join("pushed-digest");
    let out = skopeo(vec![
        "copy".into(),
        "--insecure-policy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds".into(),
        alice.clone(),
        "--digestfile".into(),
        digest_file.display().to_string(),
        format!("oci:{}:v1", s.image.display()),
        s.registry.image("alice/hello:v1"),
    ])
    .await;
    assert_success(&out, "alice's push", &s.registry);
    let pushed = fs::read_to_string(&digest_file).expect("digest file");
    // Without a certificate configured, the registry found the key by `kid`.
    assert!(token_header(&s.tokend).await.get("x5c").is_none());

    let out = skopeo(vec![
        "inspect".into(),
        "--tls-verify=false".into(),
        "--creds".into(),
        alice.clone(),
        s.registry.image("alice/hello:v1"),
    ])
    .await;
    assert_success(&out, "alice's inspect", &s.registry);
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(inspected["Digest"], pushed.trim());
    let layers = inspected["Layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);

    let pulled = s.dir.path().join("pulled");
    let out = skopeo(vec![
        "copy".into(),
        "--insecure-policy".into(),
        "--src-tls-verify=false".into(),
        "--src-creds".into(),
        alice,
        s.registry.image("alice/hello:v1"),
        format!("oci:{}:v1", pulled.display()),
    ])
    .await;
    assert_success(&out, "alice's pull", &s.registry);
    // What came back is what went up: the same manifest, the registry's
    // (compressed) layer, and a config naming our tar as the layer's content.
    let read_json = |path: PathBuf| -> Value {
        serde_json::from_slice(
            &fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .expect("JSON")
    };
    let blob = |digest: &str| {
        pulled
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index = read_json(pulled.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest");
    assert_eq!(manifest_digest, pushed.trim());
    let manifest = read_json(blob(manifest_digest));
    assert_eq!(manifest["layers"][0]["digest"], layers[0]);
    assert!(
        blob(layers[0].as_str().unwrap()).exists(),
        "the layer was pulled"
    );
    let config = read_json(blob(manifest["config"]["digest"].as_str().unwrap()));
    assert_eq!(config["rootfs"]["diff_ids"], json!([s.layer]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_is_refused_push_to_alices_repository() {
    if !tools_present() {
        return;
    }
    let s = setup("ES256", false).await;
    let out = push(
        &s.image,
        &s.registry,
        "alice/hello",
        &format!("bob:{BOB_PASSWORD}"),
    )
    .await;
    assert_refused(&out, "bob's push to alice/hello");
    // His own namespace is his.
    let out = push(
        &s.image,
        &s.registry,
        "bob/hello",
        &format!("bob:{BOB_PASSWORD}"),
    )
    .await;
    assert_success(&out, "bob's push to bob/hello", &s.registry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_pull_is_refused_by_default_and_allowed_by_a_rule() {
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
    let anonymous_inspect = |registry: &Registry| {
        args(&["inspect", "--tls-verify=false", "--no-creds"])
            .into_iter()
            .chain([registry.image("alice/hello:v1")])
            .collect::<Vec<_>>()
    };
    let out = skopeo(anonymous_inspect(&s.registry)).await;
    assert_refused(&out, "anonymous inspect under the default rules");

    // Another tokend, whose first rule lets anyone pull alice/hello, in
    // front of a registry on the same storage.
    let open = tokend(&s.keys, false, |c| {
        c.container.rules.insert(
            0,
            ContainerRule {
                account: "".into(),
                resource_type: "repository".into(),
                repository: "alice/hello".into(),
                actions: vec!["pull".into()],
            },
        )
    })
    .await;
    let registry = Registry::start(
        s.dir.path(),
        &open,
        &s.keys.cert,
        &s.dir.path().join("storage"),
    )
    .await;
    let out = skopeo(anonymous_inspect(&registry)).await;
    assert_success(&out, "anonymous inspect once a rule allows it", &registry);
    let pulled = s.dir.path().join("anonymous");
    let out = skopeo(vec![
        "copy".into(),
        "--insecure-policy".into(),
        "--src-tls-verify=false".into(),
        "--src-no-creds".into(),
        registry.image("alice/hello:v1"),
        format!("oci:{}:v1", pulled.display()),
    ])
    .await;
    assert_success(&out, "anonymous pull once a rule allows it", &registry);
    // Pull only: pushing stays refused.
    let out = skopeo(vec![
        "copy".into(),
        "--insecure-policy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-no-creds".into(),
        format!("oci:{}:v1", s.image.display()),
        registry.image("alice/hello:v2"),
    ])
    .await;
    assert_refused(&out, "anonymous push");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_accepts_tokens_carrying_the_certificate_as_x5c() {
    if !tools_present() {
        return;
    }
    let s = setup("ES256", true).await;
    let alice = format!("alice:{ALICE_PASSWORD}");
    let out = push(&s.image, &s.registry, "alice/hello", &alice).await;
    assert_success(&out, "alice's push with x5c tokens", &s.registry);
    // The tokens did carry the certificate.
    let header = token_header(&s.tokend).await;
    assert_eq!(header["x5c"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_accepts_rs256_tokens() {
    if !tools_present() {
        return;
    }
    let s = setup("RS256", false).await;
    let out = push(
        &s.image,
        &s.registry,
        "alice/hello",
        &format!("alice:{ALICE_PASSWORD}"),
    )
    .await;
    assert_success(&out, "alice's push with RS256 tokens", &s.registry);
    assert_eq!(token_header(&s.tokend).await["alg"], "RS256");
}

/// The JOSE header of an anonymous registry token from `tokend`.
async fn token_header(tokend: &TestApp) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let resp = tokend
        .client
        .get(tokend.url("/token"))
        .query(&[("service", SERVICE)])
        .send()
        .await
        .expect("GET /token");
    let body: Value = resp.json().await.expect("JSON");
    let token = body["token"].as_str().expect("token");
    let header = token.split('.').next().expect("header part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}
