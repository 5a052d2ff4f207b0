//! tokend running in the test's process, on a fresh database, with one
//! method per endpoint (zero-to-production's `TestApp`).

use std::{path::Path, sync::Arc};

use reqwest::{Client, Response, StatusCode};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokend::{
    AppState, Application, Config, Extras, db::Db, registry::pipeline::RegistrationStep,
    secret::Secret,
};
use tokio::sync::{OnceCell, oneshot};

use crate::{ADMIN_PASSWORD, TestDatabase};

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:port` of `/metrics` when `metrics_bind` gives it
    /// a listener of its own.
    pub metrics_address: Option<String>,
    pub client: Client,
    pub state: AppState,
    /// Declared first, so dropped first: stops the server before its
    /// database goes.
    server: Running,
    /// The test's own connection to the database, opened when first needed.
    pub(crate) inspection: OnceCell<DatabaseConnection>,
    /// The server's connections, kept to close them under its feet.
    server_db: Db,
    /// The settings it runs with, for a restart.
    config: Config,
    database: TestDatabase,
}

/// The server task, told to stop when dropped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the server and waits until it has let go of the database.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
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
        steps: &[Arc<dyn RegistrationStep>],
    ) -> TestApp {
        let extras = Extras {
            steps: steps.to_vec(),
            ..Extras::default()
        };
        Self::spawn_with_extras(configure, extras).await
    }

    /// tokend on a clock the test moves by hand.
    pub async fn spawn_with_clock(
        configure: impl FnOnce(&mut Config),
        clock: Arc<tokend::clock::ManualClock>,
    ) -> TestApp {
        let extras = Extras {
            clock,
            ..Extras::default()
        };
        Self::spawn_with_extras(configure, extras).await
    }

    /// tokend with what a library user adds (steps, a clock).
    pub async fn spawn_with_extras(configure: impl FnOnce(&mut Config), extras: Extras) -> TestApp {
        let database = TestDatabase::fresh().await;
        let mut config = Config {
            bind: "127.0.0.1:0".into(),
            data_dir: database.data_dir.path().to_owned(),
            admin_password: Some(Secret::new(ADMIN_PASSWORD)),
            database_url: database.postgres_url().map(Secret::new),
            ..Config::default()
        };
        configure(&mut config);
        Self::start(config, database, extras).await
    }

    async fn start(config: Config, database: TestDatabase, extras: Extras) -> TestApp {
        let app = Application::build_with(config.clone(), extras)
            .await
            .expect("build tokend");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let state = app.state().clone();
        let server_db = app.db().clone();
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
            metrics_address,
            client: Client::new(),
            state,
            server: Running {
                stop: Some(stop),
                task: Some(task),
            },
            inspection: OnceCell::new(),
            server_db,
            config,
            database,
        }
    }

    /// Stops the server and waits until it has let go of the database.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// Stops the server and starts a new one on the same database and data
    /// folder, with the settings changed by `configure` (a restart, e.g.
    /// with another key ring).
    pub async fn restart_with(self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let TestApp {
            server,
            mut config,
            database,
            ..
        } = self;
        server.stop().await;
        configure(&mut config);
        Self::start(config, database, Extras::default()).await
    }

    /// A second tokend on the same database and data folder, as a replica
    /// of a deployment is (meant for PostgreSQL).
    pub async fn replica(&self) -> crate::Replica {
        crate::Replica::start(self.config.clone()).await
    }

    /// Closes the server's database connections: from now on every request
    /// that needs the database finds it gone.
    pub async fn close_database(&self) {
        self.server_db.clone().close().await;
    }

    /// The folder tokend keeps its files in (its key, its SQLite database).
    pub fn data_dir(&self) -> &Path {
        self.database.data_dir.path()
    }

    /// The settings it runs with.
    pub fn config(&self) -> &Config {
        &self.config
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
