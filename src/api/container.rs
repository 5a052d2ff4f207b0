//! `GET|POST /token`: the container registry token server, in the wire
//! format of the Docker token authentication spec (`token.md`) and its OAuth2
//! variant (`oauth.md`).

use chrono::SecondsFormat;
use poem::{Request, http::header, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi, SecurityScheme,
    auth::Basic,
    param::Query,
    payload::{Form, Json},
};
use serde::Deserialize;

use super::{
    ApiTags,
    client::client_info,
    error::{ApiError, ErrorBody, Errors, statuses},
};
use crate::{
    container::{self, ContainerGrant, OAuthError, TokenRequest, parse_scopes},
    error::Error,
    secret::Secret,
    state::AppState,
};

/// What clients are told when their Basic credentials fail.
const BASIC_CHALLENGE: &str = "Basic realm=\"tokend\"";

/// `Authorization: Basic` with a username and password.
#[derive(SecurityScheme)]
#[oai(ty = "basic", rename = "RegistryBasic")]
pub struct ContainerBasic(Basic);

/// Basic credentials, or none at all (an anonymous caller).
#[derive(SecurityScheme)]
pub enum ContainerAuth {
    ContainerBasic(ContainerBasic),
    #[oai(fallback)]
    Anonymous,
}

/// A registry token (`token.md`).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RegistryToken {
    /// The registry token (a JWT), for `Authorization: Bearer` at the registry.
    pub token: String,
    /// The same token, under its OAuth2 name.
    pub access_token: String,
    /// Seconds the token lives.
    pub expires_in: u64,
    /// When the token was issued (RFC 3339).
    pub issued_at: String,
    /// A refresh token for the `POST` refresh grant, when `offline_token=true`
    /// was asked by an authenticated caller.
    pub refresh_token: Option<String>,
}

#[derive(ApiResponse)]
pub enum RegistryTokenAnswer {
    /// A registry token granting the asked actions the access rules allow.
    #[oai(status = 200)]
    Ok(
        Json<RegistryToken>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// The OAuth2 token request (`oauth.md`), form-encoded.
#[derive(Object, Deserialize)]
pub struct OAuthRequest {
    /// `password` or `refresh_token`.
    pub grant_type: String,
    /// The registry's service name; one of `registry_service`.
    pub service: String,
    /// Who the client is (`docker`, `containers/image`, …).
    pub client_id: String,
    /// `offline` to get a refresh token with a password grant.
    pub access_type: Option<String>,
    /// Space-separated scopes, like `repository:samalba/my-app:pull,push`.
    pub scope: Option<String>,
    /// The refresh token, for `grant_type=refresh_token`.
    pub refresh_token: Option<String>,
    /// The username, for `grant_type=password`.
    pub username: Option<String>,
    /// The password, for `grant_type=password`.
    pub password: Option<String>,
}

/// A registry token from the OAuth2 endpoint.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OAuthToken {
    /// The registry token (a JWT).
    pub access_token: String,
    /// The scopes granted, space-separated: those asked, less what the
    /// access rules refuse.
    pub scope: String,
    /// Seconds the token lives.
    pub expires_in: u64,
    /// When the token was issued (RFC 3339).
    pub issued_at: String,
    /// A refresh token, on a password grant with `access_type=offline`. It
    /// is never rotated: the refresh grant takes it again and again.
    pub refresh_token: Option<String>,
}

/// An OAuth2 error: the usual body plus RFC 6749's `error`.
#[derive(Debug, Clone, Object)]
pub struct OAuthErrorBody {
    /// A human sentence saying what went wrong.
    pub detail: String,
    /// tokend's machine code (`invalid_request`, `no_active_account`,
    /// `token_not_valid`, …).
    pub code: String,
    /// The RFC 6749 error: `invalid_request`, `invalid_grant`,
    /// `unsupported_grant_type`, `invalid_scope`, …
    pub error: String,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "oauth_bad_request")]
pub enum OAuthAnswer {
    /// A registry token.
    #[oai(status = 200)]
    Ok(
        Json<OAuthToken>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
    /// A missing field, an unknown grant type or service, a malformed scope.
    #[oai(status = 400)]
    BadRequest(Json<OAuthErrorBody>),
    /// Bad credentials, or a refresh token that is not valid for this service.
    #[oai(status = 401)]
    Unauthorized(
        Json<OAuthErrorBody>,
        /// How to authenticate.
        #[oai(header = "WWW-Authenticate")]
        Option<String>,
    ),
    /// The body is not form-encoded.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<OAuthErrorBody>),
    /// Too many failed logins: try again after `Retry-After` seconds.
    #[oai(status = 429)]
    Throttled(
        Json<OAuthErrorBody>,
        /// Seconds until the next attempt may succeed.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A bug in tokend: the cause is logged.
    #[oai(status = 500)]
    Internal(Json<OAuthErrorBody>),
    /// The database cannot be reached in time.
    #[oai(status = 503)]
    Unavailable(Json<OAuthErrorBody>),
}

pub struct ContainerApi;

#[OpenApi(tag = "ApiTags::ContainerRegistry")]
impl ContainerApi {
    /// Registry token
    ///
    /// The token server of the Docker registry token authentication spec. A
    /// registry configured with `auth.token.realm` pointing here sends its
    /// clients for a token granting the asked `scope`s. Without credentials
    /// the caller is anonymous (`sub` is empty); bad credentials are 401.
    /// Scopes the access rules refuse are left out of the token.
    #[oai(path = "/token", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: ContainerAuth,
        /// The registry's service name; one of `registry_service`.
        service: Query<String>,
        /// A resource and actions, `type[(class)]:name:action[,action]`; repeat
        /// for several. Empty ones are ignored.
        #[oai(default)]
        scope: Query<Vec<String>>,
        /// The account the client believes it is; must be the Basic username
        /// when both are given.
        account: Query<Option<String>>,
        /// `true` to also get a refresh token (authenticated callers only).
        offline_token: Query<Option<String>>,
        /// Who the client is; informational.
        #[oai(name = "client_id")]
        _client_id: Query<Option<String>>,
    ) -> Result<RegistryTokenAnswer, Errors<statuses::ContainerToken>> {
        let scopes = parse_scopes(scope.0.iter().map(String::as_str))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let credentials = match auth {
            ContainerAuth::ContainerBasic(ContainerBasic(basic)) => {
                Some((basic.username, Secret::new(basic.password)))
            }
            // A header that is not Basic credentials is bad credentials, not
            // an anonymous call.
            ContainerAuth::Anonymous if req.headers().contains_key(header::AUTHORIZATION) => {
                return Err(challenge(Error::NoActiveAccount).into());
            }
            ContainerAuth::Anonymous => None,
        };
        let request = TokenRequest {
            credentials,
            account: account.0,
            service: service.0,
            scopes,
            offline: offline_token
                .0
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            client: client_info(req, &state.http.trusted_proxies),
        };
        let grant = state.container.token(request).await.map_err(challenge)?;
        Ok(RegistryTokenAnswer::Ok(
            Json(RegistryToken {
                access_token: grant.token.text.clone(),
                expires_in: grant.token.expires_in.unwrap_or_default(),
                issued_at: rfc3339(&grant),
                refresh_token: grant.refresh.map(|r| r.text),
                token: grant.token.text,
            }),
            "no-store".into(),
        ))
    }

    /// Registry token (OAuth2)
    ///
    /// The OAuth2 variant of the token server: `grant_type=password` with
    /// `username` and `password` (plus `access_type=offline` for a refresh
    /// token), or `grant_type=refresh_token` with a refresh token this
    /// endpoint issued for the same `service`. `client_id` is required.
    #[oai(path = "/token", method = "post")]
    async fn oauth_token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Form<OAuthRequest>,
    ) -> OAuthAnswer {
        let form = body.0;
        let request = container::OAuthRequest {
            grant_type: form.grant_type,
            service: form.service,
            client_id: form.client_id,
            scope: form.scope,
            access_type: form.access_type,
            username: form.username,
            password: form.password.map(Secret::new),
            refresh_token: form.refresh_token.map(Secret::new),
            client: client_info(req, &state.http.trusted_proxies),
        };
        match state.container.oauth_token(request).await {
            Ok(grant) => OAuthAnswer::Ok(
                Json(OAuthToken {
                    access_token: grant.token.text.clone(),
                    scope: grant.scope(),
                    expires_in: grant.token.expires_in.unwrap_or_default(),
                    issued_at: rfc3339(&grant),
                    refresh_token: grant.refresh.map(|r| r.text),
                }),
                "no-store".into(),
            ),
            Err(e) => e.into(),
        }
    }
}

impl From<OAuthError> for OAuthAnswer {
    fn from(e: OAuthError) -> Self {
        let oauth_body = |body: ErrorBody| {
            Json(OAuthErrorBody {
                detail: body.detail,
                code: body.code,
                error: e.oauth.to_owned(),
            })
        };
        match ApiError::from(e.error) {
            ApiError::Unauthorized(Json(body), _) => {
                let challenge = (body.code == "no_active_account").then(|| BASIC_CHALLENGE.into());
                OAuthAnswer::Unauthorized(oauth_body(body), challenge)
            }
            ApiError::Unavailable(Json(body)) => OAuthAnswer::Unavailable(oauth_body(body)),
            ApiError::Internal(Json(body)) => OAuthAnswer::Internal(oauth_body(body)),
            ApiError::Throttled(Json(body), retry_after) => {
                OAuthAnswer::Throttled(oauth_body(body), retry_after)
            }
            ApiError::BadRequest(Json(body))
            | ApiError::Forbidden(Json(body))
            | ApiError::NotFound(Json(body))
            | ApiError::Conflict(Json(body))
            | ApiError::PayloadTooLarge(Json(body))
            | ApiError::UnsupportedMediaType(Json(body)) => {
                OAuthAnswer::BadRequest(oauth_body(body))
            }
        }
    }
}

/// A body poem-openapi could not take: not form-encoded, or not a form.
fn oauth_bad_request(err: poem::Error) -> OAuthAnswer {
    let body = |detail: &str, code: &str| {
        Json(OAuthErrorBody {
            detail: detail.into(),
            code: code.into(),
            error: "invalid_request".into(),
        })
    };
    if err.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return OAuthAnswer::UnsupportedMediaType(body(
            "Unsupported media type: send application/x-www-form-urlencoded.",
            "unsupported_media_type",
        ));
    }
    // serde_urlencoded's message names the field: "missing field `service`".
    let detail = format!(
        "The body is not a valid form ({}): `grant_type`, `service` and `client_id` are required, each field may be given once.",
        err.to_string().lines().next().unwrap_or_default()
    );
    OAuthAnswer::BadRequest(body(&detail, "invalid_request"))
}

/// A 401 for bad Basic credentials says how to authenticate.
fn challenge(err: Error) -> ApiError {
    match ApiError::from(err) {
        ApiError::Unauthorized(body, _) => {
            ApiError::Unauthorized(body, Some(BASIC_CHALLENGE.into()))
        }
        other => other,
    }
}

fn rfc3339(grant: &ContainerGrant) -> String {
    grant.issued_at().to_rfc3339_opts(SecondsFormat::Secs, true)
}
