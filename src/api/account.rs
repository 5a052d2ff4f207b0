//! `GET /api/v1/me`, `POST /api/v1/me/password`: the caller's own account.

use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::{BearerAuth, JwtAuth},
    client::client_info,
    error::{Errors, statuses},
    json_string::JsonString,
    types::{Expired, UserOut},
};
use crate::{secret::Secret, state::AppState};

/// A password change: the current password and the new one.
#[derive(Object)]
pub struct ChangePassword {
    /// The password the account has now.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: JsonString,
    /// The new password, 1 to 1024 characters.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub new_password: JsonString,
}

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

    /// Change my password
    ///
    /// Takes the current password and the new one. A wrong current password
    /// is 400 and counts as a failed login toward the login throttle (429
    /// once it is used up). Every other session of the caller is expired and
    /// their API token revoked; the session of this call (the tree of its
    /// access token) stays. Answers how many tokens were expired. An access
    /// JWT only: an API token gets 403.
    #[oai(path = "/me/password", method = "post")]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: JwtAuth,
        body: Json<ChangePassword>,
    ) -> Result<Json<Expired>, Errors<statuses::OwnPassword>> {
        let JwtAuth(principal) = auth;
        let address = client_info(req, &state.http.trusted_proxies)
            .address
            .unwrap_or_default();
        let expired = state
            .users
            .change_own_password(
                principal.user,
                principal.token_id,
                Secret::new(body.0.current_password.into_inner()),
                Secret::new(body.0.new_password.into_inner()),
                &address,
            )
            .await?;
        Ok(Json(Expired { expired }))
    }
}
