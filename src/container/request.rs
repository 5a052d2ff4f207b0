//! What `/token` is asked, and how its OAuth2 variant fails.

use crate::{error::Error, registry::pipeline::ClientInfo, secret::Secret};

use super::Scope;

/// `GET /token`: Basic credentials or none, the service, the scopes.
#[derive(Debug)]
pub struct TokenRequest {
    /// Username and password (or API token); `None`: anonymous.
    pub credentials: Option<(String, Secret)>,
    /// The account the client believes it is.
    pub account: Option<String>,
    pub service: String,
    pub scopes: Vec<Scope>,
    /// Also issue an offline refresh token (authenticated callers only).
    pub offline: bool,
    pub client: ClientInfo,
}

/// `POST /token` (the OAuth2 variant): what the form asked for.
#[derive(Debug)]
pub struct OAuthRequest {
    pub grant_type: String,
    pub service: String,
    /// Who the client is; required, informational.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// `offline` for a refresh token with a password grant.
    pub access_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub client: ClientInfo,
}

/// An OAuth2 failure: tokend's error and the RFC 6749 `error` it means.
#[derive(Debug)]
pub struct OAuthError {
    pub error: Error,
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`, …
    pub oauth: &'static str,
}

impl OAuthError {
    pub(super) fn new(error: Error, oauth: &'static str) -> Self {
        OAuthError { error, oauth }
    }
}

impl From<Error> for OAuthError {
    fn from(error: Error) -> Self {
        let oauth = match error {
            Error::NoActiveAccount | Error::TokenNotValid => "invalid_grant",
            Error::Throttled { .. } => "slow_down",
            Error::Unavailable(_) => "temporarily_unavailable",
            Error::Unexpected(_) => "server_error",
            _ => "invalid_request",
        };
        OAuthError { error, oauth }
    }
}
