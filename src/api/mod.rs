//! The HTTP API: one module per OpenAPI tag, assembled here.

pub mod account;
pub mod admin;
pub mod api_token;
pub mod container;
pub mod error;
pub mod meta;
pub mod oauth;
pub mod text;
pub mod token;
pub mod tokens;

use poem::{
    Endpoint, EndpointExt, IntoEndpoint, Request, Route, http::header, middleware::CatchPanic,
    web::RemoteAddr,
};
use poem_openapi::{OpenApi, OpenApiService, Tags};

use crate::{AppState, registry::pipeline::ClientInfo};

#[derive(Tags)]
pub enum ApiTags {
    /// Obtain, refresh, verify and expire access and refresh tokens.
    Token,
    /// The caller's own account.
    Account,
    /// The caller's own tokens (sessions).
    Tokens,
    /// The caller's personal API token.
    #[oai(rename = "API token")]
    ApiToken,
    /// Users and the registry, for administrators.
    Administration,
    /// RFC 7009 revocation and RFC 7662 introspection.
    #[oai(rename = "OAuth")]
    OAuth,
    /// Liveness, readiness and public keys.
    Meta,
    /// The token server of the Docker registry token authentication spec,
    /// for container registries that delegate authentication to tokend.
    #[oai(rename = "Container registry")]
    ContainerRegistry,
}

/// The OpenAPI service: every documented route.
pub fn service() -> OpenApiService<impl OpenApi, ()> {
    OpenApiService::new(
        (
            token::TokenApi,
            account::AccountApi,
            tokens::TokensApi,
            api_token::ApiTokenApi,
            admin::AdminApi,
            oauth::OAuthApi,
            meta::MetaApi,
            container::ContainerApi,
        ),
        "tokend",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Access/refresh token service with a token registry. Errors are \
         `{\"detail\", \"code\"}` with the status of the failure.",
    )
}

/// The spec as served at `/openapi.json` and checked in at `openapi/openapi.json`.
pub fn spec_json() -> String {
    service().spec()
}

/// The whole HTTP application over a prepared state.
pub fn app(state: AppState) -> impl Endpoint + 'static {
    let api = service();
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let max_body = state.config.max_body_size;
    let request_timeout = state.config.request_timeout.0;
    let allowed = AllowedMethods::from_spec(&spec_json());
    Route::new()
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .catch_all_error(error::to_json_error)
        .around(move |ep, req| limit_body(ep, req, max_body))
        .around(move |ep, req| deadline(ep, req, request_timeout))
        .around(move |ep, req| add_allow_header(ep, req, allowed.clone()))
        .with(CatchPanic::new())
        .data(state)
        .into_endpoint()
}

/// Refuses bodies over `max` bytes with 413, judging by `Content-Length` when
/// there is one and otherwise reading at most `max + 1` bytes.
async fn limit_body<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: Request,
    max: usize,
) -> poem::Result<poem::Response>
where
    E::Output: poem::IntoResponse,
{
    use poem::IntoResponse;
    let too_large = || {
        error::json_response(
            poem::http::StatusCode::PAYLOAD_TOO_LARGE,
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
                return Ok(error::json_response(
                    poem::http::StatusCode::BAD_REQUEST,
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
    Ok(ep.call(req).await?.into_response())
}

/// The methods each documented path answers, read from the spec once, for
/// the `Allow` header that RFC 9110 requires on a 405.
#[derive(Clone, Default)]
struct AllowedMethods(std::sync::Arc<Vec<(Vec<String>, String)>>);

impl AllowedMethods {
    fn from_spec(spec: &str) -> Self {
        const METHODS: [&str; 8] = [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ];
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut routes = vec![(segments("/openapi.json"), "GET".to_owned())];
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let methods: Vec<String> = item
                .as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(|m| m.to_uppercase())
                .collect();
            routes.push((segments(path), methods.join(", ")));
        }
        AllowedMethods(std::sync::Arc::new(routes))
    }

    /// The methods of the route `path` matches; `{param}` matches any segment.
    fn for_path(&self, path: &str) -> Option<&str> {
        let path = segments(path);
        self.0
            .iter()
            .find(|(route, _)| {
                route.len() == path.len()
                    && route
                        .iter()
                        .zip(&path)
                        .all(|(r, p)| r == p || r.starts_with('{'))
            })
            .map(|(_, methods)| methods.as_str())
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Abandons a request that runs past `request_timeout` with a 503: a query
/// caught by a network that went silent would otherwise hang until TCP gives
/// up. Dropping the request's future rolls back its transaction and gives
/// its connection back, as a client that hangs up does.
async fn deadline<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    limit: std::time::Duration,
) -> poem::Result<poem::Response>
where
    E::Output: poem::IntoResponse,
{
    use poem::IntoResponse;
    let uri = req.uri().clone();
    match tokio::time::timeout(limit, ep.call(req)).await {
        Ok(resp) => Ok(resp?.into_response()),
        Err(_) => {
            tracing::warn!(
                path = uri.path(),
                ?limit,
                "a request ran past request_timeout; abandoned"
            );
            Ok(error::json_response(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                "The service could not complete the request in time, try again later.",
                "unavailable",
            ))
        }
    }
}

/// Adds `Allow` to a 405, so that a client learns what the route accepts.
async fn add_allow_header<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    allowed: AllowedMethods,
) -> poem::Result<poem::Response>
where
    E::Output: poem::IntoResponse,
{
    use poem::IntoResponse;
    let uri = req.uri().clone();
    let mut resp = ep.call(req).await?.into_response();
    if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = allowed
            .for_path(uri.path())
            .and_then(|m| header::HeaderValue::from_str(m).ok())
    {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    Ok(resp)
}

/// Who is asking: user agent and client address (the first `X-Forwarded-For`
/// entry when proxy headers are trusted).
pub fn client_info(req: &Request, trust_proxy_headers: bool) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let forwarded = trust_proxy_headers
        .then(|| req.headers().get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let address = forwarded.or_else(|| match req.remote_addr() {
        RemoteAddr(poem::Addr::SocketAddr(addr)) => Some(addr.ip().to_string()),
        _ => None,
    });
    ClientInfo {
        user_agent,
        address,
    }
}
