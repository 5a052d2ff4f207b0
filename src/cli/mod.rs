//! The command line: a thin layer over the library.

use std::{io::BufRead, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod client;
mod keys;

use client::ClientCommand;

use keys::{KeyAlg, generate_key, list_keys};

use crate::{
    Application, Config,
    config::{ConfigError, LogFormat},
    passwords::random_password,
    secret::Secret,
    startup::{self, Prepared},
    state::{self, AppState, Extras},
    users::{LastAdmin, NewUser},
};

#[derive(Parser)]
#[command(
    name = "tokend",
    version,
    about = "Access/refresh token service with a token registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Operations on tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Manage registered OAuth clients (resource servers).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Remove dead tokens from the registry.
    Archive {
        /// Archive tokens that died before this instant (RFC 3339).
        #[arg(long, conflicts_with = "older_than")]
        expired_before: Option<chrono::DateTime<chrono::Utc>>,
        /// Archive tokens that died longer ago than this (e.g. 30d).
        #[arg(long, value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
    },
    /// Generate signing keys and list the configured ones.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the OpenAPI spec (JSON) on stdout.
    Openapi,
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Expire every token of a user.
    ExpireUser { name: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new private key (PKCS#8 PEM, mode 0600) and print its kid.
    Generate {
        /// Algorithm the key signs with.
        #[arg(long, value_enum, ignore_case = true, default_value = "ES256")]
        alg: KeyAlg,
        /// Where to write the private key; an existing file is not replaced.
        #[arg(long)]
        out: PathBuf,
        /// Also write a self-signed X.509 certificate for the key here
        /// (a container registry's `rootcertbundle`).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
        /// RSA modulus size (RS256 only).
        #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(2048..=8192))]
        bits: u32,
    },
    /// Print the configured keys: kid, algorithm, and whether it signs.
    List,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints a random password unless --password-stdin.
    Add {
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Delete a user and every token of theirs.
    Delete {
        name: String,
        /// Delete even the last active administrator.
        #[arg(long)]
        force: bool,
    },
    /// Set a user's password (and expire every token of theirs).
    Passwd {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Let a user obtain tokens again; their unexpired tokens work again.
    Activate { name: String },
    /// Stop a user: no obtain, every token of theirs refused.
    Deactivate {
        name: String,
        /// Deactivate even the last active administrator.
        #[arg(long)]
        force: bool,
    },
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|_| format!("`{text}` is not a duration like 30d"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that need no settings run before they are read.
    match cli.command {
        Some(Command::Openapi) => {
            println!("{}", crate::api::spec_json());
            return ExitCode::SUCCESS;
        }
        Some(Command::Keys {
            command:
                KeysCommand::Generate {
                    alg,
                    out,
                    cert,
                    days,
                    bits,
                },
        }) => {
            return match generate_key(alg, &out, cert.as_deref(), days, bits) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tokend: {}", one_line(&e));
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tokend: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokend: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        // A setting a service refused when it was built.
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("tokend: {}", one_line(&e));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("tokend: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line.
fn one_line(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

/// Logs go to stderr, filtered by `TOKEND_LOG` (`info` unless told, e.g.
/// `TOKEND_LOG=debug` or `TOKEND_LOG=tokend=trace,sqlx=warn`), as text or,
/// with `log_format = "json"`, one JSON object per line.
fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TOKEND_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            tracing::info!(port = app.port(), "tokend listening");
            if let Some(port) = app.metrics_port() {
                tracing::info!(port, "metrics listening");
            }
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let db = crate::db::Db::connect(&state::db_settings(&config)).await?;
            let lock = db.startup_lock().await?;
            db.migrate().await?;
            lock.release().await?;
            eprintln!("migrations applied");
        }
        Command::User { command } => user(command, config).await?,
        Command::Tokens {
            command: TokensCommand::ExpireUser { name },
        } => {
            let state = prepare(&config).await?;
            let expired = state.users.expire_all(&name).await?;
            eprintln!("expired {expired} tokens of {name}");
        }
        Command::Client { command } => {
            let state = prepare(&config).await?;
            client::client(command, &state).await?;
        }
        Command::Archive {
            expired_before,
            older_than,
        } => {
            let state = prepare(&config).await?;
            let cutoff = match (expired_before, older_than) {
                (Some(t), _) => Some(t),
                (None, Some(age)) => Some(state.clock.now() - chrono::Duration::from_std(age)?),
                (None, None) => None,
            };
            let archived = state.archive(cutoff).await?;
            println!("archived {archived} tokens");
        }
        Command::Keys {
            command: KeysCommand::List,
        } => list_keys(&config)?,
        Command::Openapi
        | Command::Keys {
            command: KeysCommand::Generate { .. },
        } => unreachable!("handled before the settings are read"),
    }
    Ok(())
}

/// The state for a command, the first administrator created if needed (and
/// their generated password shown once).
async fn prepare(config: &Config) -> anyhow::Result<AppState> {
    let Prepared {
        state,
        generated_password,
        ..
    } = startup::prepare(config, &Extras::default()).await?;
    if let Some(password) = generated_password {
        eprintln!("admin password: {}", password.expose());
    }
    Ok(state)
}

async fn user(command: UserCommand, config: Config) -> anyhow::Result<()> {
    let state = prepare(&config).await?;
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            let password = if password_stdin {
                read_password_line()?
            } else {
                random_password()
            };
            state
                .users
                .create(NewUser {
                    username: name.clone(),
                    password: password.clone(),
                    is_admin: admin,
                    is_active: true,
                })
                .await?;
            if !password_stdin {
                eprintln!("password: {}", password.expose());
            }
            eprintln!("user {name} created");
        }
        UserCommand::List => {
            for u in state.users.list().await? {
                println!(
                    "{}\t{}\t{}",
                    u.username,
                    if u.is_admin { "admin" } else { "user" },
                    if u.is_active { "active" } else { "inactive" }
                );
            }
        }
        UserCommand::Delete { name, force } => {
            state.users.delete(&name, last_admin(force)).await?;
            eprintln!("user {name} deleted");
        }
        UserCommand::Passwd { name, .. } => {
            let password = read_password_line()?;
            state.users.set_password(&name, password).await?;
            eprintln!("password of {name} changed; their tokens are expired");
        }
        UserCommand::Activate { name } => {
            state
                .users
                .update(&name, Some(true), None, LastAdmin::Keep)
                .await?;
            eprintln!("user {name} activated");
        }
        UserCommand::Deactivate { name, force } => {
            state
                .users
                .update(&name, Some(false), None, last_admin(force))
                .await?;
            eprintln!("user {name} deactivated");
        }
    }
    Ok(())
}

/// `--force` lets a command take away the last active administrator.
fn last_admin(force: bool) -> LastAdmin {
    if force {
        LastAdmin::MayGo
    } else {
        LastAdmin::Keep
    }
}

/// The first line of standard input, without its line ending.
fn read_password_line() -> anyhow::Result<Secret> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("--password-stdin: the first line of standard input is empty");
    }
    Ok(Secret::new(password))
}
