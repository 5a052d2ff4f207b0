//! tokend's integration tests: real HTTP against a real server, on SQLite,
//! and on PostgreSQL when `TOKEND_TEST_DATABASE_URL` is set.

mod helpers;

mod cli_keys;
mod container;
mod errors;
mod keys;
mod openapi;
mod startup;
mod token;
