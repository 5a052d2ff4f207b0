//! tokend's schema, one migration per file.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_users;
mod m20261123_000002_create_devices;
mod m20261123_000003_create_tokens;
mod m20261123_000004_create_login_failures;
mod m20261123_000005_create_api_tokens;
mod m20261202_000006_devices_per_user;
mod m20261202_000007_login_attempts_pending;
mod m20261202_000008_username_keys;
mod m20261202_000009_oauth_clients;
mod m20261204_000010_tokens_expired_at_partial;
mod m20261204_000011_login_admit_function;
mod m20261204_000012_login_attempts_function;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_users::Migration),
            Box::new(m20261123_000002_create_devices::Migration),
            Box::new(m20261123_000003_create_tokens::Migration),
            Box::new(m20261123_000004_create_login_failures::Migration),
            Box::new(m20261123_000005_create_api_tokens::Migration),
            Box::new(m20261202_000006_devices_per_user::Migration),
            Box::new(m20261202_000007_login_attempts_pending::Migration),
            Box::new(m20261202_000008_username_keys::Migration),
            Box::new(m20261202_000009_oauth_clients::Migration),
            Box::new(m20261204_000010_tokens_expired_at_partial::Migration),
            Box::new(m20261204_000011_login_admit_function::Migration),
            Box::new(m20261204_000012_login_attempts_function::Migration),
        ]
    }
}
