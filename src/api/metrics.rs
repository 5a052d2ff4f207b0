//! `GET /metrics`: every metric in the Prometheus text format, on the main
//! port or on `metrics_bind`, behind `metrics_token` when one is set.

use poem::{
    Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route, get, handler,
    http::{StatusCode, header},
    web::Data,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{json_response, to_json_error};
use crate::{secret::Secret, state::AppState};

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` route alone: what `metrics_bind` serves.
pub fn app(state: AppState) -> impl Endpoint + 'static {
    Route::new()
        .at("/metrics", get(scrape))
        .catch_all_error(to_json_error)
        .data(state)
        .into_endpoint()
}

/// `GET /metrics`, for the main app's route table.
pub fn route() -> impl Endpoint + 'static {
    get(scrape)
}

#[handler]
fn scrape(req: &Request, state: Data<&AppState>) -> Response {
    let Some(metrics) = &state.metrics else {
        return json_response(StatusCode::NOT_FOUND, "Not found.", "not_found");
    };
    if let Some(token) = &state.http.metrics_token
        && let Some(refusal) = refuse(req, token)
    {
        return refusal;
    }
    state.health.record_pool_metrics();
    Response::builder()
        .header(header::CONTENT_TYPE, TEXT_FORMAT)
        .header(header::CACHE_CONTROL, "no-store")
        .body(metrics.render())
}

/// 401 unless `req` carries `Authorization: Bearer <token>`; the tokens
/// are compared by their digests, in constant time.
fn refuse(req: &Request, token: &Secret) -> Option<Response> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let (detail, code) = match presented {
        None => (
            "Authentication credentials were not provided.",
            "not_authenticated",
        ),
        Some(presented) => {
            let expected = Sha256::digest(token.expose().as_bytes());
            let presented = Sha256::digest(presented.as_bytes());
            if bool::from(expected.ct_eq(&presented)) {
                return None;
            }
            ("The metrics token is not valid.", "token_not_valid")
        }
    };
    let mut resp = json_response(StatusCode::UNAUTHORIZED, detail, code);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"tokend metrics\""),
    );
    Some(resp)
}
