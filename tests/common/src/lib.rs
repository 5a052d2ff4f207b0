//! What tokend's test binaries share.
//!
//! - [`TestApp`]: tokend in the test's own process, on a fresh database, with
//!   one method per endpoint and named look-ups into its database;
//! - [`TestDatabase`]: a fresh database for one test, SQLite in a temporary
//!   folder or, when `TOKEND_TEST_DATABASE_URL` names a PostgreSQL server, a
//!   new database on it, dropped at the end;
//! - [`process`]: the `tokend` binary as a child process (`serve` and the
//!   one-shot commands);
//! - [`Sandbox`]: a working folder to run CLI commands in, with a clean
//!   environment;
//! - [`jwt`]: a token's header and claims, read without checking anything.

mod app;
mod database;
mod inspect;
pub mod jwt;
pub mod process;
mod replica;
mod sandbox;

use std::path::PathBuf;

use reqwest::{Response, StatusCode};
use serde_json::Value;

pub use app::TestApp;
pub use database::{PgDatabase, TestDatabase, on_postgres, pg_url_with_database};
pub use jwt::{claims, header, jti};
pub use replica::Replica;
pub use sandbox::Sandbox;

/// The password of the bootstrap administrator of every test instance.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The `tokend` binary cargo built for this test run. `CARGO_BIN_EXE_tokend`
/// exists only while compiling tokend's own test targets, not this crate, so
/// the binary is found where cargo puts both: a test runs from
/// `target/<profile>/deps/`, the binary is `target/<profile>/tokend`.
pub fn tokend_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join(format!("tokend{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} does not exist: run the tests with cargo test, which builds it",
        binary.display()
    );
    binary
}

/// Status and `code` of an error answer, checked for the `{"detail","code"}` shape.
pub async fn error_code(resp: Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error body is JSON");
    assert!(body["detail"].is_string(), "error without detail: {body}");
    (status, body["code"].as_str().expect("code").to_owned())
}
