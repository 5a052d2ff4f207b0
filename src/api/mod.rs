//! The HTTP API: one module per OpenAPI tag, assembled here with the
//! middleware every request goes through.

/// The two methods of poem-openapi's `Type` that a scalar type of ours
/// answers with itself.
macro_rules! raw_value_is_self {
    () => {
        fn as_raw_value(&self) -> Option<&Self::RawValueType> {
            Some(self)
        }

        fn raw_element_iter<'a>(
            &'a self,
        ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
            Box::new(self.as_raw_value().into_iter())
        }
    };
}

pub mod account;
pub mod admin;
pub mod api_token;
pub mod auth;
pub mod body;
mod challenge;
pub mod client;
pub mod clients;
mod console;
pub mod container;
pub mod container_errors;
pub mod discovery;
pub mod drf;
pub mod error;
pub mod form;
pub mod json_keys;
pub mod json_string;
pub mod keys;
pub mod meta;
pub mod metrics;
mod middleware;
pub mod oauth;
mod oauth_errors;
pub mod protocol_errors;
pub mod simplejwt;
pub mod token;
pub mod tokens;
pub mod types;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, middleware::CatchPanic};
use poem_openapi::{OpenApi, OpenApiService, Tags};

use crate::state::AppState;

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
    /// Users, the registry and OAuth clients, for administrators.
    Administration,
    /// RFC 7009 revocation and RFC 7662 introspection.
    #[oai(rename = "OAuth")]
    OAuth,
    /// Liveness, readiness, public keys and discovery.
    Meta,
    /// The token server of the Docker registry token authentication spec,
    /// for container registries that delegate authentication to tokend.
    #[oai(rename = "Container registry")]
    ContainerRegistry,
    /// djangorestframework-simplejwt's routes and shapes, for frontends
    /// written for it (`simplejwt_routes`, on by default).
    #[oai(rename = "simplejwt")]
    SimpleJwt,
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
            keys::KeysApi,
            clients::ClientsApi,
            oauth::OAuthApi,
            meta::MetaApi,
            discovery::DiscoveryApi,
            container::ContainerApi,
            simplejwt::SimpleJwtApi,
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
    let spec: serde_json::Value =
        serde_json::from_str(&service().spec()).unwrap_or(serde_json::Value::Null);
    serde_json::to_string_pretty(&simplejwt::with_slashes(spec)).unwrap_or_default()
}

/// The whole HTTP application over a prepared state.
pub fn app(state: AppState) -> impl Endpoint + 'static {
    let api = service();
    let allowed = middleware::AllowedMethods::of(&api);
    let bearer_routes = challenge::BearerRoutes::of(&api);
    let templates = middleware::RouteTemplates::of(&api);
    let docs = api.swagger_ui();
    let spec_text = spec_json();
    let spec = poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(spec_text.clone())
    });
    let max_body = state.http.max_body_size;
    let request_timeout = state.http.request_timeout;
    let metrics = state.metrics.is_some();
    let mut routes = Route::new()
        .nest("/docs", docs)
        .nest("/ui", console::endpoint())
        .at("/openapi.json", spec)
        .nest("/", api);
    // On its own listener when `metrics_bind` says so.
    if metrics && state.http.metrics_bind.is_none() {
        routes = routes.at("/metrics", metrics::route());
    }
    routes
        .catch_all_error(error::to_json_error)
        .around(move |ep, req| middleware::limit_body(ep, req, max_body))
        .around(move |ep, req| middleware::deadline(ep, req, request_timeout))
        .around(move |ep, req| middleware::add_allow_header(ep, req, allowed.clone()))
        .around(move |ep, req| challenge::add_bearer_challenge(ep, req, bearer_routes.clone()))
        .around(oauth_errors::add_oauth_error)
        .around(middleware::simplejwt_slashes)
        .with(CatchPanic::new().with_handler(|_| error::internal_response()))
        .around(move |ep, req| middleware::observe(ep, req, templates.clone(), metrics))
        .data(state.validators.clone())
        .data(state)
        .into_endpoint()
}
