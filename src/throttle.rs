//! Login throttling: after too many failed logins for one username, or from
//! one client address, within the window, every login for it is refused with
//! 429 until the window has passed. Failures are rows in the database, so
//! that every replica sees the same count.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::login_failures;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::{
    db::Db,
    error::{Error, Result},
};

/// The limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_username: u64,
    pub per_address: u64,
    pub window: Duration,
}

/// What a username or address is counted under: PostgreSQL text cannot hold
/// a NUL byte, and a client must not turn a login into a 503 with one.
fn key(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

#[derive(Debug, Clone)]
pub struct Throttle {
    db: Db,
    limits: Limits,
}

impl Throttle {
    pub fn new(db: Db, limits: Limits) -> Self {
        Throttle { db, limits }
    }

    fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::from_std(self.limits.window).unwrap_or(chrono::Duration::MAX)
    }

    /// Refuses with `Throttled` when the username or the address has used
    /// up its failures in the window; otherwise returns how many failures the
    /// username has in the window.
    pub async fn check(&self, username: &str, address: &str) -> Result<u64> {
        let (username, address) = (&key(username), &key(address));
        let now = Utc::now();
        let since = self.window_start(now);
        let keys = [
            (
                true,
                login_failures::Column::Username,
                username,
                self.limits.per_username,
            ),
            (
                false,
                login_failures::Column::ClientAddress,
                address,
                self.limits.per_address,
            ),
        ];
        let mut username_failures = 0;
        for (is_username, column, value, limit) in keys {
            if limit == 0 || value.is_empty() {
                continue;
            }
            let recent = login_failures::Entity::find()
                .filter(column.eq(value))
                .filter(login_failures::Column::FailedAt.gt(since));
            let count = recent.clone().count(&self.db.read).await?;
            if is_username {
                username_failures = count;
            }
            if count < limit {
                continue;
            }
            let oldest: Option<DateTime<Utc>> = recent
                .select_only()
                .column(login_failures::Column::FailedAt)
                .order_by_asc(login_failures::Column::FailedAt)
                .into_tuple()
                .one(&self.db.read)
                .await?;
            let lifts = oldest.unwrap_or(now)
                + chrono::Duration::from_std(self.limits.window).unwrap_or_default();
            let retry_after = (lifts - now).num_seconds().max(1) as u64;
            return Err(Error::Throttled { retry_after });
        }
        Ok(username_failures)
    }

    /// Records a failed login.
    pub async fn failed(&self, username: &str, address: &str) -> Result<()> {
        let (username, address) = (&key(username), &key(address));
        let failure = login_failures::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(username.chars().take(150).collect()),
            client_address: Set(address.chars().take(64).collect()),
            failed_at: Set(Utc::now()),
        };
        login_failures::Entity::insert(failure)
            .exec_without_returning(&self.db.write)
            .await?;
        Ok(())
    }

    /// Forgets the failures for a username after a successful login.
    pub async fn succeeded(&self, username: &str) -> Result<()> {
        let username = &key(username);
        login_failures::Entity::delete_many()
            .filter(login_failures::Column::Username.eq(username))
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// Removes failures older than the window.
    pub async fn purge(&self) -> Result<u64> {
        let since = self.window_start(Utc::now());
        let result = login_failures::Entity::delete_many()
            .filter(login_failures::Column::FailedAt.lte(since))
            .exec(&self.db.write)
            .await?;
        Ok(result.rows_affected)
    }
}
