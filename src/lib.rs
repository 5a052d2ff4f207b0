//! tokend: an access/refresh token service with a token registry.
//!
//! [`Application::build`] makes the whole service from a [`Config`]; the
//! binary, the tests and the benchmarks all start it that way.
//!
//! The modules are floors, each importing only from floors below it
//! (`cargo test --lib floors` checks it):
//!
//! 1. leaves — [`telemetry`], [`config`], [`secret`], [`error`], [`clock`];
//! 2. connections and migrations — [`db`];
//! 3. the tables' reads and writes — [`store`];
//! 4. services — [`passwords`], [`jwt`], [`health`], [`throttle`],
//!    [`api_tokens`], [`clients`], [`registry`], [`users`], [`container`],
//!    [`auth`], [`oauth`];
//! 5. every service, built from the settings — [`state`];
//! 6. HTTP — [`api`];
//! 7. the application and its scheduler — [`startup`];
//! 8. the command line — [`cli`].

pub mod clock;
pub mod config;
pub mod error;
pub mod secret;
pub mod telemetry;

pub mod db;

pub mod store;

pub mod api_tokens;
pub mod auth;
pub mod clients;
pub mod container;
pub mod health;
pub mod jwt;
pub mod oauth;
pub mod passwords;
pub mod registry;
pub mod throttle;
pub mod users;

pub mod state;

pub mod api;

pub mod startup;

pub mod cli;

pub use config::Config;
pub use startup::Application;
pub use state::{AppState, Extras};

#[cfg(test)]
mod floors;
