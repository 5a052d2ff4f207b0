//! Signing in: a login under the throttle (with a password, or with Basic
//! credentials), and a sign-in's token pair.

use entity::users;

use super::{Users, normalise};
use crate::{
    api_tokens,
    error::{Error, Result},
    registry::{TokenPair, pipeline::ClientInfo},
    secret::Secret,
    telemetry::{self, AUDIT},
};

impl Users {
    /// Signs in with a password: the login under the throttle, then a token
    /// pair (and `last_login`, when recorded).
    pub async fn sign_in(
        &self,
        username: &str,
        password: Secret,
        client: ClientInfo,
    ) -> Result<TokenPair> {
        let address = client.address.clone().unwrap_or_default();
        let attempt = self.authenticate(username, password);
        self.throttled(username, &address, "password", attempt, async |user| {
            let pair = self.registry.obtain(&user, client).await?;
            if self.update_last_login {
                self.store
                    .touch_last_login(user.id, self.clock.now())
                    .await?;
            }
            Ok(pair)
        })
        .await
    }

    /// A login with a password: refused with 429 while the username or the
    /// address is throttled; a failure counts against both.
    pub async fn login(
        &self,
        username: &str,
        password: Secret,
        address: &str,
    ) -> Result<users::Model> {
        let attempt = self.authenticate(username, password);
        self.throttled(username, address, "password", attempt, async |user| {
            Ok(user)
        })
        .await
    }

    /// A login with Basic credentials (the container registry's): the
    /// user's password, or their own API token with their username. Failures
    /// count toward the login throttle like failed sign-ins. The one place
    /// that decides what a Basic password may be.
    pub async fn login_basic(
        &self,
        username: &str,
        password: Secret,
        address: &str,
    ) -> Result<users::Model> {
        let username = &normalise(username);
        let attempt = async {
            if !api_tokens::well_formed(password.expose()) {
                return self.authenticate(username, password).await;
            }
            match self.api_tokens.authenticate(password.expose()).await {
                Ok(user) if user.username == *username => Ok(user),
                Ok(_) | Err(Error::TokenNotValid) => Err(Error::NoActiveAccount),
                Err(e) => Err(e),
            }
        };
        self.throttled(username, address, "basic", attempt, async |user| Ok(user))
            .await
    }

    /// Runs a login `attempt` under the throttle: refused with 429 while the
    /// username or the address has used up its checks; a `NoActiveAccount`
    /// failure counts against both, a success forgets the username's
    /// earlier attempts and runs `then` on the user meanwhile. (A sign-in's
    /// registration and the forgetting are then queued together, and on
    /// SQLite the writer commits them in one batch instead of two.)
    async fn throttled<T>(
        &self,
        username: &str,
        address: &str,
        method: &'static str,
        attempt: impl Future<Output = Result<users::Model>>,
        then: impl AsyncFnOnce(users::Model) -> Result<T>,
    ) -> Result<T> {
        let check = match self.throttle.begin(username, address).await {
            Ok(check) => check,
            Err(e) => {
                let outcome = if matches!(e, Error::Throttled { .. }) {
                    "throttled"
                } else {
                    "error"
                };
                telemetry::metrics::login(outcome);
                return Err(e);
            }
        };
        match attempt.await {
            Ok(user) => {
                telemetry::metrics::login("ok");
                tracing::info!(
                    target: AUDIT,
                    event = "login_succeeded",
                    username = ?user.username,
                    user_id = %user.id,
                    address,
                    method,
                    "sign-in succeeded"
                );
                let (forgotten, result) = tokio::join!(self.throttle.succeeded(check), then(user));
                forgotten?;
                result
            }
            Err(Error::NoActiveAccount) => {
                self.throttle.failed(check).await?;
                telemetry::metrics::login("failed");
                tracing::warn!(
                    target: AUDIT,
                    event = "login_failed",
                    username = ?username,
                    address,
                    method,
                    "sign-in failed"
                );
                Err(Error::NoActiveAccount)
            }
            Err(e) => {
                telemetry::metrics::login("error");
                // Not the password's fault: it does not count.
                if let Err(withdraw) = self.throttle.abandoned(check).await {
                    tracing::warn!(error = %withdraw, "withdrawing a login attempt failed");
                }
                Err(e)
            }
        }
    }

    /// The active user with this username and password. An unknown user, a
    /// wrong password and an inactive user give the same error, after the
    /// same work.
    async fn authenticate(&self, username: &str, password: Secret) -> Result<users::Model> {
        let user = self.find(username).await?;
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.clone(), |u| u.password_hash.clone());
        let matches = self.passwords.verify(hash, password.clone()).await?;
        match user {
            Some(user) if matches && user.is_active => Ok(self.upgrade(user, password).await),
            _ => Err(Error::NoActiveAccount),
        }
    }
}
