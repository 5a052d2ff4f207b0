//! tokend: an access/refresh token service with a token registry.
//!
//! [`Application::build`] makes the whole service from a [`Config`]; the
//! binary, the tests and the benchmarks all start it that way.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod container;
pub mod db;
pub mod error;
pub mod jwt;
pub mod registry;
pub mod users;

use std::{future::Future, sync::Arc};

use anyhow::Context;
use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

pub use config::Config;
use registry::pipeline::{Pipeline, RegistrationStep};

/// Everything a request handler needs, shared by all of them.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: db::Db,
    pub registry: registry::Registry,
    /// The container registry token server behind `/token`.
    pub container: container::TokenServer,
    pub users: users::Users,
    pub validators: auth::ValidatorChain,
}

impl AppState {
    /// Connects to the database, applies migrations, loads the keys and
    /// creates the first administrator when there are no users. Returns the
    /// generated admin password, if one was generated.
    pub async fn prepare(
        config: Config,
        extra_steps: &[Arc<dyn RegistrationStep>],
    ) -> anyhow::Result<(Self, Option<config::Secret>)> {
        let keys = Arc::new(jwt::KeyRing::from_config(&config)?);
        let pipeline = Pipeline::build(&config.registration_pipeline, extra_steps)
            .map_err(|e| anyhow::anyhow!("registration_pipeline: {e}"))?;
        let db = db::Db::connect(&config).await?;
        db.migrate().await?;
        let users = users::Users::new(db.clone()).await?;
        let generated = users
            .bootstrap_admin(config.admin_password.as_ref())
            .await
            .context("create the first administrator")?;
        let registry = registry::Registry::new(
            db.clone(),
            keys,
            registry::TokenSettings::from_config(&config),
            pipeline,
        );
        let container = container::TokenServer::new(&config, registry.clone())?;
        let validators = auth::ValidatorChain::new(vec![Arc::new(auth::JwtValidator {
            registry: registry.clone(),
        })]);
        let state = AppState {
            config: Arc::new(config),
            db,
            registry,
            container,
            users,
            validators,
        };
        Ok((state, generated))
    }
}

/// The running service: bound to its port, ready to serve.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    state: AppState,
}

impl Application {
    /// Builds the service with the built-in registration steps.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, &[]).await
    }

    /// Builds the service with extra registration steps a library user wrote.
    pub async fn build_with(
        config: Config,
        extra_steps: &[Arc<dyn RegistrationStep>],
    ) -> anyhow::Result<Self> {
        let bind = config.bind.clone();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
        let (state, generated) = AppState::prepare(config, extra_steps).await?;
        if let Some(password) = generated {
            // Shown once, on purpose, outside the logs.
            eprintln!("admin password: {}", password.expose());
        }
        let acceptor = TcpListener::bind(bind.clone())
            .into_acceptor()
            .await
            .with_context(|| format!("bind: cannot listen on {bind}"))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .context("bind: no local address")?;
        Ok(Application {
            acceptor,
            port,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let grace = self.state.config.shutdown_grace.0;
        let db = self.state.db.clone();
        let app = api::app(self.state);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, signal, Some(grace))
            .await;
        db.close().await;
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
