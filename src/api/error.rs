//! The one mapping from errors to HTTP: every failure is
//! `{"detail": "<sentence>", "code": "<machine code>"}` with its status.
//!
//! Each operation declares the error statuses it can answer, and only
//! those, with [`Errors`] and a status set of [`statuses`]: the spec tells
//! the truth about every route.

use std::marker::PhantomData;

use poem::{
    IntoResponse, Response,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    payload::Json,
    registry::{MetaResponses, Registry},
};

use crate::error::Error;

/// The challenge of a 401 for an OAuth client's credentials.
pub const CLIENT_CHALLENGE: &str = "Basic realm=\"tokend\"";

/// The body of every error answer.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ErrorBody {
    /// A human sentence saying what went wrong.
    pub detail: String,
    /// A machine code: `invalid_request`, `no_active_account`, `token_not_valid`,
    /// `not_authenticated`, `permission_denied`, `not_found`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `throttled`,
    /// `internal_error`, `unavailable`; on the OAuth endpoints also
    /// `invalid_client` and `unsupported_token_type`.
    pub code: String,
    /// RFC 6749's error code, on the OAuth endpoints only: `invalid_request`,
    /// `invalid_client`, `unsupported_token_type`, `invalid_token`, …
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

impl ErrorBody {
    pub fn new(detail: impl Into<String>, code: &str) -> Json<Self> {
        Json(ErrorBody {
            detail: detail.into(),
            code: code.into(),
            error: None,
        })
    }
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            detail: "Token is invalid or expired".into(),
            code: "token_not_valid".into(),
            error: None,
        }
    }
}

/// Every error answer an operation of tokend can give. Operations declare
/// the ones they can give through [`Errors`].
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: bad JSON, a missing field, a wrong type.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No credentials, bad credentials, or a token that is not valid.
    #[oai(status = 401)]
    Unauthorized(
        Json<ErrorBody>,
        /// How to authenticate.
        #[oai(header = "WWW-Authenticate")]
        Option<String>,
    ),
    /// The caller may not do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such thing (or not the caller's).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// It exists already.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The body is larger than `max_body_size`.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is neither JSON nor (where accepted) form-encoded.
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
    /// A bug in tokend: the answer says only that; the cause is logged.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached in time, or the registry's writes
    /// are queued too deep: try again after `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

/// The `Retry-After` of a 503: the database or the registry's writer is
/// busy or away for now, not for long.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 1;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let body = || ErrorBody::new(err.to_string(), err.code());
        match &err {
            Error::InvalidRequest(_) | Error::UnsupportedTokenType => ApiError::BadRequest(body()),
            Error::InvalidClient => {
                ApiError::Unauthorized(body(), Some(CLIENT_CHALLENGE.to_owned()))
            }
            Error::NoActiveAccount | Error::TokenNotValid | Error::NotAuthenticated => {
                ApiError::Unauthorized(body(), None)
            }
            Error::PermissionDenied => ApiError::Forbidden(body()),
            Error::NotFound => ApiError::NotFound(body()),
            Error::Conflict(_) => ApiError::Conflict(body()),
            Error::Throttled { retry_after } => ApiError::Throttled(body(), *retry_after),
            Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable(body(), UNAVAILABLE_RETRY_AFTER)
            }
            Error::Unexpected(cause) => {
                // A bug: log the whole chain, answer a generic sentence.
                tracing::error!(error = ?cause, "internal error");
                ApiError::Internal(internal_body())
            }
        }
    }
}

impl From<Error> for poem::Error {
    fn from(err: Error) -> Self {
        ApiError::from(err).into()
    }
}

/// A set of error statuses an operation can answer.
pub trait Statuses: Send + Sync + 'static {
    const CODES: &'static [u16];
}

/// The error answers of an operation: those of [`ApiError`] whose status is
/// in `S`, in the spec and on the wire alike.
pub struct Errors<S>(ApiError, PhantomData<S>);

impl<S> std::fmt::Debug for Errors<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Statuses> From<Error> for Errors<S> {
    fn from(err: Error) -> Self {
        Errors(ApiError::from(err), PhantomData)
    }
}

impl<S: Statuses> From<ApiError> for Errors<S> {
    fn from(err: ApiError) -> Self {
        Errors(err, PhantomData)
    }
}

impl<S: Statuses> ApiResponse for Errors<S> {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses
            .retain(|r| r.status.is_some_and(|s| S::CODES.contains(&s)));
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

impl<S: Statuses> IntoResponse for Errors<S> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<S: Statuses> From<Errors<S>> for poem::Error {
    fn from(err: Errors<S>) -> Self {
        err.0.into()
    }
}

/// The status sets of tokend's operations.
pub mod statuses {
    use super::Statuses;

    macro_rules! sets {
        ($($(#[$doc:meta])* $name:ident = [$($code:literal),*];)*) => {
            $(
                $(#[$doc])*
                pub enum $name {}
                impl Statuses for $name {
                    const CODES: &'static [u16] = &[$($code),*];
                }
            )*
        };
    }

    sets! {
        /// The discovery documents: off without `public_url`.
        Discovery = [404];
        /// A body of credentials: parsed, checked, throttled.
        Login = [400, 401, 413, 415, 429, 500, 503];
        /// A token in a body, no other credentials (refresh, verify, expire).
        TokenInBody = [400, 401, 413, 415, 500, 503];
        /// A token in a body, for anyone (revoke).
        PublicBody = [400, 413, 415, 500, 503];
        /// A Bearer token, nothing else.
        Bearer = [401, 500, 503];
        /// A Bearer token and query parameters.
        BearerQuery = [400, 401, 500, 503];
        /// A Bearer token and a body, about one of the caller's things.
        BearerBodyFind = [400, 401, 404, 413, 415, 500, 503];
        /// An access JWT only (API token management), no body.
        JwtOnly = [401, 403, 500, 503];
        /// An access JWT only, POSTed (a body is limited, and refused when too large).
        JwtOnlyPost = [401, 403, 413, 500, 503];
        /// An access JWT only, a body with a password checked under the throttle.
        OwnPassword = [400, 401, 403, 413, 415, 429, 500, 503];
        /// An access JWT only, about something that may be missing.
        JwtOnlyFind = [401, 403, 404, 500, 503];
        /// An administrator, nothing else.
        Admin = [401, 403, 500, 503];
        /// An administrator and query parameters about a user.
        AdminQueryFind = [400, 401, 403, 404, 500, 503];
        /// An administrator, about a user, no body.
        AdminFind = [401, 403, 404, 500, 503];
        /// An administrator, about a user, POSTed without a body.
        AdminFindPost = [401, 403, 404, 413, 500, 503];
        /// An administrator and a body.
        AdminBody = [400, 401, 403, 413, 415, 500, 503];
        /// An administrator and a body creating something that may exist.
        AdminBodyConflict = [400, 401, 403, 409, 413, 415, 500, 503];
        /// An administrator and a body about a user.
        AdminBodyFind = [400, 401, 403, 404, 413, 415, 500, 503];
        /// A Bearer token (an administrator's) and a body.
        BearerBodyAdmin = [400, 401, 403, 413, 415, 500, 503];
        /// Revocation and introspection: a client's credentials (or an
        /// administrator's Bearer token) and a body.
        OAuthBody = [400, 401, 403, 413, 415, 500, 503];
        /// The container registry's `GET /token`.
        ContainerToken = [400, 401, 429, 500, 503];
    }
}

/// Turns any error that escaped the handlers (routing, parsing, limits)
/// into the JSON wire shape.
pub async fn to_json_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found.".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Method not allowed on this route.".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body is too large.".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Unsupported media type: send application/json.".to_owned(),
        ),
        StatusCode::UNAUTHORIZED => (
            "not_authenticated",
            "Authentication credentials were not provided.".to_owned(),
        ),
        s if s.is_client_error() => ("invalid_request", plain_words(&err.to_string())),
        _ => {
            tracing::error!(error = %err, %status, "internal error");
            return internal_response();
        }
    };
    let mut resp = json_response(status, &detail, code);
    // The route it matched, if any, for the request's log line and metrics.
    if let Some(pattern) = err.data::<poem::PathPattern>() {
        resp.set_data(pattern.clone());
    }
    resp
}

const INTERNAL_DETAIL: &str = "The service failed to complete the request; the cause is logged.";

fn internal_body() -> Json<ErrorBody> {
    ErrorBody::new(INTERNAL_DETAIL, "internal_error")
}

/// The answer to a bug: 500 `internal_error`, the cause logged elsewhere.
pub fn internal_response() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        INTERNAL_DETAIL,
        "internal_error",
    )
}

pub fn json_response(status: StatusCode, detail: &str, code: &str) -> Response {
    let body = serde_json::json!({ "detail": detail, "code": code });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body.to_string())
}

/// A parser's message without the parser's own words: the payload
/// error's prefix goes, and serde's "missing field `x`" says which field in
/// a sentence.
fn plain_words(text: &str) -> String {
    let text = text
        .strip_prefix("parse request payload error: ")
        .unwrap_or(text);
    if let Some(rest) = text.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return format!("The field `{name}` is required.");
    }
    first_line(text)
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("Bad request.");
    line.chars().take(300).collect()
}
