//! Every error answer of the OAuth endpoints (revocation, introspection)
//! also carries RFC 6749's `error`, beside `detail` and `code`: those the
//! handlers give and those of the extractors and limits before them (a
//! body that is not a form, too large, malformed) alike. A body of another
//! type is told to come as a form.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{StatusCode, header},
};
use serde_json::Value;

/// Where the OAuth endpoints live.
const OAUTH_PREFIX: &str = "/api/v1/oauth/";

/// RFC 6749's (and RFC 6750's, RFC 7009's) `error` for one of tokend's codes.
pub fn oauth_error(code: &str) -> &'static str {
    match code {
        "invalid_client" | "not_authenticated" | "no_active_account" => "invalid_client",
        "token_not_valid" => "invalid_token",
        "permission_denied" => "unauthorized_client",
        "unsupported_token_type" => "unsupported_token_type",
        "internal_error" => "server_error",
        "unavailable" | "throttled" => "temporarily_unavailable",
        _ => "invalid_request",
    }
}

/// Adds `error` to the error answers of the OAuth endpoints.
pub(super) async fn add_oauth_error<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    let oauth = req.uri().path().starts_with(OAUTH_PREFIX);
    let resp = ep.call(req).await?.into_response();
    if !oauth || resp.status().is_success() {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, bytes.into()));
    };
    let code = answer
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if parts.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        answer.insert(
            "detail".into(),
            "Unsupported media type: send the token as a form \
             (application/x-www-form-urlencoded), as RFC 7009 and RFC 7662 ask, or as JSON."
                .into(),
        );
    }
    answer
        .entry("error")
        .or_insert_with(|| oauth_error(&code).into());
    let body = Value::Object(answer).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, body.into()))
}
