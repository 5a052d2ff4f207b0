//! tokend as the token server of a real container registry, driven by a real
//! client: Debian's `docker-registry` (the CNCF distribution registry) with
//! `auth.token` pointing at tokend, and `skopeo` pushing and pulling a small
//! OCI image the test builds itself. Plain HTTP on 127.0.0.1.
//!
//! The tests skip, saying why, when either program is missing; `.ci/run`
//! installs both, so CI never skips them.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokend::config::{Config, KeyConfig, RegistryRule};

use helpers::TestApp;

const SERVICE: &str = "tokend";
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

/// A running `docker-registry serve`, killed when dropped.
struct Registry {
    child: Child,
    host: String,
    log: PathBuf,
}

impl Registry {
    /// Starts a registry whose token realm is `tokend`, storing blobs in
    /// `storage`, and waits until it answers.
    async fn start(dir: &Path, tokend: &TestApp, cert: &Path, storage: &Path) -> Registry {
        let port = free_port();
        let config = dir.join(format!("registry-{port}.yml"));
        fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: tokend-test-secret\n\
                 auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: tokend\n    rootcertbundle: {cert}\n",
                storage = storage.display(),
                realm = tokend.url("/token"),
                cert = cert.display(),
            ),
        )
        .expect("write registry config");
        let log = dir.join(format!("registry-{port}.log"));
        let log_file = fs::File::create(&log).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            log,
        };
        registry.wait_until_up().await;
        registry
    }

    /// Polls `/v2/` until the registry asks for a token.
    async fn wait_until_up(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(resp) = client.get(format!("http://{}/v2/", self.host)).send().await {
                assert_eq!(resp.status(), 401, "the registry should demand a token");
                let challenge = resp.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(challenge.starts_with("Bearer realm="), "{challenge}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("docker-registry did not start:\n{}", self.log());
    }

    fn image(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs skopeo on the blocking pool (tokend serves on this runtime).
async fn skopeo(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("skopeo")
            .args(&args)
            .output()
            .expect("run skopeo")
    })
    .await
    .expect("skopeo task")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn assert_success(out: &Output, what: &str, registry: &Registry) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\nregistry log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        registry.log()
    );
}

fn assert_refused(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success(), "{what} should have been refused");
    // The registry's own refusal of a token that lacks the access, not a
    // failure to get a token.
    assert!(
        stderr.contains("requested access to the resource is denied"),
        "{what} failed for another reason:\n{stderr}"
    );
}

/// A push of the test image to `repo:v1` with `creds` (`user:password`).
async fn push(image: &Path, registry: &Registry, repo: &str, creds: &str) -> Output {
    skopeo(vec![
        "copy".into(),
        "--insecure-policy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds".into(),
        creds.into(),
        format!("oci:{}:v1", image.display()),
        registry.image(&format!("{repo}:v1")),
    ])
    .await
}

/// An OCI image layout with one tiny layer (an uncompressed tar holding
/// `hello.txt`), tagged `v1`. Returns the layer's digest.
fn build_image(dir: &Path) -> String {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs folder");
    let write_blob = |bytes: &[u8]| -> (String, usize) {
        let hex = hex(&Sha256::digest(bytes));
        fs::write(blobs.join(&hex), bytes).expect("write blob");
        (format!("sha256:{hex}"), bytes.len())
    };
    let layer = tar_with_one_file("hello.txt", b"hello from tokend\n");
    let (layer_digest, layer_size) = write_blob(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = write_blob(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = write_blob(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    });
    fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    layer_digest
}

/// A ustar archive holding one regular file.
fn tar_with_one_file(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let field = |header: &mut [u8; 512], at: usize, value: &[u8]| {
        header[at..at + value.len()].copy_from_slice(value);
    };
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(
        &mut header,
        124,
        format!("{:011o}\0", contents.len()).as_bytes(),
    );
    field(&mut header, 136, b"00000000000\0");
    field(&mut header, 156, b"0");
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    // The checksum is computed with its own field as spaces.
    field(&mut header, 148, b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        c.registry.rules.insert(
            0,
            RegistryRule {
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
