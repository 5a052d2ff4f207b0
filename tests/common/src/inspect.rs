//! What a test may look at, or change, in tokend's database behind its back:
//! each a named question, over the test's own connection to the database.

use chrono::Utc;
use entity::{devices, tokens, users};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, Database, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, sea_query::IntoCondition,
};
use uuid::Uuid;

use crate::{TestApp, jti};

impl TestApp {
    /// The test's own connection to tokend's database.
    pub async fn db(&self) -> &DatabaseConnection {
        self.inspection
            .get_or_init(|| async {
                Database::connect(&self.config().database_url())
                    .await
                    .expect("connect to the test database")
            })
            .await
    }

    /// The registry row of a token tokend issued.
    pub async fn row(&self, token: &str) -> tokens::Model {
        tokens::Entity::find()
            .filter(tokens::Column::Jti.eq(jti(token)))
            .one(self.db().await)
            .await
            .expect("registry")
            .expect("token is in the registry")
    }

    /// The registry rows that match `condition`.
    pub async fn rows_where(&self, condition: impl IntoCondition) -> Vec<tokens::Model> {
        tokens::Entity::find()
            .filter(condition)
            .all(self.db().await)
            .await
            .expect("registry")
    }

    /// The rows that match `condition` and are active now (neither expired,
    /// rotated away nor past their expiry).
    pub async fn active_rows_where(&self, condition: impl IntoCondition) -> Vec<tokens::Model> {
        let now = Utc::now();
        let mut rows = self.rows_where(condition).await;
        rows.retain(|row| tokend::store::tokens::is_active(row, now));
        rows
    }

    /// The rows whose parent is the row `parent`.
    pub async fn children(&self, parent: Uuid) -> Vec<tokens::Model> {
        self.rows_where(tokens::Column::ParentId.eq(parent)).await
    }

    /// The refresh tokens that replaced the refresh token `refresh`.
    pub async fn successors(&self, refresh: &str) -> Vec<tokens::Model> {
        let parent = self.row(refresh).await.id;
        self.rows_where(
            Condition::all()
                .add(tokens::Column::ParentId.eq(parent))
                .add(tokens::Column::TokenType.eq("refresh")),
        )
        .await
    }

    /// How many tokens the registry holds.
    pub async fn count_tokens(&self) -> u64 {
        self.count_tokens_where(Condition::all()).await
    }

    /// How many registry rows match `condition`.
    pub async fn count_tokens_where(&self, condition: impl IntoCondition) -> u64 {
        tokens::Entity::find()
            .filter(condition)
            .count(self.db().await)
            .await
            .expect("registry")
    }

    /// How many devices are recorded.
    pub async fn count_devices(&self) -> u64 {
        devices::Entity::find()
            .count(self.db().await)
            .await
            .expect("devices")
    }

    /// The device a token was issued to.
    pub async fn device(&self, id: Uuid) -> devices::Model {
        devices::Entity::find_by_id(id)
            .one(self.db().await)
            .await
            .expect("devices")
            .expect("the device is recorded")
    }

    /// The id of the user `username`.
    pub async fn user_id(&self, username: &str) -> Uuid {
        self.state
            .users
            .find(username)
            .await
            .expect("users")
            .expect("user")
            .id
    }

    /// Writes `token_type` into a token's row, and nothing else.
    pub async fn set_token_type(&self, token: &str, token_type: &str) {
        let mut row: tokens::ActiveModel = self.row(token).await.into();
        row.token_type = Set(token_type.into());
        row.update(self.db().await).await.expect("update the row");
    }

    /// Deletes a token's row, as if it had never been registered.
    pub async fn delete_row(&self, token: &str) {
        tokens::Entity::delete_many()
            .filter(tokens::Column::Id.eq(self.row(token).await.id))
            .exec(self.db().await)
            .await
            .expect("delete the row");
    }

    /// Writes `is_active` into a user's row, and nothing else: none of what
    /// the user service does along with it.
    pub async fn set_user_active(&self, username: &str, is_active: bool) {
        let user = users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(self.db().await)
            .await
            .expect("users")
            .expect("user");
        let mut user: users::ActiveModel = user.into();
        user.is_active = Set(is_active);
        user.update(self.db().await).await.expect("update the user");
    }

    /// Inserts registry rows directly, in batches of 500.
    pub async fn insert_rows(&self, rows: Vec<tokens::ActiveModel>) {
        for chunk in rows.chunks(500) {
            tokens::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(self.db().await)
                .await
                .expect("insert rows");
        }
    }
}
