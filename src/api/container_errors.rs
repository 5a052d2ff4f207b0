//! The error answers of `/token`. docker and containers/image read only the
//! distribution registry's `{"errors": [{"code", "message"}]}` and print
//! "authentication required" for anything else, so every error of `/token`
//! carries that list beside tokend's own `detail` and `code` (and, on
//! `POST`, RFC 6749's `error`).

use poem_openapi::{Object, payload::Json};

use super::error::{ApiError, ErrorBody};

/// What clients are told when their Basic credentials fail.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"tokend\"";

/// One error in the distribution registry's shape.
#[derive(Debug, Clone, Object)]
pub struct RegistryError {
    /// The distribution registry's error code: `UNAUTHORIZED`,
    /// `TOOMANYREQUESTS`, `UNSUPPORTED`, `UNAVAILABLE` or `UNKNOWN`.
    pub code: String,
    /// The sentence a client prints: the same as `detail`.
    pub message: String,
}

/// An error of `GET /token`.
#[derive(Debug, Clone, Object)]
pub struct RegistryErrorBody {
    /// A human sentence saying what went wrong.
    pub detail: String,
    /// tokend's machine code (`invalid_request`, `no_active_account`,
    /// `throttled`, …).
    pub code: String,
    /// The same error in the distribution registry's shape, which docker
    /// and containers/image print.
    pub errors: Vec<RegistryError>,
}

/// An OAuth2 error: the usual body plus RFC 6749's `error` and the
/// distribution registry's `errors`.
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
    /// The same error in the distribution registry's shape, which docker
    /// and containers/image print.
    pub errors: Vec<RegistryError>,
}

/// The distribution registry's code for one of tokend's.
fn registry_code(code: &str) -> &'static str {
    match code {
        "no_active_account" | "token_not_valid" | "not_authenticated" => "UNAUTHORIZED",
        "throttled" => "TOOMANYREQUESTS",
        "unavailable" => "UNAVAILABLE",
        "internal_error" => "UNKNOWN",
        _ => "UNSUPPORTED",
    }
}

fn registry_errors(body: &ErrorBody) -> Vec<RegistryError> {
    vec![RegistryError {
        code: registry_code(&body.code).into(),
        message: body.detail.clone(),
    }]
}

impl RegistryErrorBody {
    pub fn new(body: ErrorBody) -> Json<Self> {
        Json(RegistryErrorBody {
            errors: registry_errors(&body),
            detail: body.detail,
            code: body.code,
        })
    }
}

impl OAuthErrorBody {
    pub fn new(body: ErrorBody, error: &str) -> Json<Self> {
        Json(OAuthErrorBody {
            errors: registry_errors(&body),
            detail: body.detail,
            code: body.code,
            error: error.into(),
        })
    }
}

/// How `/token` answers an error, whichever body it wears.
pub enum Failure {
    BadRequest(ErrorBody),
    /// With the Basic challenge when the credentials were bad.
    Unauthorized(ErrorBody, Option<String>),
    UnsupportedMediaType(ErrorBody),
    Throttled(ErrorBody, u64),
    Internal(ErrorBody),
    Unavailable(ErrorBody, u64),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized(Json(body), _) => {
                let challenge = (body.code == "no_active_account").then(|| BASIC_CHALLENGE.into());
                Failure::Unauthorized(body, challenge)
            }
            ApiError::Unavailable(Json(body), retry_after) => {
                Failure::Unavailable(body, retry_after)
            }
            ApiError::Internal(Json(body)) => Failure::Internal(body),
            ApiError::Throttled(Json(body), retry_after) => Failure::Throttled(body, retry_after),
            ApiError::UnsupportedMediaType(Json(body)) => Failure::UnsupportedMediaType(body),
            ApiError::BadRequest(Json(body))
            | ApiError::Forbidden(Json(body))
            | ApiError::NotFound(Json(body))
            | ApiError::Conflict(Json(body))
            | ApiError::PayloadTooLarge(Json(body)) => Failure::BadRequest(body),
        }
    }
}

/// What a request poem-openapi could not take says: the parameter or
/// field by name, without the parser's type names.
pub fn parse_failure(err: &poem::Error, media: &str) -> Failure {
    if err.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return Failure::UnsupportedMediaType(ErrorBody {
            detail: format!("Unsupported media type: send {media}."),
            code: "unsupported_media_type".into(),
            error: None,
        });
    }
    let detail = match err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        Some(param) => format!(
            "The query parameter `{}` is missing or not valid.",
            param.name
        ),
        // serde_urlencoded's message names the field: "missing field `service`".
        None => format!(
            "The body is not a valid form ({}): `grant_type`, `service` and `client_id` are required, each field but `scope` may be given once.",
            err.to_string().lines().next().unwrap_or_default()
        ),
    };
    Failure::BadRequest(ErrorBody {
        detail,
        code: "invalid_request".into(),
        error: None,
    })
}
