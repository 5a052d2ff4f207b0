//! `GET /api/v1/me`: the caller's own account.

use poem_openapi::{Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{Errors, statuses},
    types::UserOut,
};

/// A user account, and how this call was authenticated.
#[derive(Object)]
pub struct Me {
    #[oai(flatten)]
    pub user: UserOut,
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
    async fn me(&self, auth: BearerAuth) -> Result<Json<Me>, Errors<statuses::Bearer>> {
        let BearerAuth(principal) = auth;
        Ok(Json(Me {
            auth: principal.kind.as_str().into(),
            user: principal.user.into(),
        }))
    }
}
