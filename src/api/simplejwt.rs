//! simplejwt's own routes (`/api/token/`, `/api/token/refresh/`,
//! `/api/token/verify/`, `/api/token/blacklist/`), with simplejwt 5's
//! bodies and answers, so that a frontend written for it changes only its
//! base URL. Off with `simplejwt_routes = false` (then 404).

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    client::client_info,
    drf::{CharField, DrfBody, FieldErrors, char_field},
    error::{ApiError, ErrorBody},
    types::{NoStore, Valid},
};
use crate::{error::Error, secret::Secret, state::AppState};

/// simplejwt's routes as the OpenAPI derive writes them: it drops the
/// trailing slash simplejwt's URLs have, so requests are routed here with
/// it taken off (and the spec given it back), and the paths without it are
/// not simplejwt's (404), as in Django.
pub const ROUTES: [&str; 4] = [
    "/api/token",
    "/api/token/refresh",
    "/api/token/verify",
    "/api/token/blacklist",
];

/// Where a request for `path` is routed: `Some(Ok(route))` for a
/// simplejwt URL (with its slash), `Some(Err(()))` for one of the routes
/// without the slash, `None` for anything else.
pub fn route_of(path: &str) -> Option<Result<&'static str, ()>> {
    if let Some(route) = ROUTES.iter().find(|r| path.strip_suffix('/') == Some(**r)) {
        return Some(Ok(route));
    }
    ROUTES.contains(&path).then_some(Err(()))
}

/// The spec with simplejwt's paths spelt as they are served: with the slash.
pub fn with_slashes(mut spec: serde_json::Value) -> serde_json::Value {
    if let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for route in ROUTES {
            if let Some(item) = paths.remove(route) {
                paths.insert(format!("{route}/"), item);
            }
        }
    }
    spec
}

/// Longest token tokend reads (a JWT is far shorter).
const MAX_TOKEN: usize = 16 * 1024;
/// Longest username and password, as in tokend's own obtain.
const MAX_USERNAME: usize = 150;
const MAX_PASSWORD: usize = 1024;

/// Username and password, as simplejwt's serializer reads them: text, or
/// a number read as its text.
#[derive(Object)]
pub struct SimpleCredentials {
    /// The user's name.
    pub username: CharField<MAX_USERNAME>,
    /// The user's password.
    pub password: CharField<MAX_PASSWORD>,
}

/// A refresh token.
#[derive(Object)]
pub struct SimpleRefresh {
    /// The refresh token.
    pub refresh: CharField,
}

/// A token to verify.
#[derive(Object)]
pub struct SimpleVerify {
    /// An access or refresh token.
    pub token: CharField,
}

/// simplejwt's pair: `{"refresh", "access"}`.
#[derive(Object)]
pub struct SimplePair {
    /// The refresh token.
    pub refresh: String,
    /// The access token.
    pub access: String,
}

/// simplejwt's refresh answer: `{"access"}`, plus `refresh` when rotation
/// is on.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SimpleRefreshed {
    /// The new access token.
    pub access: String,
    /// The new refresh token, when rotation is on.
    pub refresh: Option<String>,
}

/// The errors of simplejwt's routes.
#[derive(Debug, ApiResponse)]
pub enum DrfError {
    /// Django REST framework's field errors: each field's messages, as
    /// `{"password": ["This field is required."]}`; a body that is not an
    /// object is `non_field_errors`.
    #[oai(status = 400)]
    Invalid(Json<FieldErrors>),
    /// Bad credentials, or a token that is not valid:
    /// `{"detail": "Token is invalid or expired", "code": "token_not_valid"}`.
    #[oai(status = 401)]
    Unauthorized(
        Json<ErrorBody>,
        /// How to authenticate.
        #[oai(header = "WWW-Authenticate")]
        Option<String>,
    ),
    /// `simplejwt_routes` is off.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The body is larger than `max_body_size`.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is neither JSON, nor a form, nor `multipart/form-data`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many failed logins: try again after `Retry-After` seconds.
    #[oai(status = 429)]
    Throttled(
        Json<ErrorBody>,
        /// Seconds until the next attempt may succeed.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A bug in tokend: the cause is logged.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached in time: try again after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

impl From<Error> for DrfError {
    fn from(err: Error) -> Self {
        match ApiError::from(err) {
            ApiError::Unauthorized(body, challenge) => DrfError::Unauthorized(body, challenge),
            ApiError::Throttled(body, retry_after) => DrfError::Throttled(body, retry_after),
            ApiError::Unavailable(body, retry_after) => DrfError::Unavailable(body, retry_after),
            ApiError::NotFound(body) => DrfError::NotFound(body),
            ApiError::PayloadTooLarge(body) => DrfError::PayloadTooLarge(body),
            ApiError::UnsupportedMediaType(body) => DrfError::UnsupportedMediaType(body),
            ApiError::BadRequest(Json(body))
            | ApiError::Forbidden(Json(body))
            | ApiError::Conflict(Json(body)) => DrfError::Invalid(Json(FieldErrors::from([(
                "non_field_errors".to_owned(),
                vec![body.detail],
            )]))),
            ApiError::Internal(body) => DrfError::Internal(body),
        }
    }
}

/// The required text fields `names` of a body, or DRF's errors for it.
fn read<const N: usize>(
    body: DrfBody<impl Sized>,
    names: [(&str, usize); N],
) -> Result<[String; N], DrfError> {
    let fields = body.fields.map_err(|e| DrfError::Invalid(Json(e)))?;
    let mut errors = FieldErrors::new();
    let values = names.map(|(name, max)| char_field(&fields, name, max, &mut errors));
    if !errors.is_empty() {
        return Err(DrfError::Invalid(Json(errors)));
    }
    Ok(values.map(Option::unwrap_or_default))
}

pub struct SimpleJwtApi;

#[OpenApi(prefix_path = "/api/token", tag = "ApiTags::SimpleJwt")]
impl SimpleJwtApi {
    /// Obtain a pair (simplejwt)
    ///
    /// simplejwt's `TokenObtainPairView`: `{"username", "password"}` for
    /// `{"refresh", "access"}`.
    #[oai(path = "/", method = "post")]
    async fn obtain(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: DrfBody<SimpleCredentials>,
    ) -> Result<NoStore<SimplePair>, DrfError> {
        let [username, password] = read(
            body,
            [("username", MAX_USERNAME), ("password", MAX_PASSWORD)],
        )?;
        let client = client_info(req, &state.http.trusted_proxies);
        let pair = state
            .users
            .sign_in(&username, Secret::new(password), client)
            .await?;
        Ok(NoStore::new(SimplePair {
            refresh: pair.refresh.text,
            access: pair.access.text,
        }))
    }

    /// Refresh (simplejwt)
    ///
    /// simplejwt's `TokenRefreshView`: `{"refresh"}` for `{"access"}`, and
    /// a new `refresh` when rotation is on.
    #[oai(path = "/refresh/", method = "post")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: DrfBody<SimpleRefresh>,
    ) -> Result<NoStore<SimpleRefreshed>, DrfError> {
        let [refresh] = read(body, [("refresh", MAX_TOKEN)])?;
        let client = client_info(req, &state.http.trusted_proxies);
        let refreshed = state.registry.refresh(&refresh, client).await?;
        Ok(NoStore::new(SimpleRefreshed {
            access: refreshed.access.text,
            refresh: refreshed.refresh.map(|r| r.text),
        }))
    }

    /// Verify (simplejwt)
    ///
    /// simplejwt's `TokenVerifyView`: `{"token"}`, answered `{}` when it is
    /// valid and active in the registry.
    #[oai(path = "/verify/", method = "post")]
    async fn verify(
        &self,
        state: Data<&AppState>,
        body: DrfBody<SimpleVerify>,
    ) -> Result<Json<Valid>, DrfError> {
        let [token] = read(body, [("token", MAX_TOKEN)])?;
        state.registry.check(&token, None).await?;
        Ok(Json(Valid {}))
    }

    /// Blacklist (simplejwt)
    ///
    /// simplejwt's `TokenBlacklistView`: `{"refresh"}`, answered `{}`; the
    /// refresh token's whole tree is expired (a log-out).
    #[oai(path = "/blacklist/", method = "post")]
    async fn blacklist(
        &self,
        state: Data<&AppState>,
        body: DrfBody<SimpleRefresh>,
    ) -> Result<Json<Valid>, DrfError> {
        let [refresh] = read(body, [("refresh", MAX_TOKEN)])?;
        state.registry.expire_refresh_tree(&refresh).await?;
        Ok(Json(Valid {}))
    }
}
