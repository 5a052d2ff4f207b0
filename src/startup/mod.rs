//! Start-up: the data folder, the database and its migrations, the state,
//! the first administrator, the listening socket; then serving until a
//! signal, with the archive scheduler beside it.

mod connection;
mod scheduler;
mod signals;

use std::future::Future;

use anyhow::Context;
use connection::JsonErrorsAcceptor;
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

use crate::{
    api,
    config::Config,
    db::Db,
    secret::Secret,
    state::{self, AppState, Extras, Prebuilt},
    telemetry::AUDIT,
};

/// A prepared instance: its state, its database, and the administrator
/// password generated on a first start (to be shown once).
pub struct Prepared {
    pub state: AppState,
    pub db: Db,
    pub generated_password: Option<Secret>,
}

/// Creates the data folder, connects to the database, applies the
/// migrations, builds every service and creates the first administrator
/// when there are no users.
pub async fn prepare(config: &Config, extras: &Extras) -> anyhow::Result<Prepared> {
    create_private_dir(&config.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
    // Every setting is checked before anything connects.
    let prebuilt = Prebuilt::from_settings(config, extras)?;
    let db = Db::connect(&state::db_settings(config)).await?;
    // Replicas started together take turns: the first migrates and creates
    // the administrator, the others then find both done.
    let lock = db.startup_lock().await?;
    db.migrate().await?;
    let state = AppState::build(config, &db, extras, prebuilt).await?;
    let generated_password = state
        .bootstrap(config)
        .await
        .context("create the first administrator")?;
    lock.release().await?;
    Ok(Prepared {
        state,
        db,
        generated_password,
    })
}

/// The running service: bound to its port, ready to serve.
pub struct Application {
    acceptor: JsonErrorsAcceptor,
    port: u16,
    /// `/metrics` on its own address (`metrics_bind`), and its port.
    metrics: Option<(TcpAcceptor, u16)>,
    state: AppState,
    db: Db,
    archive_interval: Option<std::time::Duration>,
    shutdown_grace: std::time::Duration,
}

impl Application {
    /// Builds the service with the built-in registration steps.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Extras::default()).await
    }

    /// Builds the service with what a library user adds (steps, a clock).
    pub async fn build_with(config: Config, extras: Extras) -> anyhow::Result<Self> {
        let Prepared {
            state,
            db,
            generated_password,
        } = prepare(&config, &extras).await?;
        if let Some(password) = generated_password {
            // Shown once, on purpose, outside the logs.
            eprintln!("admin password: {}", password.expose());
        }
        let bind = config.bind.clone();
        let acceptor = TcpListener::bind(bind.clone())
            .into_acceptor()
            .await
            .with_context(|| format!("bind: cannot listen on {bind}"))?;
        let port = port_of(&acceptor).context("bind: no local address")?;
        let metrics = match (&state.metrics, &config.metrics_bind) {
            (Some(_), Some(bind)) => {
                let acceptor = TcpListener::bind(bind.clone())
                    .into_acceptor()
                    .await
                    .with_context(|| format!("metrics_bind: cannot listen on {bind}"))?;
                let port = port_of(&acceptor).context("metrics_bind: no local address")?;
                Some((acceptor, port))
            }
            _ => None,
        };
        for key in state.keys.keys() {
            tracing::info!(
                target: AUDIT,
                event = "signing_key_loaded",
                kid = %key.kid,
                alg = ?key.alg,
                signs = std::ptr::eq(key, state.keys.signing_key()),
                "signing key loaded"
            );
        }
        Ok(Application {
            acceptor: JsonErrorsAcceptor(acceptor),
            port,
            metrics,
            state,
            db,
            archive_interval: config.archive_interval.map(|d| d.0),
            shutdown_grace: config.shutdown_grace.0,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when it has its own (`metrics_bind`).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The database connections. Tests close them to play a database that
    /// went away; nothing else should need them.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(signals::shutdown()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let mut beside = Vec::new();
        if let Some(every) = self.archive_interval {
            beside.push(tokio::spawn(scheduler::archive_every(
                self.state.clone(),
                every,
            )));
        }
        if let Some(metrics) = self.state.metrics.clone() {
            beside.push(tokio::spawn(scheduler::metrics_upkeep(metrics)));
        }
        if let Some((acceptor, _)) = self.metrics {
            let app = api::metrics::app(self.state.clone());
            beside.push(tokio::spawn(async move {
                if let Err(e) = Server::new_with_acceptor(acceptor).run(app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            }));
        }
        let app = api::app(self.state);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, signal, Some(self.shutdown_grace))
            .await;
        for task in beside {
            task.abort();
        }
        self.db.close().await;
        result
    }
}

fn port_of(acceptor: &impl Acceptor) -> Option<u16> {
    acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
}

/// Creates a folder (and its parents) only its owner can enter: it holds
/// the signing key and the SQLite database. An existing one is left as it is.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}
