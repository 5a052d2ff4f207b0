//! The `tokend` binary as a child process, on a fresh database: `serve`
//! watched through its output and its `/ready`, and the one-shot commands.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::{ADMIN_PASSWORD, TestDatabase, tokend_binary};

/// Process-level tests run one at a time: each loads the two cores enough to
/// distort another's timeouts.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A running `tokend serve`; its HTTP methods are those of [`Api`].
pub struct Server {
    child: Child,
    api: Api,
    /// Everything it wrote on stderr and stdout so far.
    output: Arc<Mutex<String>>,
    exited: Option<ExitStatus>,
}

/// One method per endpoint, for a server at `base`; cheap to clone into tasks.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: Client,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// How a server is started: its environment on top of the defaults.
#[derive(Clone, Default)]
pub struct Launch {
    pub env: Vec<(String, String)>,
}

impl Launch {
    pub fn new(db: &TestDatabase) -> Launch {
        let mut launch = Launch { env: db.env() };
        launch.set("TOKEND_ADMIN_PASSWORD", ADMIN_PASSWORD);
        launch.set(
            "TOKEND_CONFIG",
            db.data_dir.path().join("no-such-tokend.toml").display(),
        );
        launch
    }

    pub fn set(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.to_string()));
        self
    }

    /// The binary with this launch's environment and nothing else of
    /// tokend's: it refuses unknown `TOKEND_*` variables (the test knobs).
    fn command(&self) -> Command {
        let mut cmd = Command::new(tokend_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TOKEND_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("NO_COLOR", "1").env_remove("DATABASE_URL");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the process and waits for its port, not for it to be ready.
    pub async fn spawn(&self, args: &[&str]) -> Server {
        let mut cmd = self.command();
        cmd.args(args)
            .env("TOKEND_BIND", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.env.iter().any(|(k, _)| k == "TOKEND_LOG") {
            cmd.env("TOKEND_LOG", "info");
        }
        let mut child = cmd.spawn().expect("start tokend");
        let output = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().expect("stdout");
        collect(stderr, output.clone(), Some(port_tx));
        collect(stdout, output.clone(), None);
        // 0 when it died first: wait_ready reports that with its output.
        let port: u16 = tokio::time::timeout(Duration::from_secs(60), port_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        Server {
            child,
            api: Api {
                base: format!("http://127.0.0.1:{port}"),
                client: Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client"),
            },
            output,
            exited: None,
        }
    }

    /// Starts the process and waits until `/ready` answers 200.
    pub async fn start(&self) -> Server {
        let mut server = self.spawn(&["serve"]).await;
        server.wait_ready().await;
        server
    }

    /// Runs a one-shot command (`user add …`) with `stdin`; returns its status and output.
    pub fn run(&self, args: &[&str], stdin: &str) -> (ExitStatus, String) {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run tokend");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("tokend output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    }
}

/// Reads a pipe line by line into `output`; reports the port from the
/// "tokend listening" line.
fn collect(
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    mut port: Option<tokio::sync::oneshot::Sender<u16>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            if port.is_some()
                && text.contains("tokend listening")
                && let Some(p) = port_in(&text)
                && let Some(tx) = port.take()
            {
                let _ = tx.send(p);
            }
            output.lock().expect("output lock").push_str(&text);
        }
    });
}

/// The port a log line names: `port=8000` in text, `"port":8000` in JSON.
fn port_in(line: &str) -> Option<u16> {
    let (_, rest) = line
        .split_once("port=")
        .or_else(|| line.split_once("\"port\":"))?;
    rest.trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

impl Server {
    /// The port of the first line logged with `message` (e.g. `metrics
    /// listening`), once the server is ready.
    pub fn logged_port(&self, message: &str) -> Option<u16> {
        self.output()
            .lines()
            .find(|line| line.contains(message))
            .and_then(port_in)
    }

    pub fn api(&self) -> Api {
        self.api.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// Polls `/ready` until 200; fails the test if the process exits or
    /// 60 s pass.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.try_exit() {
                panic!(
                    "tokend exited ({status}) before it was ready:\n{}",
                    self.output()
                );
            }
            if let Ok(resp) = self.client.get(self.url("/ready")).send().await
                && resp.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tokend not ready in 60 s:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Fails the test if the process panicked.
    pub fn assert_no_panic(&self) {
        let output = self.output();
        assert!(!output.contains("panicked"), "tokend panicked:\n{output}");
    }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Result<Response> {
        self.client.post(self.url(path)).json(&body).send().await
    }

    pub async fn obtain(&self, username: &str, password: &str) -> reqwest::Result<Response> {
        self.post_json(
            "/api/v1/token/obtain",
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// (access, refresh) of a successful obtain.
    pub async fn pair(&self, username: &str, password: &str) -> (String, String) {
        let resp = self.obtain(username, password).await.expect("obtain");
        assert_eq!(resp.status(), StatusCode::OK, "obtain failed");
        let body: Value = resp.json().await.expect("json");
        (
            body["access"].as_str().expect("access").to_owned(),
            body["refresh"].as_str().expect("refresh").to_owned(),
        )
    }

    pub async fn refresh(&self, refresh: &str) -> reqwest::Result<Response> {
        self.post_json("/api/v1/token/refresh", json!({"refresh": refresh}))
            .await
    }

    pub async fn verify(&self, token: &str) -> reqwest::Result<Response> {
        self.post_json("/api/v1/token/verify", json!({"token": token}))
            .await
    }

    pub async fn expire(&self, token: &str, affect_tree: bool) -> reqwest::Result<Response> {
        self.post_json(
            "/api/v1/token/expire",
            json!({"token": token, "affect_tree": affect_tree}),
        )
        .await
    }

    pub async fn me(&self, access: &str) -> reqwest::Result<Response> {
        self.client
            .get(self.url("/api/v1/me"))
            .bearer_auth(access)
            .send()
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<Response> {
        self.client.get(self.url(path)).send().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
