//! `tokend-bench`: what the load benchmark (`bench/run.sh`,
//! `bench/archive.sh`) needs besides a running tokend.
//!
//! ```text
//! tokend-bench fill --user NAME --rows N [--expired-percent P]
//! tokend-bench argon2 [--seconds S] [--threads T]
//! ```
//!
//! `fill` reads tokend's own settings (`tokend.toml`, `TOKEND_*`) to find
//! the database.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokend::{Config, db::Db, state::db_settings, store::UserStore};

#[derive(Parser)]
#[command(name = "tokend-bench", about = "Benchmark support for tokend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bulk-insert registry rows for a user (no HTTP, no signing).
    Fill {
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
    /// Password verifications per second on this machine.
    Argon2 {
        /// How long to measure, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Threads hashing at once (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fill {
            user,
            rows,
            expired_percent,
        } => {
            let config = Config::load()?;
            let db = Db::connect(&db_settings(&config)).await?;
            let user = UserStore::new(db.clone())
                .find_by_name(&user)
                .await?
                .with_context(|| format!("no user {user}"))?;
            let started = Instant::now();
            let written = tokend_bench::fill(&db, user.id, rows, expired_percent).await?;
            eprintln!(
                "inserted {written} registry rows in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Argon2 { seconds, threads } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let rate = tokend_bench::password_verify_rate(threads, Duration::from_secs(seconds))?;
            println!("{rate:.1} verifications/s on {threads} threads");
        }
    }
    Ok(())
}
