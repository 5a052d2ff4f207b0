//! RFC 6750's challenge: every 401 of a Bearer route says how to
//! authenticate, `WWW-Authenticate: Bearer realm="tokend"`, with
//! `error="invalid_token"` when a token was presented and refused. The
//! routes are read from the OpenAPI service's own operations, so a new
//! Bearer route gets the challenge without being listed here.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{OpenApi, OpenApiService};

/// The challenge of a 401 without a presented token.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"tokend\"";
/// The challenge of a 401 for a token that was presented and refused.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"tokend\", error=\"invalid_token\"";

/// The security schemes whose routes answer with a Bearer challenge.
const BEARER_SCHEMES: [&str; 2] = ["BearerAuth", "JwtAuth"];

/// Each Bearer route: its path segments and its method.
#[derive(Clone, Default)]
pub(super) struct BearerRoutes(Arc<Vec<(Vec<String>, String)>>);

impl BearerRoutes {
    pub(super) fn of<T: OpenApi>(_service: &OpenApiService<T, ()>) -> Self {
        let mut routes = Vec::new();
        for path in T::meta().into_iter().flat_map(|api| api.paths) {
            for op in &path.operations {
                // Only routes that need a Bearer token: an operation that
                // also takes other credentials answers its own challenges.
                let bearer_only = !op.security.is_empty()
                    && op.security.iter().all(|requirement| {
                        requirement
                            .keys()
                            .all(|scheme| BEARER_SCHEMES.contains(scheme))
                    });
                if bearer_only {
                    routes.push((
                        super::middleware::segments(&path.path),
                        op.method.to_string(),
                    ));
                }
            }
        }
        BearerRoutes(Arc::new(routes))
    }

    fn contains(&self, method: &str, path: &str) -> bool {
        let path = super::middleware::segments(path);
        self.0
            .iter()
            .any(|(route, m)| m == method && super::middleware::route_matches(route, &path))
    }
}

/// Whether the request presents a Bearer token.
fn presents_bearer(req: &Request) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
}

/// Adds the challenge to a 401 of a Bearer route that has none.
pub(super) async fn add_bearer_challenge<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    routes: BearerRoutes,
) -> poem::Result<Response>
where
    E::Output: IntoResponse,
{
    let bearer_route = routes.contains(req.method().as_str(), req.uri().path());
    let presented = presents_bearer(&req);
    let mut resp = ep.call(req).await?.into_response();
    if bearer_route
        && resp.status() == StatusCode::UNAUTHORIZED
        && !resp.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        let challenge = if presented {
            INVALID_TOKEN_CHALLENGE
        } else {
            BEARER_CHALLENGE
        };
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    Ok(resp)
}
