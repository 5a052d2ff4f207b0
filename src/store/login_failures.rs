//! The `login_failures` table: one row per password check that counts
//! against the throttle (made before the check, kept when it failed), kept
//! for the throttle's window.

use chrono::{DateTime, Utc};
use entity::login_failures;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
    sea_query::{Condition, Expr, ExprTrait},
};
use uuid::Uuid;

use super::{SqliteThreads, advisory_locks};
use crate::{
    db::{Db, pg_conns::PgConns},
    error::Result,
};

mod postgres;
mod sqlite;

/// A username's or an address's attempts in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Failed (or abandoned by a check that never ended).
    pub failed: u64,
    pub oldest_failed: Option<DateTime<Utc>>,
    /// Being checked right now.
    pub pending: u64,
}

/// Which attempts count: made after `since`; a pending one made before
/// `stale_before` never ended and counts as failed.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub stale_before: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct LoginFailureStore {
    db: Db,
    /// SQLite in a file: the counts on the calling thread, the writes in
    /// the registry writer's batches ([`sqlite`]).
    sqlite: SqliteThreads,
    /// PostgreSQL: every statement but the purge on the registry's held
    /// connections ([`postgres`]).
    pg: Option<std::sync::Arc<PgConns>>,
}

impl LoginFailureStore {
    pub fn new(db: Db, sqlite: SqliteThreads) -> Self {
        let pg = db.pg_conns();
        LoginFailureStore { db, sqlite, pg }
    }

    /// The store without its fast paths: every statement through sea-orm.
    #[cfg(test)]
    fn through_sea_orm(db: Db) -> Self {
        LoginFailureStore {
            db,
            sqlite: SqliteThreads::default(),
            pg: None,
        }
    }

    /// The attempts `username` and `address` have made in `window`.
    pub async fn count(
        &self,
        username: &str,
        address: &str,
        window: Window,
    ) -> Result<(Attempts, Attempts)> {
        if let Some(reader) = &self.sqlite.reader {
            return reader.with_connection(|conn| sqlite::count(conn, username, address, window));
        }
        if let Some(conns) = &self.pg {
            return postgres::count(conns, username, address, window).await;
        }
        count(&self.db.read, username, address, window).await
    }

    /// Decides, under the locks of `username` and `address` and with their
    /// attempts in `window` in hand, whether an attempt may start; when
    /// `admits` says so, records it, pending, at `at`, and returns its id.
    /// Nothing else admits an attempt for either between the count and the
    /// record, on any replica.
    pub async fn admit(
        &self,
        username: &str,
        address: &str,
        window: Window,
        at: DateTime<Utc>,
        admits: impl FnOnce(&Attempts, &Attempts) -> bool + Send + 'static,
    ) -> Result<(Attempts, Attempts, Option<Uuid>)> {
        if let Some(writer) = &self.sqlite.writer {
            let (username, address) = (username.to_owned(), address.to_owned());
            return writer
                .run(move |conn| sqlite::admit(conn, &username, &address, window, at, admits))
                .await;
        }
        if let Some(conns) = &self.pg {
            return postgres::admit(conns, username, address, window, at, admits).await;
        }
        let _turn = self.db.write_turn().await;
        let txn = self.db.write.begin().await?;
        let [by_name, by_address] = lock_names(username, address);
        advisory_locks(&txn, &[&by_name, &by_address]).await?;
        let (by_username, by_address) = count(&txn, username, address, window).await?;
        if !admits(&by_username, &by_address) {
            return Ok((by_username, by_address, None));
        }
        let id = Uuid::now_v7();
        let attempt = login_failures::ActiveModel {
            id: Set(id),
            username: Set(username.to_owned()),
            client_address: Set(address.to_owned()),
            failed_at: Set(at),
            pending: Set(true),
        };
        login_failures::Entity::insert(attempt)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok((by_username, by_address, Some(id)))
    }

    /// The attempt's check failed, at `at`: it counts as a failure.
    pub async fn settle_failed(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        if let Some(writer) = &self.sqlite.writer {
            return writer
                .run(move |conn| sqlite::settle_failed(conn, id, at))
                .await;
        }
        if let Some(conns) = &self.pg {
            return postgres::settle_failed(conns, id, at).await;
        }
        login_failures::Entity::update_many()
            .col_expr(login_failures::Column::Pending, Expr::value(false))
            .col_expr(login_failures::Column::FailedAt, Expr::value(at))
            .filter(login_failures::Column::Id.eq(id))
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// Forgets one attempt.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        if let Some(writer) = &self.sqlite.writer {
            return writer.run(move |conn| sqlite::delete(conn, id)).await;
        }
        if let Some(conns) = &self.pg {
            return postgres::delete(conns, id).await;
        }
        login_failures::Entity::delete_by_id(id)
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// Forgets a username's failed attempts made before the one with this
    /// id (ids grow with time), and that one: attempts still being checked
    /// stay, and count when they fail.
    pub async fn forget_failures_up_to(&self, username: &str, id: Uuid) -> Result<()> {
        if let Some(writer) = &self.sqlite.writer {
            let username = username.to_owned();
            return writer
                .run(move |conn| sqlite::forget_failures_up_to(conn, &username, id))
                .await;
        }
        if let Some(conns) = &self.pg {
            return postgres::forget_failures_up_to(conns, username, id).await;
        }
        login_failures::Entity::delete_many()
            .filter(login_failures::Column::Username.eq(username))
            .filter(
                Condition::any().add(login_failures::Column::Id.eq(id)).add(
                    Condition::all()
                        .add(login_failures::Column::Pending.eq(false))
                        .add(login_failures::Column::Id.lt(id)),
                ),
            )
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// Removes failures at or before `before`; returns how many.
    pub async fn purge(&self, before: DateTime<Utc>) -> Result<u64> {
        let result = login_failures::Entity::delete_many()
            .filter(login_failures::Column::FailedAt.lte(before))
            .exec(&self.db.write)
            .await?;
        Ok(result.rows_affected)
    }
}

/// The names of the locks an admission takes, username first, then
/// address: every admission, on any path, takes them in this order.
fn lock_names(username: &str, address: &str) -> [String; 2] {
    [
        format!("login-username:{username}"),
        format!("login-address:{address}"),
    ]
}

/// The attempts `username` and `address` have each made in `window`: those
/// that failed (and those pending since before the window's
/// `stale_before`), with the oldest of them, and those whose check is under
/// way. An empty one has made none.
async fn count(
    db: &impl ConnectionTrait,
    username: &str,
    address: &str,
    window: Window,
) -> Result<(Attempts, Attempts)> {
    let keys = [
        (login_failures::Column::Username, username),
        (login_failures::Column::ClientAddress, address),
    ];
    let mut either = Condition::any();
    for (column, value) in keys.iter().filter(|(_, value)| !value.is_empty()) {
        either = either.add(column.eq(*value));
    }
    if either.is_empty() {
        return Ok(Default::default());
    }
    // One statement, so one snapshot: an attempt that settles meanwhile is
    // counted once, as pending or as failed, for both.
    let checking = Expr::col(login_failures::Column::Pending)
        .eq(true)
        .and(Expr::col(login_failures::Column::FailedAt).gt(window.stale_before));
    let mut select = login_failures::Entity::find()
        .filter(either)
        .filter(login_failures::Column::FailedAt.gt(window.since))
        .select_only();
    for (i, (column, value)) in keys.iter().enumerate() {
        // An empty value matches no row, as `either` left it out.
        let this = Expr::col(*column)
            .eq(*value)
            .and(Expr::val(!value.is_empty()));
        select = select
            .column_as(
                Expr::case(this.clone(), 1).finally(0).sum(),
                format!("total{i}"),
            )
            .column_as(
                Expr::case(this.clone().and(checking.clone()), 1)
                    .finally(0)
                    .sum(),
                format!("pending{i}"),
            )
            .column_as(
                Expr::case(
                    this.and(checking.clone().not()),
                    Expr::col(login_failures::Column::FailedAt),
                )
                .min(),
                format!("oldest{i}"),
            );
    }
    type Counted = (Option<i64>, Option<i64>, Option<DateTime<Utc>>);
    type Both = (
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
    );
    let (u_total, u_pending, u_oldest, a_total, a_pending, a_oldest): Both =
        select.into_tuple().one(db).await?.unwrap_or_default();
    let attempts = |(total, pending, oldest_failed): Counted| {
        let pending = Ord::max(pending.unwrap_or(0), 0);
        let failed = Ord::max(total.unwrap_or(0) - pending, 0);
        Attempts {
            failed: failed as u64,
            oldest_failed,
            pending: pending as u64,
        }
    };
    Ok((
        attempts((u_total, u_pending, u_oldest)),
        attempts((a_total, a_pending, a_oldest)),
    ))
}

#[cfg(test)]
mod tests;
