//! What users do to their own account: a new password with the current one.

use entity::users;
use uuid::Uuid;

use super::{Users, validate_password};
use crate::{
    error::{Error, Result},
    secret::Secret,
};

impl Users {
    /// Changes the user's own password after checking the current one
    /// under the login throttle (a wrong one counts as a failed login from
    /// `address`). Every other session of theirs is expired, and their API
    /// token revoked; the session `keep` (the registry id of the access
    /// token of the call) stays, so the caller is not signed out. Returns
    /// how many tokens were expired.
    pub async fn change_own_password(
        &self,
        user: users::Model,
        keep: Option<Uuid>,
        current: Secret,
        new: Secret,
        address: &str,
    ) -> Result<u64> {
        validate_password(&new)?;
        // The session to keep, found before anything changes.
        let keep = match keep {
            Some(token_id) => Some(self.registry.session_of(user.id, token_id).await?),
            None => None,
        };
        match self.login(&user.username, current, address).await {
            Ok(_) => {}
            Err(Error::NoActiveAccount) => {
                return Err(Error::InvalidRequest(
                    "The current password is not correct.".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        let hash = self.passwords.hash(new).await?;
        let user = self.store.set_password_hash(user, hash).await?;
        let revoked = u64::from(self.api_tokens.revoke(user.id).await?);
        let expired = match keep {
            Some(root) => self.registry.expire_user_but_tree(user.id, root).await?,
            None => {
                self.registry
                    .expire_user(user.id, "password_change")
                    .await?
            }
        };
        Ok(expired + revoked)
    }
}
