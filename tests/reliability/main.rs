//! Process-level reliability tests: the real `tokend` binary, killed,
//! terminated, cut off from its database, starved of disk, and watched for
//! leaked secrets. On SQLite, and on PostgreSQL when
//! `TOKEND_TEST_DATABASE_URL` is set (each test gets its own database).
//!
//! These tests start processes and load them, so they run one at a time
//! (see `common::process::exclusive`) to keep each other's timeouts honest.

mod crash;
mod disk;
mod faults;
mod observability;
mod prometheus;
mod proxy;
mod replicas;
mod secrets;
mod shutdown;
