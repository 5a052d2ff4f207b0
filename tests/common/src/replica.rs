//! A second tokend on a `TestApp`'s database: a replica, as a deployment
//! runs several on one PostgreSQL.

use reqwest::{Client, Response};
use serde_json::{Value, json};
use tokend::{Application, Config, Extras};
use tokio::sync::oneshot;

pub struct Replica {
    pub address: String,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Replica {
    pub(crate) async fn start(config: Config) -> Replica {
        let app = Application::build_with(config, Extras::default())
            .await
            .expect("build a replica");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Replica {
            address,
            client: Client::new(),
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
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

    pub async fn refresh(&self, refresh: &str) -> Response {
        self.post_json("/api/v1/token/refresh", json!({"refresh": refresh}))
            .await
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
