//! Password hashes made with other parameters than tokend's, made again
//! at the next sign-in.

use entity::users;

use super::Users;
use crate::{error::Error, secret::Secret};

impl Users {
    /// A user whose hash was made with other parameters than tokend's gets
    /// one made with them, now that the password is known to be right
    /// (unless the hash changed meanwhile). A failure leaves the old hash,
    /// which still verifies, and fails nothing.
    pub(super) async fn upgrade(&self, user: users::Model, password: Secret) -> users::Model {
        if !crate::passwords::outdated(&user.password_hash) {
            return user;
        }
        let upgraded = async {
            let new = self.passwords.hash(password).await?;
            let done = (self.store)
                .upgrade_password_hash(user.id, &user.password_hash, new.clone())
                .await?;
            Ok::<_, Error>(done.then_some(new))
        };
        match upgraded.await {
            Ok(Some(password_hash)) => users::Model {
                password_hash,
                ..user
            },
            Ok(None) => user,
            Err(e) => {
                tracing::warn!(user_id = %user.id, error = %e, "re-hashing a password failed");
                user
            }
        }
    }
}
