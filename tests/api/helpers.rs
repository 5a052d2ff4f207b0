//! A running tokend on a fresh database, with one method per endpoint.
//!
//! The database is SQLite in a temporary folder, or a new PostgreSQL
//! database when `TOKEND_TEST_DATABASE_URL` names a server.

use std::sync::Arc;

use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokend::{AppState, Application, Config, config::Secret};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A JWT's claims, read without checking anything.
pub fn claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// A JWT's header, read without checking anything.
pub fn header(token: &str) -> Value {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, index: usize) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let part = token.split('.').nth(index).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// A JWT's `jti`.
pub fn jti(token: &str) -> uuid::Uuid {
    claims(token)["jti"]
        .as_str()
        .expect("jti")
        .parse()
        .expect("uuid")
}

/// The registry row of a token tokend issued.
pub async fn row(app: &TestApp, token: &str) -> entity::tokens::Model {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entity::tokens::Entity::find()
        .filter(entity::tokens::Column::Jti.eq(jti(token)))
        .one(&app.state.db.read)
        .await
        .expect("registry")
        .expect("token is in the registry")
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub state: AppState,
    pub data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pg_database: Option<(String, String)>,
}

/// A fresh PostgreSQL database for one test, when the suite runs on PostgreSQL:
/// returns (server URL, database name, URL of the new database).
pub async fn fresh_postgres() -> Option<(String, String, String)> {
    let base = std::env::var("TOKEND_TEST_DATABASE_URL").ok()?;
    let name = format!("tokend_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&base)
        .await
        .expect("connect to TOKEND_TEST_DATABASE_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (prefix, _) = base.rsplit_once('/').expect("database URL with a path");
    let (prefix, query) = match base.split_once('?') {
        Some((_, q)) => (prefix.to_owned(), format!("?{q}")),
        None => (prefix.to_owned(), String::new()),
    };
    let url = format!("{prefix}/{name}{query}");
    Some((base, name, url))
}

impl TestApp {
    /// tokend with default settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// tokend with settings changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with_steps(configure, &[]).await
    }

    /// tokend with extra registration steps.
    pub async fn spawn_with_steps(
        configure: impl FnOnce(&mut Config),
        steps: &[Arc<dyn tokend::registry::pipeline::RegistrationStep>],
    ) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let pg = fresh_postgres().await;
        let mut config = Config {
            bind: "127.0.0.1:0".into(),
            data_dir: data_dir.path().to_owned(),
            admin_password: Some(Secret::new(ADMIN_PASSWORD)),
            database_url: pg.as_ref().map(|(_, _, url)| Secret::new(url.clone())),
            ..Config::default()
        };
        configure(&mut config);
        Self::start(
            config,
            data_dir,
            pg.map(|(base, name, _)| (base, name)),
            steps,
        )
        .await
    }

    async fn start(
        config: Config,
        data_dir: tempfile::TempDir,
        pg_database: Option<(String, String)>,
        steps: &[Arc<dyn tokend::registry::pipeline::RegistrationStep>],
    ) -> TestApp {
        let app = Application::build_with(config, steps)
            .await
            .expect("build tokend");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("server run");
        });
        TestApp {
            address,
            client: Client::new(),
            state,
            data_dir,
            stop: Some(stop),
            task: Some(task),
            pg_database,
        }
    }

    /// Stops the server and waits until it has let go of the database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops the server and starts a new one on the same database and data
    /// folder, with the settings changed by `configure` (a restart, e.g.
    /// with another key ring).
    pub async fn restart_with(mut self, configure: impl FnOnce(&mut Config)) -> TestApp {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut config = (*self.state.config).clone();
        configure(&mut config);
        let pg_database = self.pg_database.take();
        let data_dir =
            std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"));
        drop(self);
        Self::start(config, data_dir, pg_database, &[]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates a user directly through the library.
    pub async fn create_user(&self, username: &str, password: &str, is_admin: bool) {
        self.state
            .users
            .create(tokend::users::NewUser {
                username: username.into(),
                password: Secret::new(password),
                is_admin,
                is_active: true,
            })
            .await
            .expect("create user");
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn obtain(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/token/obtain",
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// Obtains a pair and returns (access, refresh); panics unless 200.
    pub async fn pair(&self, username: &str, password: &str) -> (String, String) {
        let resp = self.obtain(username, password).await;
        assert_eq!(resp.status(), StatusCode::OK, "obtain failed");
        let body: Value = resp.json().await.expect("json");
        (
            body["access"].as_str().expect("access").to_owned(),
            body["refresh"].as_str().expect("refresh").to_owned(),
        )
    }

    pub async fn refresh(&self, refresh: &str) -> Response {
        self.post_json("/api/v1/token/refresh", json!({"refresh": refresh}))
            .await
    }

    pub async fn verify(&self, token: &str) -> Response {
        self.post_json("/api/v1/token/verify", json!({"token": token}))
            .await
    }

    pub async fn expire(&self, token: &str, affect_tree: bool) -> Response {
        self.post_json(
            "/api/v1/token/expire",
            json!({"token": token, "affect_tree": affect_tree}),
        )
        .await
    }

    pub async fn get_with(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// An access token of the bootstrap administrator.
    pub async fn admin_token(&self) -> String {
        self.pair("admin", ADMIN_PASSWORD).await.0
    }

    /// Any request with a Bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    /// A GET without credentials that must answer JSON (the spec, the JWKS).
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON answer")
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get_with("/api/v1/me", token).await
    }
}

/// Drops a test database made by [`fresh_postgres`].
pub fn drop_postgres(base: String, name: String) {
    // From a thread of its own: Drop cannot await.
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(db) = Database::connect(&base).await {
                let _ = db
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = db.close().await;
            }
        });
    })
    .join();
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some((base, name)) = self.pg_database.take() {
            drop_postgres(base, name);
        }
    }
}

/// The JSON body of an error answer, checked for its shape.
pub async fn error_code(resp: Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error body is JSON");
    assert!(body["detail"].is_string(), "error without detail: {body}");
    (status, body["code"].as_str().expect("code").to_owned())
}
