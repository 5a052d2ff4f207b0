//! `GET /api/v1/tokens`, `POST /api/v1/tokens/{id}/expire`: the caller's own
//! tokens (their sessions).

use poem::web::Data;
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{Errors, statuses},
    types::{CursorParam, Expired, StateParam, TokenPage, page_query},
};
use crate::{error::Error, state::AppState};

/// Whether to expire the token's whole tree.
#[derive(Object)]
pub struct ExpireOne {
    /// Also expire every token connected to it through parent links
    /// (absent or `null`: `false`).
    #[oai(default, nullable)]
    pub affect_tree: bool,
}

pub struct TokensApi;

#[OpenApi(prefix_path = "/api/v1/tokens", tag = "ApiTags::Tokens")]
impl TokensApi {
    /// My tokens
    ///
    /// The caller's tokens, newest first, a page at a time.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `active` (default), `expired` or `all`.
        #[oai(name = "state")]
        token_state: Query<Option<StateParam>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<CursorParam>>,
    ) -> Result<Json<TokenPage>, Errors<statuses::BearerQuery>> {
        let query = page_query(Some(auth.0.user.id), token_state.0, limit.0, cursor.0);
        Ok(Json(state.registry.list(&query).await?.into()))
    }

    /// Expire one of my tokens
    ///
    /// Expires the token (or its whole tree). Another user's token, or an id
    /// that is not a UUID, is 404.
    #[oai(path = "/:id/expire", method = "post")]
    async fn expire(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The token's registry id.
        id: Path<String>,
        body: Json<ExpireOne>,
    ) -> Result<Json<Expired>, Errors<statuses::BearerBodyFind>> {
        let id: Uuid = id.0.parse().map_err(|_| Error::NotFound)?;
        let expired = state
            .registry
            .expire_own(auth.0.user.id, id, body.0.affect_tree)
            .await?;
        Ok(Json(Expired { expired }))
    }
}
