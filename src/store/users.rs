//! The `users` table.

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use entity::users;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QueryResult, SqlErr, sea_query::Expr,
    sqlx,
};
use uuid::Uuid;

use super::SqliteThreads;
use crate::{
    db::{
        Db,
        pg_conns::{PgConns, sqlx_error},
    },
    error::{Error, Result},
};

#[derive(Clone, Debug)]
pub struct UserStore {
    db: Db,
    /// SQLite in a file: a login's look-up on the calling thread.
    sqlite: SqliteThreads,
}

impl UserStore {
    pub fn new(db: Db) -> Self {
        Self::sharing(db, SqliteThreads::default())
    }

    /// The store, reading through `sqlite`'s reader where it can.
    pub fn sharing(db: Db, sqlite: SqliteThreads) -> Self {
        UserStore { db, sqlite }
    }

    /// The user with this exact name.
    pub async fn find_by_name(&self, username: &str) -> Result<Option<users::Model>> {
        // A row the reader cannot decode, or a failure, is sea-orm's to
        // decide.
        if let Some(reader) = &self.sqlite.reader
            && let Ok(Some(found)) = reader.user_by_name(username)
        {
            return Ok(found);
        }
        if let Some(conns) = self.db.pg_conns() {
            return user_by_name(&conns, username).await;
        }
        // `username` is unique: at most one row, without the bound `LIMIT`
        // of `one`, which makes SQLite re-plan the statement every time.
        Ok(users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .all(&self.db.read)
            .await?
            .pop())
    }

    /// Every user, by name.
    pub async fn list(&self) -> Result<Vec<users::Model>> {
        Ok(users::Entity::find()
            .order_by_asc(users::Column::Username)
            .all(&self.db.read)
            .await?)
    }

    pub async fn count(&self) -> Result<u64> {
        Ok(users::Entity::find().count(&self.db.read).await?)
    }

    /// Inserts a user; a taken username (or its look-alike key) is a
    /// conflict.
    pub async fn insert(&self, user: users::Model) -> Result<users::Model> {
        match users::ActiveModel::from(user).insert(&self.db.write).await {
            Ok(user) => Ok(user),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
                Error::Conflict("A user with that username already exists.".into()),
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the password hash.
    pub async fn set_password_hash(
        &self,
        user: users::Model,
        password_hash: String,
    ) -> Result<users::Model> {
        let mut active: users::ActiveModel = user.into();
        active.password_hash = Set(password_hash);
        Ok(active.update(&self.db.write).await?)
    }

    /// Replaces the password hash `old` with `new`, unless it changed
    /// meanwhile; returns whether it did.
    pub async fn upgrade_password_hash(&self, id: Uuid, old: &str, new: String) -> Result<bool> {
        let done = users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(new))
            .filter(users::Column::Id.eq(id))
            .filter(users::Column::PasswordHash.eq(old))
            .exec(&self.db.write)
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Records a successful login.
    pub async fn touch_last_login(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        users::Entity::update_many()
            .col_expr(users::Column::LastLogin, Expr::value(now))
            .filter(users::Column::Id.eq(id))
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// Runs `job` in a write transaction holding the administrators' lock:
    /// no other job changes who is an active administrator in between, on
    /// any replica. Committed when it returns `Ok`.
    pub async fn with_admins_locked<T, F, Fut>(&self, job: F) -> Result<T>
    where
        F: FnOnce(UsersTxn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        super::in_transaction(&self.db, Some("users:administrators"), |txn| {
            job(UsersTxn { txn })
        })
        .await
    }
}

/// The users table inside a write transaction.
pub struct UsersTxn {
    txn: Arc<DatabaseTransaction>,
}

impl UsersTxn {
    /// The user with this exact name, as the transaction sees it.
    pub async fn find_by_name(&self, username: &str) -> Result<Option<users::Model>> {
        Ok(users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .all(&*self.txn)
            .await?
            .pop())
    }

    /// How many active administrators there are besides `id`.
    pub async fn other_active_admins(&self, id: Uuid) -> Result<u64> {
        Ok(users::Entity::find()
            .filter(users::Column::IsAdmin.eq(true))
            .filter(users::Column::IsActive.eq(true))
            .filter(users::Column::Id.ne(id))
            .count(&*self.txn)
            .await?)
    }

    /// Changes `is_active` and/or `is_admin` (`None`: unchanged).
    pub async fn set_flags(
        &self,
        user: users::Model,
        is_active: Option<bool>,
        is_admin: Option<bool>,
    ) -> Result<users::Model> {
        let mut active: users::ActiveModel = user.into();
        if let Some(v) = is_active {
            active.is_active = Set(v);
        }
        if let Some(v) = is_admin {
            active.is_admin = Set(v);
        }
        Ok(active.update(&*self.txn).await?)
    }

    /// Deletes a user. Their tokens and API token go with them (the foreign
    /// keys cascade). Under the user's lock, exclusive: a refresh or issue
    /// of theirs, which holds it shared while it writes a row pointing to
    /// them, either commits first or finds them gone, instead of meeting
    /// the cascade row by row and deadlocking with it.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        super::tokens::lock(&self.txn, &[id]).await?;
        users::Entity::delete_by_id(id).exec(&*self.txn).await?;
        Ok(())
    }
}

/// A new user's row; `username_key` is what no two users may share.
pub fn new_user(
    username: String,
    username_key: String,
    password_hash: String,
    is_admin: bool,
    is_active: bool,
    now: DateTime<Utc>,
) -> users::Model {
    users::Model {
        id: Uuid::now_v7(),
        username,
        username_key: Some(username_key),
        password_hash,
        is_active,
        is_admin,
        created_at: now,
        last_login: None,
    }
}

/// PostgreSQL: the user named `username`, on a connection the registry's
/// hot path holds (a login's look-up, without the two round trips sqlx's
/// pool adds to each borrow).
async fn user_by_name(conns: &Arc<PgConns>, username: &str) -> Result<Option<users::Model>> {
    const SQL: &str = "SELECT id, username, username_key, password_hash, is_active, is_admin, \
         created_at, last_login FROM users WHERE username = $1";
    conns
        .within(async {
            let mut lent = conns.lend().await?;
            let row = sqlx::query(SQL)
                .bind(username.to_owned())
                .fetch_optional(lent.conn())
                .await
                .map_err(sqlx_error);
            let user = lent
                .give_back_unless_broken(row)?
                .map(|row| users::Model::from_query_result(&QueryResult::from(row), ""))
                .transpose()?;
            Ok(user)
        })
        .await
}

#[cfg(test)]
mod tests;
