//! The `oauth_clients` table: registered clients, their secrets' digests.

use entity::oauth_clients;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr};

use crate::{
    db::Db,
    error::{Error, Result},
};

#[derive(Clone, Debug)]
pub struct ClientStore {
    db: Db,
}

impl ClientStore {
    pub fn new(db: Db) -> Self {
        ClientStore { db }
    }

    /// Inserts a client; a taken name is a conflict.
    pub async fn insert(&self, client: oauth_clients::Model) -> Result<oauth_clients::Model> {
        match oauth_clients::ActiveModel::from(client)
            .insert(&self.db.write)
            .await
        {
            Ok(client) => Ok(client),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
                Error::Conflict("A client with that name already exists.".into()),
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Every client, by name.
    pub async fn list(&self) -> Result<Vec<oauth_clients::Model>> {
        Ok(oauth_clients::Entity::find()
            .order_by_asc(oauth_clients::Column::Name)
            .all(&self.db.read)
            .await?)
    }

    /// Deletes the client named `name`; true when there was one.
    pub async fn delete_by_name(&self, name: &str) -> Result<bool> {
        let result = oauth_clients::Entity::delete_many()
            .filter(oauth_clients::Column::Name.eq(name))
            .exec(&self.db.write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// The client whose public id is `client_id`.
    pub async fn find_by_client_id(&self, client_id: &str) -> Result<Option<oauth_clients::Model>> {
        Ok(oauth_clients::Entity::find()
            .filter(oauth_clients::Column::ClientId.eq(client_id))
            // The id is unique; no bound `LIMIT` to re-plan.
            .all(&self.db.read)
            .await?
            .pop())
    }
}
