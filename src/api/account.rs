//! `GET /api/v1/me`: the caller's own account.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, OpenApi, payload::Json};
use uuid::Uuid;

use super::{ApiTags, error::ApiError};
use crate::auth::BearerAuth;

/// A user account.
#[derive(Object)]
pub struct Me {
    /// The user's id.
    pub id: Uuid,
    pub username: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    /// The last successful obtain, when `update_last_login` is on; `null`
    /// before the first one.
    #[oai(nullable)]
    pub last_login: Option<DateTime<Utc>>,
    /// What authenticated this call: `jwt` or `api_token`.
    pub auth: String,
}

pub struct AccountApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Account")]
impl AccountApi {
    /// Who am I
    ///
    /// The account behind the Bearer token of this call.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: BearerAuth) -> Result<Json<Me>, ApiError> {
        let BearerAuth(principal) = auth;
        let user = principal.user;
        Ok(Json(Me {
            id: user.id,
            username: user.username,
            is_admin: user.is_admin,
            is_active: user.is_active,
            created_at: user.created_at,
            last_login: user.last_login,
            auth: principal.kind.as_str().into(),
        }))
    }
}
