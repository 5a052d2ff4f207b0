//! Debian's `docker-registry` as a child process, and skopeo driving it.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    time::Duration,
};

use common::TestApp;

use crate::SERVICE;

/// A running `docker-registry serve`, killed when dropped.
pub struct Registry {
    child: Child,
    host: String,
    log: PathBuf,
}

impl Registry {
    /// Starts a registry whose token realm is `tokend`, storing blobs in
    /// `storage`, and waits until it answers.
    pub async fn start(dir: &Path, tokend: &TestApp, cert: &Path, storage: &Path) -> Registry {
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

    pub fn image(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host)
    }

    pub fn log(&self) -> String {
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
pub async fn skopeo(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("skopeo")
            .args(&args)
            .output()
            .expect("run skopeo")
    })
    .await
    .expect("skopeo task")
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn assert_success(out: &Output, what: &str, registry: &Registry) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\nregistry log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        registry.log()
    );
}

pub fn assert_refused(out: &Output, what: &str) {
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
pub async fn push(image: &Path, registry: &Registry, repo: &str, creds: &str) -> Output {
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
