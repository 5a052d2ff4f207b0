//! Users: creation, password hashing (argon2id, see `passwords`) and
//! authentication by username and password.

use chrono::Utc;
use entity::users;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, SqlErr,
};
use uuid::Uuid;

use crate::{
    config::Secret,
    db::Db,
    error::{Error, Result},
    passwords::Passwords,
    throttle::Throttle,
};

/// The user service.
#[derive(Clone, Debug)]
pub struct Users {
    db: Db,
    throttle: Throttle,
    passwords: Passwords,
    /// Verified against when the username is unknown, so that an unknown
    /// user costs the same time as a wrong password.
    dummy_hash: String,
}

/// What a new user is made of.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: Secret,
    pub is_admin: bool,
    pub is_active: bool,
}

impl Users {
    pub async fn new(db: Db, throttle: Throttle, passwords: Passwords) -> Result<Self> {
        let dummy_hash = passwords
            .hash(Secret::new(Uuid::new_v4().to_string()))
            .await?;
        Ok(Users {
            db,
            throttle,
            passwords,
            dummy_hash,
        })
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// A login with a password: refused with 429 while the username or the
    /// address is throttled; a failure counts against both.
    pub async fn login(
        &self,
        username: &str,
        password: Secret,
        address: &str,
    ) -> Result<users::Model> {
        self.throttled(username, address, self.authenticate(username, password))
            .await
    }

    /// Runs a login `attempt` under the throttle: refused with 429 while the
    /// username or the address is throttled; a `NoActiveAccount` failure
    /// counts against both, a success clears the username's failures.
    pub async fn throttled(
        &self,
        username: &str,
        address: &str,
        attempt: impl Future<Output = Result<users::Model>>,
    ) -> Result<users::Model> {
        let failures = self.throttle.check(username, address).await?;
        match attempt.await {
            Ok(user) => {
                if failures > 0 {
                    self.throttle.succeeded(username).await?;
                }
                Ok(user)
            }
            Err(Error::NoActiveAccount) => {
                self.throttle.failed(username, address).await?;
                Err(Error::NoActiveAccount)
            }
            Err(e) => Err(e),
        }
    }

    /// Changes `is_active` and/or `is_admin`.
    pub async fn update(
        &self,
        username: &str,
        is_active: Option<bool>,
        is_admin: Option<bool>,
    ) -> Result<users::Model> {
        let user = self.find(username).await?.ok_or(Error::NotFound)?;
        let mut active: users::ActiveModel = user.into();
        if let Some(v) = is_active {
            active.is_active = Set(v);
        }
        if let Some(v) = is_admin {
            active.is_admin = Set(v);
        }
        Ok(active.update(&self.db.write).await?)
    }

    /// Sets a new password.
    pub async fn set_password(&self, username: &str, password: Secret) -> Result<users::Model> {
        validate_password(&password)?;
        let user = self.find(username).await?.ok_or(Error::NotFound)?;
        let hash = self.passwords.hash(password).await?;
        let mut active: users::ActiveModel = user.into();
        active.password_hash = Set(hash);
        Ok(active.update(&self.db.write).await?)
    }

    /// Creates a user; a taken username is a conflict.
    pub async fn create(&self, new: NewUser) -> Result<users::Model> {
        validate_username(&new.username)?;
        validate_password(&new.password)?;
        let password_hash = self.passwords.hash(new.password).await?;
        let user = users::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(new.username),
            password_hash: Set(password_hash),
            is_active: Set(new.is_active),
            is_admin: Set(new.is_admin),
            created_at: Set(Utc::now()),
            last_login: Set(None),
        };
        match user.insert(&self.db.write).await {
            Ok(user) => Ok(user),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
                Error::Conflict("A user with that username already exists.".into()),
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// The user with this name. A name no user can have (a NUL byte, say,
    /// which PostgreSQL refuses outright) is nobody, without asking the database.
    pub async fn find(&self, username: &str) -> Result<Option<users::Model>> {
        if validate_username(username).is_err() {
            return Ok(None);
        }
        // `username` is unique: at most one row, without the bound `LIMIT`
        // of `one`, which makes SQLite re-plan the statement every time.
        Ok(users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .all(&self.db.read)
            .await?
            .pop())
    }

    pub async fn list(&self) -> Result<Vec<users::Model>> {
        Ok(users::Entity::find()
            .order_by_asc(users::Column::Username)
            .all(&self.db.read)
            .await?)
    }

    pub async fn count(&self) -> Result<u64> {
        Ok(users::Entity::find().count(&self.db.read).await?)
    }

    /// Deletes a user; their tokens go with them.
    pub async fn delete(&self, username: &str) -> Result<()> {
        if validate_username(username).is_err() {
            return Err(Error::NotFound);
        }
        let result = users::Entity::delete_many()
            .filter(users::Column::Username.eq(username))
            .exec(&self.db.write)
            .await?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// The active user with this username and password. An unknown user, a
    /// wrong password and an inactive user give the same error, after the
    /// same work.
    pub async fn authenticate(&self, username: &str, password: Secret) -> Result<users::Model> {
        let user = self.find(username).await?;
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.clone(), |u| u.password_hash.clone());
        let matches = self.passwords.verify(hash, password).await?;
        match user {
            Some(user) if matches && user.is_active => Ok(user),
            _ => Err(Error::NoActiveAccount),
        }
    }

    /// Records a successful login (`update_last_login`).
    pub async fn touch_last_login(&self, id: Uuid) -> Result<()> {
        users::Entity::update_many()
            .col_expr(
                users::Column::LastLogin,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(users::Column::Id.eq(id))
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// On a first start with no users, creates `admin` with the given
    /// password or a random one, which is returned to be shown once.
    pub async fn bootstrap_admin(&self, password: Option<&Secret>) -> Result<Option<Secret>> {
        if self.count().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.clone(), false),
            None => (random_password(), true),
        };
        self.create(NewUser {
            username: "admin".into(),
            password: password.clone(),
            is_admin: true,
            is_active: true,
        })
        .await?;
        Ok(generated.then_some(password))
    }
}

/// A random password of 24 URL-safe characters (144 bits).
pub fn random_password() -> Secret {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Django's rule: 1 to 150 letters, digits and `@.+-_`.
pub fn validate_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 150
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "Enter a valid username: 1 to 150 letters, digits and @/./+/-/_ characters.".into(),
        ))
    }
}

fn validate_password(password: &Secret) -> Result<()> {
    let len = password.expose().chars().count();
    if len == 0 || len > 1024 {
        return Err(Error::InvalidRequest(
            "A password must be 1 to 1024 characters long.".into(),
        ));
    }
    Ok(())
}
