//! The `tokend` binary as a child process, on a fresh database.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database as SeaDatabase, DatabaseConnection};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "admin-password-for-reliability";

/// Process-level tests run one at a time: each loads the two cores enough to
/// distort another's timeouts.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Whether this run of the suite is on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("TOKEND_TEST_DATABASE_URL").is_ok()
}

/// A fresh database for one test: a SQLite file in a temporary folder, or a
/// new PostgreSQL database when the suite runs on PostgreSQL.
pub struct Database {
    /// The URL tokend is given.
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

/// A PostgreSQL database made for one test, dropped with it.
pub struct PgDatabase {
    pub server_url: String,
    pub name: String,
}

impl Database {
    pub async fn fresh() -> Database {
        Self::fresh_in(None).await
    }

    /// A fresh database whose SQLite data folder is inside `parent`.
    pub async fn fresh_in(parent: Option<&Path>) -> Database {
        let data_dir = match parent {
            Some(p) => tempfile::tempdir_in(p),
            None => tempfile::tempdir(),
        }
        .expect("temp dir");
        match std::env::var("TOKEND_TEST_DATABASE_URL") {
            Ok(server_url) => {
                let name = format!("tokend_rel_{}", uuid::Uuid::new_v4().simple());
                let admin = SeaDatabase::connect(&server_url)
                    .await
                    .expect("connect to TOKEND_TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let url = pg_url_with_database(&server_url, &name);
                Database {
                    url,
                    data_dir,
                    pg: Some(PgDatabase { server_url, name }),
                }
            }
            Err(_) => Database {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.path().join("tokend.db").display()
                ),
                data_dir,
                pg: None,
            },
        }
    }

    pub fn pg(&self) -> Option<&PgDatabase> {
        self.pg.as_ref()
    }

    /// A direct connection, to inspect the registry behind tokend's back.
    pub async fn connect(&self) -> DatabaseConnection {
        SeaDatabase::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// The environment that points tokend at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TOKEND_DATABASE_URL".into(), self.url.clone()),
            (
                "TOKEND_DATA_DIR".into(),
                self.data_dir.path().display().to_string(),
            ),
        ]
    }
}

/// `base` with its database name replaced by `name`.
pub fn pg_url_with_database(base: &str, name: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (base, String::new()),
    };
    let (prefix, _) = without_query
        .rsplit_once('/')
        .expect("database URL with a path");
    format!("{prefix}/{name}{query}")
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some(PgDatabase { server_url, name }) = self.pg.take() else {
            return;
        };
        // Drop cannot await: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(db) = SeaDatabase::connect(&server_url).await {
                    let _ = db
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = db.close().await;
                }
            });
        })
        .join();
    }
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
    pub fn new(db: &Database) -> Launch {
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokend"));
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
        if !self.env.iter().any(|(k, _)| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
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
                && let Some(p) = text
                    .split("port=")
                    .nth(1)
                    .and_then(|rest| rest.trim().split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|digits| digits.parse().ok())
                && let Some(tx) = port.take()
            {
                let _ = tx.send(p);
            }
            output.lock().expect("output lock").push_str(&text);
        }
    });
}

impl Server {
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

/// The claims of a JWT, unverified.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// The registry id (jti) of a JWT.
pub fn jti(token: &str) -> uuid::Uuid {
    claims(token)["jti"]
        .as_str()
        .and_then(|j| j.parse().ok())
        .expect("jti")
}

/// Status and `code` of an error answer, checked for the `{"detail","code"}` shape.
pub async fn error_code(resp: Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error body is JSON");
    assert!(body["detail"].is_string(), "error without detail: {body}");
    (status, body["code"].as_str().expect("code").to_owned())
}
