//! RFC 8414 authorization server metadata, at both well-known paths that
//! libraries configured with an issuer URL alone look at. Built from
//! `public_url`; without it there are no absolute URLs to give, and both
//! paths answer 404.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    error::{ApiError, ErrorBody, Errors, statuses},
};
use crate::state::AppState;

/// Authorization server metadata (RFC 8414). Only what tokend has is listed.
#[derive(Object)]
pub struct ServerMetadata {
    /// The `iss` of tokend's tokens: `issuer`, or else `public_url`.
    pub issuer: String,
    /// The public signing keys (a JWK set).
    pub jwks_uri: String,
    /// The OAuth 2.0 token endpoint: the container registry token server's
    /// `POST /token` (grant types `password` and `refresh_token`; it also
    /// needs `service`).
    pub token_endpoint: String,
    /// `password` and `refresh_token`.
    pub grant_types_supported: Vec<String>,
    /// `none`: the token endpoint takes `client_id` without a secret.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7009 revocation.
    pub revocation_endpoint: String,
    /// `client_secret_basic`, `client_secret_post`, and `none`: the holder
    /// of a token may revoke it without other credentials.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7662 introspection.
    pub introspection_endpoint: String,
    /// `client_secret_basic` and `client_secret_post` (an administrator's
    /// Bearer token is accepted too).
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Empty: tokend has no authorization endpoint.
    pub response_types_supported: Vec<String>,
}

impl ServerMetadata {
    /// The metadata of a tokend reached at `base` (no trailing slash) whose
    /// tokens carry `issuer`.
    pub fn new(base: &str, issuer: &str) -> Self {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        ServerMetadata {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            token_endpoint: format!("{base}/token"),
            grant_types_supported: list(&["password", "refresh_token"]),
            token_endpoint_auth_methods_supported: list(&["none"]),
            revocation_endpoint: format!("{base}/api/v1/oauth/revoke"),
            revocation_endpoint_auth_methods_supported: list(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            introspection_endpoint: format!("{base}/api/v1/oauth/introspect"),
            introspection_endpoint_auth_methods_supported: list(&[
                "client_secret_basic",
                "client_secret_post",
            ]),
            response_types_supported: Vec::new(),
        }
    }
}

#[derive(ApiResponse)]
pub enum MetadataAnswer {
    /// The metadata.
    #[oai(status = 200)]
    Ok(
        Json<ServerMetadata>,
        /// Clients may cache it this long.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

pub struct DiscoveryApi;

#[OpenApi(tag = "ApiTags::Meta")]
impl DiscoveryApi {
    /// Authorization server metadata (RFC 8414)
    ///
    /// Where the keys, revocation and introspection are, for a library or
    /// resource server configured with tokend's issuer URL alone. 404 when
    /// `public_url` is not set.
    #[oai(path = "/.well-known/oauth-authorization-server", method = "get")]
    async fn oauth_metadata(
        &self,
        state: Data<&AppState>,
    ) -> Result<MetadataAnswer, Errors<statuses::Discovery>> {
        metadata(&state)
    }

    /// OpenID provider configuration
    ///
    /// The same document as `/.well-known/oauth-authorization-server`, at
    /// the path OpenID Connect libraries read. tokend issues no ID tokens:
    /// what only OpenID providers have is left out.
    #[oai(path = "/.well-known/openid-configuration", method = "get")]
    async fn openid_configuration(
        &self,
        state: Data<&AppState>,
    ) -> Result<MetadataAnswer, Errors<statuses::Discovery>> {
        metadata(&state)
    }
}

fn metadata(state: &AppState) -> Result<MetadataAnswer, Errors<statuses::Discovery>> {
    match &state.http.public_url {
        Some(base) => {
            let issuer = state.http.issuer.as_deref().unwrap_or(base);
            Ok(MetadataAnswer::Ok(
                Json(ServerMetadata::new(base, issuer)),
                "public, max-age=300".into(),
            ))
        }
        None => Err(ApiError::NotFound(ErrorBody::new(
            "Discovery is off: set `public_url` (e.g. https://auth.example.com) to serve it.",
            "not_found",
        ))
        .into()),
    }
}
