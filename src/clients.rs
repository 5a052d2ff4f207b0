//! Registered OAuth clients: resource servers that authenticate to
//! introspection and revocation (RFC 7662, RFC 7009) with a client id and
//! secret, by `client_secret_basic` or `client_secret_post`. The secret is
//! shown once and kept only as a SHA-256 digest, compared in constant time.

use entity::oauth_clients;
use rand::{Rng, distributions::Alphanumeric, rngs::OsRng};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{
    api_tokens::digest,
    clock::SharedClock,
    error::{Error, Result},
    secret::Secret,
    store::ClientStore,
};

/// What a client id starts with.
pub const CLIENT_ID_PREFIX: &str = "tkc_";
/// What a client secret starts with.
pub const SECRET_PREFIX: &str = "tks_";

/// What a client may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    pub introspect: bool,
    pub revoke: bool,
}

/// A client just registered: its row and its secret, to be shown once.
#[derive(Debug)]
pub struct NewClient {
    pub client: oauth_clients::Model,
    pub secret: Secret,
}

fn random(prefix: &str, len: usize) -> String {
    let body: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

/// A client's name: 1 to 64 letters, digits, `.`, `_` or `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "A client name is 1 to 64 letters, digits, `.`, `_` or `-`.".into(),
        ))
    }
}

/// The registered clients.
#[derive(Clone, Debug)]
pub struct Clients {
    store: ClientStore,
    clock: SharedClock,
}

impl Clients {
    pub fn new(store: ClientStore, clock: SharedClock) -> Self {
        Clients { store, clock }
    }

    /// Registers a client; its secret is in the answer and nowhere else.
    pub async fn add(&self, name: &str, permissions: Permissions) -> Result<NewClient> {
        check_name(name)?;
        let secret = Secret::new(random(SECRET_PREFIX, 40));
        let client = oauth_clients::Model {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            client_id: random(CLIENT_ID_PREFIX, 20),
            secret_digest: digest(secret.expose()),
            can_introspect: permissions.introspect,
            can_revoke: permissions.revoke,
            created_at: self.clock.now(),
        };
        let client = self.store.insert(client).await?;
        Ok(NewClient { client, secret })
    }

    pub async fn list(&self) -> Result<Vec<oauth_clients::Model>> {
        self.store.list().await
    }

    /// Deletes a client by name: its credentials stop working at once.
    pub async fn delete(&self, name: &str) -> Result<()> {
        if self.store.delete_by_name(name).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// The client these credentials are; `InvalidClient` for an unknown id
    /// or a wrong secret alike.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<oauth_clients::Model> {
        // The digest is computed whether or not the id is known, and
        // compared in constant time.
        let presented = digest(secret);
        let client = if client_id.starts_with(CLIENT_ID_PREFIX) && client_id.len() <= 64 {
            self.store.find_by_client_id(client_id).await?
        } else {
            None
        };
        let expected = client
            .as_ref()
            .map_or_else(|| digest(""), |c| c.secret_digest.clone());
        let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
        match client {
            Some(client) if matches => Ok(client),
            _ => Err(Error::InvalidClient),
        }
    }
}
