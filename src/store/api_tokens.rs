//! The `api_tokens` table: one row per user, the token's SHA-256 digest.

use chrono::{DateTime, Utc};
use entity::{api_tokens, users};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Condition, Expr, OnConflict},
};
use uuid::Uuid;

use crate::{db::Db, error::Result};

#[derive(Clone, Debug)]
pub struct ApiTokenStore {
    db: Db,
}

impl ApiTokenStore {
    pub fn new(db: Db) -> Self {
        ApiTokenStore { db }
    }

    /// Puts `row` in place of the user's token, if they had one: one
    /// statement, so of several at once for one user the last one's token
    /// is the one that works and none fails.
    pub async fn replace(&self, row: api_tokens::Model) -> Result<api_tokens::Model> {
        let row = api_tokens::Entity::insert(api_tokens::ActiveModel::from(row))
            .on_conflict(
                OnConflict::column(api_tokens::Column::UserId)
                    .update_columns([
                        api_tokens::Column::Digest,
                        api_tokens::Column::Prefix,
                        api_tokens::Column::CreatedAt,
                        api_tokens::Column::LastUsedAt,
                    ])
                    .to_owned(),
            )
            .exec_with_returning(&self.db.write)
            .await?;
        Ok(row)
    }

    /// The user's token row.
    pub async fn find_for_user(&self, user_id: Uuid) -> Result<Option<api_tokens::Model>> {
        Ok(api_tokens::Entity::find()
            .filter(api_tokens::Column::UserId.eq(user_id))
            .one(&self.db.read)
            .await?)
    }

    /// Deletes the user's token; true when there was one.
    pub async fn delete_for_user(&self, user_id: Uuid) -> Result<bool> {
        let result = api_tokens::Entity::delete_many()
            .filter(api_tokens::Column::UserId.eq(user_id))
            .exec(&self.db.write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes the token with this digest; true when there was one.
    pub async fn delete_by_digest(&self, digest: &str) -> Result<bool> {
        let result = api_tokens::Entity::delete_many()
            .filter(api_tokens::Column::Digest.eq(digest))
            .exec(&self.db.write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// The token with this digest, and its user.
    pub async fn find_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<(api_tokens::Model, Option<users::Model>)>> {
        Ok(api_tokens::Entity::find()
            .filter(api_tokens::Column::Digest.eq(digest))
            .find_also_related(users::Entity)
            // The digest is unique; no bound `LIMIT` to re-plan.
            .all(&self.db.read)
            .await?
            .pop())
    }

    /// Sets `last_used_at` to `now` unless it is later than `stale_before`:
    /// of many uses at once, one writes.
    pub async fn touch(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<()> {
        let stale = Condition::any()
            .add(api_tokens::Column::LastUsedAt.is_null())
            .add(api_tokens::Column::LastUsedAt.lte(stale_before));
        api_tokens::Entity::update_many()
            .col_expr(api_tokens::Column::LastUsedAt, Expr::value(now))
            .filter(api_tokens::Column::Id.eq(id))
            .filter(stale)
            .exec(&self.db.write)
            .await?;
        Ok(())
    }
}
