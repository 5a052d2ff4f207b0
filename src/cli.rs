//! The command line: a thin layer over the library.

use std::{io::BufRead, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    AppState, Application, Config,
    config::Secret,
    users::{NewUser, random_password},
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
    /// Benchmark tool: bulk-insert registry rows for a user (no HTTP).
    #[command(hide = true)]
    BenchFill {
        /// The user the rows belong to.
        #[arg(long)]
        user: String,
        /// How many rows (refresh/access pairs).
        #[arg(long)]
        rows: u64,
        /// Share of the rows that are dead (expired naturally or by force).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
        expired_percent: u8,
    },
    /// Benchmark tool: password verifications per second on this machine.
    #[command(hide = true)]
    BenchArgon2 {
        /// How long to measure, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Threads hashing at once (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
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

/// Algorithms `tokend keys generate` makes keys for.
#[derive(Clone, Copy, ValueEnum)]
enum KeyAlg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "ES384")]
    Es384,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl KeyAlg {
    fn algorithm(self) -> crate::jwt::Algorithm {
        use crate::jwt::Algorithm;
        match self {
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::Es384 => Algorithm::ES384,
            KeyAlg::Rs256 => Algorithm::RS256,
            KeyAlg::EdDsa => Algorithm::EdDSA,
        }
    }
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
    Delete { name: String },
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
    Deactivate { name: String },
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
    init_tracing();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tokend: {e}");
            return ExitCode::from(2);
        }
    };
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

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            tracing::info!(port = app.port(), "tokend listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let db = crate::db::Db::connect(&config).await?;
            db.migrate().await?;
            eprintln!("migrations applied");
        }
        Command::User { command } => user(command, config).await?,
        Command::Tokens {
            command: TokensCommand::ExpireUser { name },
        } => {
            let (state, _) = AppState::prepare(config, &[]).await?;
            let expired = state.accounts.expire_all(&name).await?;
            eprintln!("expired {expired} tokens of {name}");
        }
        Command::Archive {
            expired_before,
            older_than,
        } => {
            let now = chrono::Utc::now();
            let cutoff = match (expired_before, older_than) {
                (Some(t), _) => t,
                (None, Some(age)) => now - chrono::Duration::from_std(age)?,
                (None, None) => now,
            };
            let (state, _) = AppState::prepare(config, &[]).await?;
            let archived = state.registry.archive(cutoff).await?;
            state.users.throttle().purge().await?;
            println!("archived {archived} tokens");
        }
        Command::Keys {
            command: KeysCommand::List,
        } => list_keys(&config)?,
        Command::Openapi
        | Command::Keys {
            command: KeysCommand::Generate { .. },
        } => unreachable!("handled before the settings are read"),
        Command::BenchFill {
            user,
            rows,
            expired_percent,
        } => {
            let (state, _) = AppState::prepare(config, &[]).await?;
            let user = state
                .users
                .find(&user)
                .await?
                .with_context(|| format!("no user {user}"))?;
            let started = std::time::Instant::now();
            let written = crate::bench::fill(&state.db, user.id, rows, expired_percent).await?;
            eprintln!(
                "inserted {written} registry rows in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::BenchArgon2 { seconds, threads } => {
            let threads = threads.unwrap_or_else(crate::passwords::default_threads);
            let rate = crate::bench::password_verify_rate(
                threads,
                std::time::Duration::from_secs(seconds),
            )?;
            println!("{rate:.1} verifications/s on {threads} threads");
        }
    }
    Ok(())
}

async fn user(command: UserCommand, config: Config) -> anyhow::Result<()> {
    let (state, generated) = AppState::prepare(config, &[]).await?;
    if let Some(password) = generated {
        eprintln!("admin password: {}", password.expose());
    }
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
        UserCommand::Delete { name } => {
            state.accounts.delete(&name).await?;
            eprintln!("user {name} deleted");
        }
        UserCommand::Passwd { name, .. } => {
            let password = read_password_line()?;
            state.accounts.change_password(&name, password).await?;
            eprintln!("password of {name} changed; their tokens are expired");
        }
        UserCommand::Activate { name } => {
            state.users.update(&name, Some(true), None).await?;
            eprintln!("user {name} activated");
        }
        UserCommand::Deactivate { name } => {
            state.users.update(&name, Some(false), None).await?;
            eprintln!("user {name} deactivated");
        }
    }
    Ok(())
}

/// `tokend keys generate`: a new key file, and maybe its certificate.
fn generate_key(
    alg: KeyAlg,
    out: &std::path::Path,
    cert: Option<&std::path::Path>,
    days: u32,
    bits: u32,
) -> anyhow::Result<()> {
    use crate::jwt::{PrivateKey, alg_name, cert::self_signed_pem, write_private};
    if out.exists() {
        anyhow::bail!(
            "--out: {} exists; tokend does not replace keys",
            out.display()
        );
    }
    if let Some(cert) = cert.filter(|c| c.exists()) {
        anyhow::bail!("--cert: {} exists", cert.display());
    }
    let alg = alg.algorithm();
    let key = PrivateKey::generate(alg, bits as usize)?;
    let cert_pem = cert
        .map(|_| self_signed_pem(&key, days))
        .transpose()
        .context("--cert")?;
    write_private(out, key.to_pkcs8_pem()?.expose().as_bytes()).context("--out")?;
    let kid = key.kid()?;
    eprintln!("wrote {} key {kid} to {}", alg_name(alg), out.display());
    if let (Some(path), Some(pem)) = (cert, cert_pem) {
        write_new(path, pem.as_bytes()).context("--cert")?;
        eprintln!("wrote its self-signed certificate to {}", path.display());
    }
    println!("{kid}");
    Ok(())
}

/// Writes a new (not yet existing) file.
fn write_new(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `tokend keys list`: one line per key of the configured ring, in ring
/// order: kid, algorithm, `signing` or `verify-only`.
fn list_keys(config: &Config) -> anyhow::Result<()> {
    use crate::jwt::{Generate, KeyRing, alg_name};
    let ring = KeyRing::load(config, Generate::Never)?;
    let signer = &ring.signing_key().kid;
    for key in ring.keys() {
        let role = if &key.kid == signer {
            "signing"
        } else {
            "verify-only"
        };
        println!("{}\t{}\t{role}", key.kid, alg_name(key.alg));
    }
    Ok(())
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
