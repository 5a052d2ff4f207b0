//! Operations on an account that reach its tokens too: changing a password,
//! deactivating, deleting, invalidating everything. Each one leaves the user
//! no working token at the next request.

use entity::users;

use crate::{
    api_tokens::ApiTokens,
    config::Secret,
    error::{Error, Result},
    registry::Registry,
    users::Users,
};

#[derive(Clone, Debug)]
pub struct Accounts {
    pub users: Users,
    pub registry: Registry,
    pub api_tokens: ApiTokens,
}

impl Accounts {
    async fn user(&self, username: &str) -> Result<users::Model> {
        self.users.find(username).await?.ok_or(Error::NotFound)
    }

    /// Expires every token of the user, their API token included; returns
    /// how many were active.
    pub async fn expire_all(&self, username: &str) -> Result<u64> {
        let user = self.user(username).await?;
        self.invalidate(user.id).await
    }

    /// A new password, and every token issued under the old one expired.
    pub async fn change_password(&self, username: &str, password: Secret) -> Result<()> {
        let user = self.users.set_password(username, password).await?;
        self.invalidate(user.id).await?;
        Ok(())
    }

    /// Revokes a user's API token (an administrator's act).
    pub async fn revoke_api_token(&self, username: &str) -> Result<()> {
        let user = self.user(username).await?;
        self.api_tokens.revoke(user.id).await?;
        Ok(())
    }

    async fn invalidate(&self, user_id: uuid::Uuid) -> Result<u64> {
        let revoked = self.api_tokens.revoke(user_id).await?;
        Ok(self.registry.expire_user(user_id).await? + u64::from(revoked))
    }

    /// Deletes the user; their registry rows and API token go with them (so
    /// a new user of the same name inherits nothing).
    pub async fn delete(&self, username: &str) -> Result<()> {
        self.users.delete(username).await
    }
}
