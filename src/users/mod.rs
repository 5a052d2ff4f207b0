//! Users: their accounts, signing in (`sign_in`), and what reaches their
//! tokens too (a new password, deactivation, deletion, expiring everything).

mod names;
mod own;
mod rehash;
mod sign_in;

use entity::users;
use uuid::Uuid;

use crate::{
    api_tokens::ApiTokens,
    clock::SharedClock,
    error::{Error, Result},
    passwords::{Passwords, random_password},
    registry::Registry,
    secret::Secret,
    store::{
        UserStore,
        users::{UsersTxn, new_user},
    },
    throttle::Throttle,
};
use names::validate_password;
pub use names::{normalise, username_key, validate_username};

/// Whether a change may take away the last active administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastAdmin {
    /// Refuse it with a conflict (the API always does).
    Keep,
    /// Allow it (`--force` on the command line).
    MayGo,
}

/// What a new user is made of.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: Secret,
    pub is_admin: bool,
    pub is_active: bool,
}

/// The user service.
#[derive(Clone, Debug)]
pub struct Users {
    store: UserStore,
    throttle: Throttle,
    passwords: Passwords,
    registry: Registry,
    api_tokens: ApiTokens,
    clock: SharedClock,
    /// `update_last_login`: record each successful sign-in.
    update_last_login: bool,
    /// Verified against when the username is unknown, so that an unknown
    /// user costs the same time as a wrong password.
    dummy_hash: String,
}

impl Users {
    pub async fn new(
        store: UserStore,
        throttle: Throttle,
        passwords: Passwords,
        registry: Registry,
        api_tokens: ApiTokens,
        clock: SharedClock,
        update_last_login: bool,
    ) -> Result<Self> {
        let dummy_hash = passwords
            .hash(Secret::new(Uuid::new_v4().to_string()))
            .await?;
        Ok(Users {
            store,
            throttle,
            passwords,
            registry,
            api_tokens,
            clock,
            update_last_login,
            dummy_hash,
        })
    }

    /// Creates a user. The name is NFKC-normalised; a name taken, or one
    /// that differs from a taken one only by case or by Unicode look-alike
    /// forms, is a conflict.
    pub async fn create(&self, new: NewUser) -> Result<users::Model> {
        let username = normalise(&new.username);
        validate_username(&username)?;
        validate_password(&new.password)?;
        let password_hash = self.passwords.hash(new.password).await?;
        let user = new_user(
            username.clone(),
            username_key(&username),
            password_hash,
            new.is_admin,
            new.is_active,
            self.clock.now(),
        );
        self.store.insert(user).await
    }

    /// The user with this name (NFKC-normalised first). A name no user can
    /// have (a NUL byte, say, which PostgreSQL refuses outright) is nobody,
    /// without asking the database.
    pub async fn find(&self, username: &str) -> Result<Option<users::Model>> {
        let username = normalise(username);
        if validate_username(&username).is_err() {
            return Ok(None);
        }
        self.store.find_by_name(&username).await
    }

    /// The user with this name, or `NotFound`.
    pub async fn get(&self, username: &str) -> Result<users::Model> {
        self.find(username).await?.ok_or(Error::NotFound)
    }

    pub async fn list(&self) -> Result<Vec<users::Model>> {
        self.store.list().await
    }

    /// Changes `is_active` and/or `is_admin`. An inactive user's tokens are
    /// refused until they are active again. Taking away the last active
    /// administrator is a conflict unless `guard` allows it (the command
    /// line may).
    pub async fn update(
        &self,
        username: &str,
        is_active: Option<bool>,
        is_admin: Option<bool>,
        guard: LastAdmin,
    ) -> Result<users::Model> {
        let username = normalise(username);
        self.store
            .with_admins_locked(|txn| async move {
                let user = txn.find_by_name(&username).await?.ok_or(Error::NotFound)?;
                let stays_admin =
                    is_admin.unwrap_or(user.is_admin) && is_active.unwrap_or(user.is_active);
                if !stays_admin && is_active_admin(&user) && guard == LastAdmin::Keep {
                    last_admin_guard(&txn, &user).await?;
                }
                txn.set_flags(user, is_active, is_admin).await
            })
            .await
    }

    /// A new password, and every token issued under the old one expired.
    pub async fn set_password(&self, username: &str, password: Secret) -> Result<()> {
        validate_password(&password)?;
        let user = self.get(username).await?;
        let hash = self.passwords.hash(password).await?;
        let user = self.store.set_password_hash(user, hash).await?;
        self.invalidate(user.id, "password_change").await?;
        Ok(())
    }

    /// Expires every token of the user, their API token included; returns
    /// how many were active.
    pub async fn expire_all(&self, username: &str) -> Result<u64> {
        let user = self.get(username).await?;
        self.invalidate(user.id, "user").await
    }

    /// Revokes a user's API token (an administrator's act).
    pub async fn revoke_api_token(&self, username: &str) -> Result<()> {
        let user = self.get(username).await?;
        self.api_tokens.revoke(user.id).await?;
        Ok(())
    }

    async fn invalidate(&self, user_id: Uuid, reason: &'static str) -> Result<u64> {
        let revoked = self.api_tokens.revoke(user_id).await?;
        Ok(self.registry.expire_user(user_id, reason).await? + u64::from(revoked))
    }

    /// Deletes the user; their registry rows and API token go with them (so
    /// a new user of the same name inherits nothing). Deleting the last
    /// active administrator is a conflict unless `guard` allows it.
    pub async fn delete(&self, username: &str, guard: LastAdmin) -> Result<()> {
        let username = normalise(username);
        if validate_username(&username).is_err() {
            return Err(Error::NotFound);
        }
        self.store
            .with_admins_locked(|txn| async move {
                let user = txn.find_by_name(&username).await?.ok_or(Error::NotFound)?;
                if is_active_admin(&user) && guard == LastAdmin::Keep {
                    last_admin_guard(&txn, &user).await?;
                }
                txn.delete(user.id).await
            })
            .await
    }

    /// Forgets failed logins older than the throttle's window.
    pub async fn purge_login_failures(&self) -> Result<u64> {
        self.throttle.purge().await
    }

    /// On a first start with no users, creates `admin` with the given
    /// password or a random one, which is returned to be shown once.
    pub async fn bootstrap_admin(&self, password: Option<&Secret>) -> Result<Option<Secret>> {
        if self.store.count().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.clone(), false),
            None => (random_password(), true),
        };
        let created = self
            .create(NewUser {
                username: "admin".into(),
                password: password.clone(),
                is_admin: true,
                is_active: true,
            })
            .await;
        match created {
            Ok(_) => Ok(generated.then_some(password)),
            // Another process made it first (start-ups are serialised on
            // PostgreSQL; this covers any other way two can meet): there is
            // an administrator, which is all a first start needs.
            Err(Error::Conflict(_)) if self.store.count().await? > 0 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn is_active_admin(user: &users::Model) -> bool {
    user.is_admin && user.is_active
}

/// Refuses to take away the last active administrator: nobody could then
/// administer tokend through its API.
async fn last_admin_guard(txn: &UsersTxn, user: &users::Model) -> Result<()> {
    if txn.other_active_admins(user.id).await? == 0 {
        return Err(Error::Conflict(format!(
            "{} is the last active administrator: make another user an administrator first.",
            user.username
        )));
    }
    Ok(())
}
