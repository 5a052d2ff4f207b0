//! Pages of tokens: a user's own, or everybody's for administrators.

use entity::tokens;
use uuid::Uuid;

use super::Registry;
use crate::{
    error::{Error, Result},
    store::{Page, PageQuery},
};

impl Registry {
    /// A page of tokens, newest first (issued_at, then id), by keyset: the
    /// cost of a page does not grow with how deep it is.
    pub async fn list(&self, query: &PageQuery) -> Result<Page> {
        self.store.page(query, self.now()).await
    }

    /// One of a user's tokens by id; another user's token is not found.
    pub async fn find_for_user(&self, user_id: Uuid, id: Uuid) -> Result<tokens::Model> {
        self.store
            .find_for_user(user_id, id)
            .await?
            .ok_or(Error::NotFound)
    }
}
