//! The one mapping from errors to HTTP: every failure is
//! `{"detail": "<sentence>", "code": "<machine code>"}` with its status.

use poem::{
    Response,
    http::{StatusCode, header},
};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::error::Error;

/// The body of every error answer.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ErrorBody {
    /// A human sentence saying what went wrong.
    pub detail: String,
    /// A machine code: `invalid_request`, `no_active_account`, `token_not_valid`,
    /// `not_authenticated`, `permission_denied`, `not_found`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `throttled`,
    /// `unavailable`.
    pub code: String,
}

impl ErrorBody {
    fn new(detail: impl Into<String>, code: &str) -> Json<Self> {
        Json(ErrorBody {
            detail: detail.into(),
            code: code.into(),
        })
    }
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            detail: "Token is invalid or expired".into(),
            code: "token_not_valid".into(),
        }
    }
}

/// The error answers an operation can give.
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
    /// The database cannot be reached in time.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let body = || ErrorBody::new(err.to_string(), err.code());
        match &err {
            Error::InvalidRequest(_) => ApiError::BadRequest(body()),
            Error::NoActiveAccount | Error::TokenNotValid | Error::NotAuthenticated => {
                ApiError::Unauthorized(body(), None)
            }
            Error::PermissionDenied => ApiError::Forbidden(body()),
            Error::NotFound => ApiError::NotFound(body()),
            Error::Conflict(_) => ApiError::Conflict(body()),
            Error::Throttled { retry_after } => ApiError::Throttled(body(), *retry_after),
            Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable(body())
            }
            Error::Unexpected(cause) => {
                // 5xx: log the whole chain, answer a generic sentence.
                tracing::error!(error = ?cause, "unexpected error");
                ApiError::Unavailable(ErrorBody::new(
                    "The service could not complete the request, try again later.",
                    "unavailable",
                ))
            }
        }
    }
}

impl From<Error> for poem::Error {
    fn from(err: Error) -> Self {
        ApiError::from(err).into()
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
        s if s.is_client_error() => ("invalid_request", first_line(&err.to_string())),
        _ => {
            tracing::error!(error = %err, %status, "unexpected error");
            (
                "unavailable",
                "The service could not complete the request, try again later.".to_owned(),
            )
        }
    };
    let status = if status.is_server_error() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        status
    };
    json_response(status, &detail, code)
}

pub fn json_response(status: StatusCode, detail: &str, code: &str) -> Response {
    let body = serde_json::json!({ "detail": detail, "code": code });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body.to_string())
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("Bad request.");
    line.chars().take(300).collect()
}
