//! tokend's integration tests: real HTTP against a real server, on SQLite,
//! and on PostgreSQL when `TOKEND_TEST_DATABASE_URL` is set.

mod admin;
mod api_tokens;
mod archive;
mod cli;
mod cli_keys;
mod console;
mod container;
mod errors;
mod fuzz;
mod hardening;
mod hostile;
mod keys;
mod login;
mod oauth;
mod observability;
mod openapi;
mod own_password;
mod races;
mod sessions;
mod simplejwt;
mod standards;
mod startup;
mod token;
