//! `GET|POST /token`: the container registry token server, in the wire
//! format of the Docker token authentication spec (`token.md`) and its OAuth2
//! variant (`oauth.md`).

use chrono::SecondsFormat;
use poem::{Request, http::header, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi, SecurityScheme, auth::Basic, param::Query, payload::Json,
};
use serde::Deserialize;

use super::{
    ApiTags,
    client::client_info,
    container_errors::{Failure, OAuthErrorBody, RegistryErrorBody, parse_failure},
    error::ApiError,
    form::{JoinedForm, JoinedFormBody},
};
use crate::{
    container::{self, ContainerGrant, OAuthError, TokenRequest, parse_scopes},
    error::Error,
    secret::Secret,
    state::AppState,
};

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
#[oai(bad_request_handler = "registry_bad_request")]
pub enum RegistryTokenAnswer {
    /// A registry token granting the asked actions the access rules allow.
    #[oai(status = 200)]
    Ok(
        Json<RegistryToken>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
    /// A missing or unknown service, a malformed scope.
    #[oai(status = 400)]
    BadRequest(Json<RegistryErrorBody>),
    /// Bad credentials.
    #[oai(status = 401)]
    Unauthorized(
        Json<RegistryErrorBody>,
        /// How to authenticate.
        #[oai(header = "WWW-Authenticate")]
        Option<String>,
    ),
    /// Too many failed logins: try again after `Retry-After` seconds.
    #[oai(status = 429)]
    Throttled(
        Json<RegistryErrorBody>,
        /// Seconds until the next attempt may succeed.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A bug in tokend: the cause is logged.
    #[oai(status = 500)]
    Internal(Json<RegistryErrorBody>),
    /// The database cannot be reached in time: try again after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(
        Json<RegistryErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
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
    /// Space-separated scopes, like `repository:samalba/my-app:pull,push`;
    /// the field may be repeated (containers/image sends one per repository).
    pub scope: Option<String>,
    /// The refresh token, for `grant_type=refresh_token`.
    pub refresh_token: Option<String>,
    /// The username, for `grant_type=password`.
    pub username: Option<String>,
    /// The password, for `grant_type=password`.
    pub password: Option<String>,
}

impl JoinedFormBody for OAuthRequest {
    const DESCRIPTION: &'static str = "The OAuth2 token request, form-encoded.";
    const JOINED: &'static [&'static str] = &["scope"];
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
    /// The database cannot be reached in time: try again after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(
        Json<OAuthErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
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
    ) -> RegistryTokenAnswer {
        match grant(
            &state,
            req,
            auth,
            service.0,
            scope.0,
            account.0,
            offline_token.0,
        )
        .await
        {
            Ok(answer) => answer,
            Err(e) => Failure::from(ApiError::from(e)).into(),
        }
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
        body: JoinedForm<OAuthRequest>,
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
        oauth_answer(Failure::from(ApiError::from(e.error)), e.oauth)
    }
}

fn oauth_answer(failure: Failure, oauth: &str) -> OAuthAnswer {
    let json = |body| OAuthErrorBody::new(body, oauth);
    match failure {
        Failure::BadRequest(body) => OAuthAnswer::BadRequest(json(body)),
        Failure::Unauthorized(body, challenge) => OAuthAnswer::Unauthorized(json(body), challenge),
        Failure::UnsupportedMediaType(body) => OAuthAnswer::UnsupportedMediaType(json(body)),
        Failure::Throttled(body, retry_after) => OAuthAnswer::Throttled(json(body), retry_after),
        Failure::Internal(body) => OAuthAnswer::Internal(json(body)),
        Failure::Unavailable(body, retry_after) => {
            OAuthAnswer::Unavailable(json(body), retry_after)
        }
    }
}

impl From<Failure> for RegistryTokenAnswer {
    fn from(failure: Failure) -> Self {
        let json = RegistryErrorBody::new;
        match failure {
            Failure::BadRequest(body) | Failure::UnsupportedMediaType(body) => {
                RegistryTokenAnswer::BadRequest(json(body))
            }
            Failure::Unauthorized(body, challenge) => {
                RegistryTokenAnswer::Unauthorized(json(body), challenge)
            }
            Failure::Throttled(body, retry_after) => {
                RegistryTokenAnswer::Throttled(json(body), retry_after)
            }
            Failure::Internal(body) => RegistryTokenAnswer::Internal(json(body)),
            Failure::Unavailable(body, retry_after) => {
                RegistryTokenAnswer::Unavailable(json(body), retry_after)
            }
        }
    }
}

/// Query parameters poem-openapi could not take.
fn registry_bad_request(err: poem::Error) -> RegistryTokenAnswer {
    parse_failure(&err, "no body").into()
}

/// A body poem-openapi could not take: not form-encoded, or not a form.
fn oauth_bad_request(err: poem::Error) -> OAuthAnswer {
    oauth_answer(
        parse_failure(&err, "application/x-www-form-urlencoded"),
        "invalid_request",
    )
}

fn rfc3339(grant: &ContainerGrant) -> String {
    grant.issued_at().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `GET /token`'s work: the credentials, the scopes, the grant.
#[allow(clippy::too_many_arguments)]
async fn grant(
    state: &AppState,
    req: &Request,
    auth: ContainerAuth,
    service: String,
    scope: Vec<String>,
    account: Option<String>,
    offline_token: Option<String>,
) -> Result<RegistryTokenAnswer, Error> {
    let scopes = parse_scopes(scope.iter().map(String::as_str))
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let credentials = match auth {
        ContainerAuth::ContainerBasic(ContainerBasic(basic)) => {
            Some((basic.username, Secret::new(basic.password)))
        }
        // A header that is not Basic credentials is bad credentials, not
        // an anonymous call.
        ContainerAuth::Anonymous if req.headers().contains_key(header::AUTHORIZATION) => {
            return Err(Error::NoActiveAccount);
        }
        ContainerAuth::Anonymous => None,
    };
    let request = TokenRequest {
        credentials,
        account,
        service,
        scopes,
        offline: offline_token.is_some_and(|v| v.eq_ignore_ascii_case("true")),
        client: client_info(req, &state.http.trusted_proxies),
    };
    let grant = state.container.token(request).await?;
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
