//! The HTTP API: one module per OpenAPI tag, assembled here.

pub mod account;
pub mod admin;
pub mod api_token;
pub mod container;
pub mod error;
pub mod meta;
pub mod oauth;
pub mod token;
pub mod tokens;

use poem::{
    Endpoint, EndpointExt, IntoEndpoint, Request, Route, http::header, middleware::CatchPanic,
    web::RemoteAddr,
};
use poem_openapi::{OpenApiService, Tags};

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

type Apis = (
    token::TokenApi,
    account::AccountApi,
    tokens::TokensApi,
    api_token::ApiTokenApi,
    admin::AdminApi,
    oauth::OAuthApi,
    meta::MetaApi,
    container::ContainerApi,
);

/// The OpenAPI service: every documented route.
pub fn service() -> OpenApiService<Apis, ()> {
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
    Route::new()
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .catch_all_error(error::to_json_error)
        .around(move |ep, req| limit_body(ep, req, max_body))
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
