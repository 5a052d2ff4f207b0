//! tokend's integration tests: real HTTP against a real server, on SQLite,
//! and on PostgreSQL when `TOKEND_TEST_DATABASE_URL` is set.

mod helpers;

mod errors;
mod fuzz;
mod hostile;
mod openapi;
mod races;
mod startup;
mod token;
