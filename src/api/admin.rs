//! Administration: users, their tokens, the registry. Administrators only.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, param::Query, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{Errors, statuses},
    json_string::JsonString,
    types::{CursorParam, Expired, NoContent, StateParam, TokenPage, UserOut, page_query},
};
use crate::{
    auth::Principal,
    secret::Secret,
    state::AppState,
    telemetry::AUDIT,
    users::{LastAdmin, NewUser},
};

/// A new user.
#[derive(Object)]
pub struct CreateUser {
    /// 1 to 150 letters, digits and `@.+-_` (Unicode letters and digits, as
    /// Django allows them).
    #[oai(validator(min_length = 1, max_length = 150))]
    pub username: JsonString,
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: JsonString,
    /// Absent or `null`: `false`.
    #[oai(nullable)]
    pub is_admin: Option<bool>,
    /// Absent or `null`: `true`.
    #[oai(nullable)]
    pub is_active: Option<bool>,
}

/// Flags to change; absent (or `null`) ones stay.
#[derive(Object)]
pub struct PatchUser {
    #[oai(nullable)]
    pub is_active: Option<bool>,
    #[oai(nullable)]
    pub is_admin: Option<bool>,
}

/// A new password.
#[derive(Object)]
pub struct NewPassword {
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: JsonString,
}

/// What to archive.
#[derive(Object)]
pub struct ArchiveRequest {
    /// Archive tokens that died before this instant (default and at most: now).
    #[oai(nullable)]
    pub expired_before: Option<DateTime<Utc>>,
}

/// How many tokens were archived.
#[derive(Object)]
pub struct Archived {
    pub archived: u64,
}

#[derive(ApiResponse)]
pub enum CreatedUser {
    /// The user was created.
    #[oai(status = 201)]
    Created(Json<UserOut>),
}

pub struct AdminApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Administration")]
impl AdminApi {
    /// Create a user
    #[oai(path = "/users", method = "post")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateUser>,
    ) -> Result<CreatedUser, Errors<statuses::AdminBodyConflict>> {
        let admin = auth.admin()?;
        let body = body.0;
        let user = state
            .users
            .create(NewUser {
                username: body.username.into_inner(),
                password: Secret::new(body.password.into_inner()),
                is_admin: body.is_admin.unwrap_or(false),
                is_active: body.is_active.unwrap_or(true),
            })
            .await?;
        audit(&admin, "user_created", &user.username);
        Ok(CreatedUser::Created(Json(user.into())))
    }

    /// List users
    #[oai(path = "/users", method = "get")]
    async fn list_users(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Vec<UserOut>>, Errors<statuses::Admin>> {
        auth.admin()?;
        let users = state.users.list().await?;
        Ok(Json(users.into_iter().map(Into::into).collect()))
    }

    /// Change a user's flags
    ///
    /// An inactive user cannot obtain tokens and all their tokens are refused
    /// until they are active again.
    #[oai(path = "/users/:username", method = "patch")]
    async fn patch_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        body: Json<PatchUser>,
    ) -> Result<Json<UserOut>, Errors<statuses::AdminBodyFind>> {
        let admin = auth.admin()?;
        let user = state
            .users
            .update(
                &username.0,
                body.0.is_active,
                body.0.is_admin,
                LastAdmin::Keep,
            )
            .await?;
        let action = match (body.0.is_active, body.0.is_admin) {
            (Some(false), _) => "user_deactivated",
            (Some(true), _) => "user_activated",
            (None, Some(true)) => "user_promoted",
            (None, Some(false)) => "user_demoted",
            (None, None) => "user_updated",
        };
        audit(&admin, action, &user.username);
        Ok(Json(user.into()))
    }

    /// Delete a user
    ///
    /// Every token of theirs stops working at once; a new user with the
    /// same name inherits none of them.
    #[oai(path = "/users/:username", method = "delete")]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
    ) -> Result<NoContent, Errors<statuses::AdminFind>> {
        let admin = auth.admin()?;
        state.users.delete(&username.0, LastAdmin::Keep).await?;
        audit(&admin, "user_deleted", &username.0);
        Ok(NoContent::Done)
    }

    /// Set a user's password
    ///
    /// Also expires every token of theirs.
    #[oai(path = "/users/:username/password", method = "post")]
    async fn set_password(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        body: Json<NewPassword>,
    ) -> Result<NoContent, Errors<statuses::AdminBodyFind>> {
        let admin = auth.admin()?;
        state
            .users
            .set_password(&username.0, Secret::new(body.0.password.into_inner()))
            .await?;
        audit(&admin, "password_set", &username.0);
        Ok(NoContent::Done)
    }

    /// Revoke a user's API token
    #[oai(path = "/users/:username/api-token", method = "delete")]
    async fn revoke_api_token(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
    ) -> Result<NoContent, Errors<statuses::AdminFind>> {
        let admin = auth.admin()?;
        state.users.revoke_api_token(&username.0).await?;
        audit(&admin, "api_token_revoked", &username.0);
        Ok(NoContent::Done)
    }

    /// Expire all of a user's tokens
    ///
    /// Every access, refresh and registry token of theirs, and their API token.
    #[oai(path = "/users/:username/tokens/expire", method = "post")]
    async fn expire_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
    ) -> Result<Json<Expired>, Errors<statuses::AdminFindPost>> {
        let admin = auth.admin()?;
        let expired = state.users.expire_all(&username.0).await?;
        audit(&admin, "user_tokens_expired", &username.0);
        Ok(Json(Expired { expired }))
    }

    /// Browse the registry
    ///
    /// Everybody's tokens, or one user's, newest first.
    #[oai(path = "/registry/tokens", method = "get")]
    async fn browse(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only this user's tokens.
        username: Query<Option<String>>,
        /// `active` (default), `expired` or `all`.
        #[oai(name = "state")]
        token_state: Query<Option<StateParam>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<CursorParam>>,
    ) -> Result<Json<TokenPage>, Errors<statuses::AdminQueryFind>> {
        auth.admin()?;
        let user_id = match username.0 {
            Some(name) => Some(state.users.get(&name).await?.id),
            None => None,
        };
        let query = page_query(user_id, token_state.0, limit.0, cursor.0);
        Ok(Json(state.registry.list(&query).await?.into()))
    }

    /// Archive dead tokens
    ///
    /// Removes tokens that are no longer active and died before
    /// `expired_before` (default: now). A rotated refresh token stays until
    /// its natural expiry is past too, so that its reuse is still caught.
    #[oai(path = "/registry/archive", method = "post")]
    async fn archive(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<ArchiveRequest>,
    ) -> Result<Json<Archived>, Errors<statuses::AdminBody>> {
        let admin = auth.admin()?;
        let archived = state.archive(body.0.expired_before).await?;
        audit(&admin, "registry_archived", "");
        Ok(Json(Archived { archived }))
    }
}

/// An administrator's act, for the audit log: who did what to whom.
fn audit(admin: &Principal, action: &'static str, username: &str) {
    tracing::info!(
        target: AUDIT,
        event = "admin_action",
        action,
        admin = ?admin.user.username,
        admin_id = %admin.user.id,
        username = ?username,
        "administrator action"
    );
}
