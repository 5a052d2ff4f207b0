//! What every request goes through: its id, log line and metrics, the
//! body limit, the deadline, the `Allow` header of a 405, and simplejwt's
//! trailing slashes.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use poem::{
    Endpoint, IntoResponse, PathPattern, Request, Response,
    http::{Method, StatusCode, header},
};
use poem_openapi::{OpenApi, OpenApiService};
use tracing::Instrument;
use uuid::Uuid;

use super::error::{UNAVAILABLE_RETRY_AFTER, json_response};
use crate::telemetry::{self, REQUEST as REQUEST_LOG};

/// Refuses bodies over `max` bytes with 413, judging by `Content-Length` when
/// there is one and otherwise reading at most `max + 1` bytes, and JSON
/// bodies with a key twice with 400. Only methods whose routes read a body
/// are looked at: a body sent with a GET or a DELETE is never read.
pub(super) async fn limit_body<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    max: usize,
) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(ep.call(req).await?.into_response());
    }
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large.",
            "payload_too_large",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => return Ok(too_large()),
        Some(_) => {}
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => {
            use tokio::io::AsyncReadExt;
            let mut buf = Vec::new();
            let mut reader = req.take_body().into_async_read().take(max as u64 + 1);
            if reader.read_to_end(&mut buf).await.is_err() {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                    "invalid_request",
                ));
            }
            if buf.len() > max {
                return Ok(too_large());
            }
            req.set_body(buf);
        }
        None => {}
    }
    // A JSON object with a key twice is refused, as a form field twice is.
    let is_json = req
        .content_type()
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        let body = match req.take_body().into_bytes().await {
            Ok(body) => body,
            Err(_) => {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                    "invalid_request",
                ));
            }
        };
        if let Some(key) = super::json_keys::duplicate_key(&body) {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The field `{}` is given twice.",
                    key.chars().take(100).collect::<String>()
                ),
                "invalid_request",
            ));
        }
        req.set_body(body);
    }
    Ok(ep.call(req).await?.into_response())
}

/// Abandons a request that runs past `request_timeout` with a 503: a query
/// caught by a network that went silent would otherwise hang until TCP gives
/// up. Dropping the request's future rolls back its transaction and gives
/// its connection back, as a client that hangs up does.
pub(super) async fn deadline<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    limit: std::time::Duration,
) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    let uri = req.uri().clone();
    match tokio::time::timeout(limit, ep.call(req)).await {
        Ok(resp) => Ok(resp?.into_response()),
        Err(_) => {
            tracing::warn!(
                path = uri.path(),
                ?limit,
                "a request ran past request_timeout; abandoned"
            );
            let mut resp = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service could not complete the request in time, try again later.",
                "unavailable",
            );
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                UNAVAILABLE_RETRY_AFTER.into(),
            );
            Ok(resp)
        }
    }
}

/// The methods each documented path answers, from the operations of the
/// OpenAPI service itself, for the `Allow` header that RFC 9110 requires on
/// a 405.
#[derive(Clone, Default)]
pub(super) struct AllowedMethods(Arc<Vec<(Vec<String>, String)>>);

impl AllowedMethods {
    pub(super) fn of<T: OpenApi>(_service: &OpenApiService<T, ()>) -> Self {
        let mut routes = vec![
            (segments("/openapi.json"), Method::GET.to_string()),
            (segments("/metrics"), Method::GET.to_string()),
        ];
        for path in T::meta().into_iter().flat_map(|api| api.paths) {
            let methods: Vec<String> = path
                .operations
                .iter()
                .map(|op| op.method.to_string())
                .collect();
            routes.push((segments(&path.path), methods.join(", ")));
        }
        AllowedMethods(Arc::new(routes))
    }

    /// The methods of the route `path` matches; a parameter segment
    /// (`{param}` or `:param`) matches any segment.
    fn for_path(&self, path: &str) -> Option<&str> {
        let path = segments(path);
        self.0
            .iter()
            .find(|(route, _)| route_matches(route, &path))
            .map(|(_, methods)| methods.as_str())
    }
}

/// Whether a documented route matches a request's path; a parameter segment
/// (`{param}` or `:param`) matches any segment.
pub(super) fn route_matches(route: &[String], path: &[String]) -> bool {
    route.len() == path.len()
        && route
            .iter()
            .zip(path)
            .all(|(r, p)| r == p || r.starts_with('{') || r.starts_with(':'))
}

pub(super) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Adds `Allow` to a 405, so that a client learns what the route accepts.
pub(super) async fn add_allow_header<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    allowed: AllowedMethods,
) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    let uri = req.uri().clone();
    let mut resp = ep.call(req).await?.into_response();
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = allowed
            .for_path(uri.path())
            .and_then(|m| header::HeaderValue::from_str(m).ok())
    {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    Ok(resp)
}

/// Who made a request, noted by the authentication of the request for
/// its log line.
#[derive(Clone, Default)]
pub(super) struct RequestUser(Arc<OnceLock<Uuid>>);

/// Notes the caller of `req` for its log line.
pub(super) fn note_user(req: &Request, user_id: Uuid) {
    if let Some(user) = req.extensions().get::<RequestUser>() {
        let _ = user.0.set(user_id);
    }
}

/// The longest `X-Request-Id` taken from a client.
const MAX_REQUEST_ID: usize = 64;

/// The request's id: the client's `X-Request-Id` when it is a sane token
/// (1 to 64 of `A-Z a-z 0-9 . _ -`), else a new one.
pub(super) fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .map(|v| v.as_bytes())
        .filter(|v| {
            (1..=MAX_REQUEST_ID).contains(&v.len())
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or_else(|| Uuid::new_v4().simple().to_string(), str::to_owned)
}

const REQUEST_ID: &str = "x-request-id";

/// The spec's path templates (`/api/v1/tokens/{id}/expire`), by which a
/// request is counted and logged: never its raw path, which holds ids.
#[derive(Clone, Default)]
pub(super) struct RouteTemplates(Arc<Vec<(Vec<String>, String)>>);

impl RouteTemplates {
    pub(super) fn of<T: OpenApi>(_service: &OpenApiService<T, ()>) -> Self {
        let templates = T::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .filter(|path| path.path.contains('{'))
            .map(|path| (segments(&path.path), path.path.to_owned()))
            .collect();
        RouteTemplates(Arc::new(templates))
    }

    /// The template of the route a response came from: poem's pattern
    /// (`/api/v1/tokens/:param0/expire`) as the spec writes it;
    /// `unmatched` when no route took the request.
    fn of_response(&self, resp: &Response) -> String {
        let Some(PathPattern(pattern)) = resp.data::<PathPattern>() else {
            return "unmatched".into();
        };
        if pattern.is_empty() {
            return "unmatched".into();
        }
        if !pattern.contains(':') {
            return pattern.to_string();
        }
        let pattern = segments(pattern);
        self.0
            .iter()
            .find(|(template, _)| {
                template.len() == pattern.len()
                    && template
                        .iter()
                        .zip(&pattern)
                        .all(|(t, p)| t == p || (t.starts_with('{') && p.starts_with(':')))
            })
            .map_or_else(|| "unmatched".into(), |(_, path)| path.clone())
    }
}

/// What every request goes through first and last: its id (taken from
/// `X-Request-Id` or made, and answered), its one log line (id, method,
/// route template, status, latency, user), and its metrics.
pub(super) async fn observe<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    templates: RouteTemplates,
    metrics: bool,
) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    let started = Instant::now();
    let id = request_id(&req);
    let user = RequestUser::default();
    req.extensions_mut().insert(user.clone());
    let method = req.method().clone();
    let span = tracing::info_span!(target: REQUEST_LOG, "request", request_id = %id);
    let mut resp = match ep.call(req).instrument(span).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    let took = started.elapsed();
    let (status, route) = (resp.status().as_u16(), templates.of_response(&resp));
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, value);
    }
    if metrics {
        telemetry::metrics::http_request(method.as_str(), &route, status, took);
    }
    let latency_ms = took.as_micros() as f64 / 1000.0;
    let method = method.as_str();
    match user.0.get() {
        Some(user_id) => tracing::info!(
            target: REQUEST_LOG,
            request_id = %id, method, route, status, latency_ms, user_id = %user_id,
            "request"
        ),
        None => tracing::info!(
            target: REQUEST_LOG,
            request_id = %id, method, route, status, latency_ms,
            "request"
        ),
    }
    Ok(resp)
}

/// simplejwt's URLs end with a slash, which the OpenAPI routes cannot
/// have: `/api/token/refresh/` is routed to `/api/token/refresh`, and
/// `/api/token/refresh` itself is not found, as in Django.
pub(super) async fn simplejwt_slashes<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    match super::simplejwt::route_of(req.uri().path()) {
        None => {}
        Some(Err(())) => {
            return Ok(json_response(
                StatusCode::NOT_FOUND,
                "Not found.",
                "not_found",
            ));
        }
        Some(Ok(route)) => {
            let target = match req.uri().query() {
                Some(query) => format!("{route}?{query}"),
                None => route.to_owned(),
            };
            if let Ok(uri) = target.parse() {
                *req.uri_mut() = uri;
            }
        }
    }
    Ok(ep.call(req).await?.into_response())
}
