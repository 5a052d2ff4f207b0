//! `/api/v1/api-token`: the caller's personal API token. Managing it takes an
//! access JWT; an API token may not mint or revoke API tokens.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::JwtAuth,
    error::{Errors, statuses},
    types::{NO_CACHE, NO_STORE, NoContent},
};
use crate::{error::Error, state::AppState};

/// A new API token: shown this once, never again.
#[derive(Object)]
pub struct NewApiToken {
    /// The token, for `Authorization: Bearer`. Keep it: tokend stores only its digest.
    pub token: String,
    /// Its first characters, to recognise it later.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

/// What is known of the caller's API token.
#[derive(Object)]
pub struct ApiTokenInfo {
    /// Its first characters.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Last authenticated use, to the minute.
    #[oai(nullable)]
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(ApiResponse)]
pub enum Created {
    /// The token; any previous one no longer works.
    #[oai(status = 201)]
    Created(
        Json<NewApiToken>,
        /// Always `no-store`: the answer holds the token.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache`.
        #[oai(header = "Pragma")]
        String,
    ),
}

pub struct ApiTokenApi;

#[OpenApi(prefix_path = "/api/v1/api-token", tag = "ApiTags::ApiToken")]
impl ApiTokenApi {
    /// Create or regenerate my API token
    ///
    /// A user has at most one; regenerating makes the old one stop working
    /// at once.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: JwtAuth,
    ) -> Result<Created, Errors<statuses::JwtOnlyPost>> {
        let (token, row) = state.api_tokens.create(auth.0.user.id).await?;
        Ok(Created::Created(
            Json(NewApiToken {
                token: token.expose().to_owned(),
                prefix: row.prefix,
                created_at: row.created_at,
            }),
            NO_STORE.into(),
            NO_CACHE.into(),
        ))
    }

    /// My API token
    ///
    /// Its metadata, never the token itself; 404 when there is none.
    #[oai(path = "/", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: JwtAuth,
    ) -> Result<Json<ApiTokenInfo>, Errors<statuses::JwtOnlyFind>> {
        let row = state
            .api_tokens
            .get(auth.0.user.id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(Json(ApiTokenInfo {
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }))
    }

    /// Revoke my API token
    #[oai(path = "/", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: JwtAuth,
    ) -> Result<NoContent, Errors<statuses::JwtOnly>> {
        state.api_tokens.revoke(auth.0.user.id).await?;
        Ok(NoContent::Done)
    }
}
