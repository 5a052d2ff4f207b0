//! tokend: an access/refresh token service with a token registry.
//!
//! [`Application::build`] makes the whole service from a [`Config`]; the
//! binary, the tests and the benchmarks all start it that way.

pub mod accounts;
pub mod api;
pub mod api_tokens;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod container;
pub mod db;
pub mod error;
pub mod inline_read;
pub mod jwt;
pub mod passwords;
pub mod registry;
pub mod throttle;
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
    pub accounts: accounts::Accounts,
    pub api_tokens: api_tokens::ApiTokens,
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
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
        let keys = Arc::new(jwt::KeyRing::from_config(&config)?);
        let pipeline = Pipeline::build(&config.registration_pipeline, extra_steps)
            .map_err(|e| anyhow::anyhow!("registration_pipeline: {e}"))?;
        let db = db::Db::connect(&config).await?;
        db.migrate().await?;
        let throttle = throttle::Throttle::new(
            db.clone(),
            throttle::Limits {
                per_username: config.login_max_failures,
                per_address: config.login_max_failures_per_address,
                window: config.login_throttle_window.0,
            },
        );
        let passwords = passwords::Passwords::start(passwords::default_threads())?;
        let users = users::Users::new(db.clone(), throttle, passwords).await?;
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
        let api_tokens = api_tokens::ApiTokens::new(db.clone());
        // API tokens first: their shape check is the cheaper one.
        let validators = auth::ValidatorChain::new(vec![
            Arc::new(auth::ApiTokenValidator {
                tokens: api_tokens.clone(),
            }),
            Arc::new(auth::JwtValidator {
                registry: registry.clone(),
            }),
        ]);
        let accounts = accounts::Accounts {
            users: users.clone(),
            registry: registry.clone(),
            api_tokens: api_tokens.clone(),
        };
        let state = AppState {
            config: Arc::new(config),
            db,
            registry,
            container,
            users,
            accounts,
            api_tokens,
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
        let archiver = self
            .state
            .config
            .archive_interval
            .map(|every| tokio::spawn(archive_every(self.state.clone(), every.0)));
        let app = api::app(self.state);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, signal, Some(grace))
            .await;
        if let Some(archiver) = archiver {
            archiver.abort();
        }
        db.close().await;
        result
    }
}

/// The scheduled archive (`archive_interval`): dead tokens and old login
/// failures are removed every period.
async fn archive_every(state: AppState, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match state.registry.archive(chrono::Utc::now()).await {
            Ok(archived) => tracing::info!(archived, "scheduled archive"),
            Err(e) => tracing::warn!(error = %e, "scheduled archive failed"),
        }
        if let Err(e) = state.users.throttle().purge().await {
            tracing::warn!(error = %e, "purging old login failures failed");
        }
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
