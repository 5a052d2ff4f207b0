//! Registered OAuth clients (resource servers), for administrators: the
//! same as `tokend client add|list|delete`.

use chrono::{DateTime, Utc};
use entity::oauth_clients;
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{Errors, statuses},
    json_string::JsonString,
    types::{NO_CACHE, NO_STORE, NoContent},
};
use crate::{clients::Permissions, state::AppState};

/// A client to register.
#[derive(Object)]
pub struct CreateClient {
    /// 1 to 64 letters, digits, `.`, `_` or `-`; unique.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub name: JsonString,
    /// May call introspection. Absent or `null`: `false`.
    #[oai(nullable)]
    pub introspect: Option<bool>,
    /// May call revocation as itself. Absent or `null`: `false`.
    #[oai(nullable)]
    pub revoke: Option<bool>,
}

/// A registered client.
#[derive(Object)]
pub struct ClientOut {
    pub name: String,
    /// Its `client_id`.
    pub client_id: String,
    /// May call introspection.
    pub introspect: bool,
    /// May call revocation as itself.
    pub revoke: bool,
    pub created_at: DateTime<Utc>,
}

impl From<oauth_clients::Model> for ClientOut {
    fn from(c: oauth_clients::Model) -> Self {
        ClientOut {
            name: c.name,
            client_id: c.client_id,
            introspect: c.can_introspect,
            revoke: c.can_revoke,
            created_at: c.created_at,
        }
    }
}

/// A client just registered, with its secret: shown this once, kept only
/// as a digest.
#[derive(Object)]
pub struct CreatedClientOut {
    #[oai(flatten)]
    pub client: ClientOut,
    /// The client secret.
    pub client_secret: String,
}

#[derive(ApiResponse)]
pub enum CreatedClient {
    /// The client was registered.
    #[oai(status = 201)]
    Created(
        Json<CreatedClientOut>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache`.
        #[oai(header = "Pragma")]
        String,
    ),
}

pub struct ClientsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Administration")]
impl ClientsApi {
    /// Register an OAuth client
    ///
    /// A resource server that authenticates to introspection and revocation
    /// with the answered `client_id` and `client_secret`
    /// (`client_secret_basic` or `client_secret_post`). The secret is shown
    /// once.
    #[oai(path = "/clients", method = "post")]
    async fn create_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateClient>,
    ) -> Result<CreatedClient, Errors<statuses::AdminBodyConflict>> {
        auth.admin()?;
        let body = body.0;
        let permissions = Permissions {
            introspect: body.introspect.unwrap_or(false),
            revoke: body.revoke.unwrap_or(false),
        };
        let new = state.clients.add(body.name.as_str(), permissions).await?;
        Ok(CreatedClient::Created(
            Json(CreatedClientOut {
                client: new.client.into(),
                client_secret: new.secret.expose().to_owned(),
            }),
            NO_STORE.into(),
            NO_CACHE.into(),
        ))
    }

    /// List OAuth clients
    #[oai(path = "/clients", method = "get")]
    async fn list_clients(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Vec<ClientOut>>, Errors<statuses::Admin>> {
        auth.admin()?;
        let clients = state.clients.list().await?;
        Ok(Json(clients.into_iter().map(Into::into).collect()))
    }

    /// Delete an OAuth client
    ///
    /// Its credentials stop working at once.
    #[oai(path = "/clients/:name", method = "delete")]
    async fn delete_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        name: Path<String>,
    ) -> Result<NoContent, Errors<statuses::AdminFind>> {
        auth.admin()?;
        state.clients.delete(&name.0).await?;
        Ok(NoContent::Done)
    }
}
