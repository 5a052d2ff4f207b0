//! `POST /api/v1/token/{obtain,refresh,verify,expire}`: simplejwt's wire format.

use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json, types::Example};
use serde::Deserialize;

use super::{
    ApiTags,
    body::{FormOrJsonBody, JsonOrForm},
    client::client_info,
    error::{Errors, statuses},
    json_string::JsonString,
    types::{Expired, NoStore, Valid},
};
use crate::{
    registry::{Refreshed, TokenPair},
    secret::Secret,
    state::AppState,
};

/// A shortened token, for the documentation's examples.
const EXAMPLE_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6IkhUVUM6M1lOQSJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl";

/// Username and password.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct Credentials {
    /// The user's name.
    #[oai(validator(min_length = 1, max_length = 150))]
    pub username: JsonString,
    /// The user's password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: JsonString,
}

/// A refresh token.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct RefreshRequest {
    /// The refresh token from `obtain` (or the last rotating `refresh`).
    #[oai(validator(min_length = 1))]
    pub refresh: JsonString,
}

/// Any token tokend issued.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct VerifyRequest {
    /// An access or refresh token.
    #[oai(validator(min_length = 1))]
    pub token: JsonString,
}

/// A token to expire.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct ExpireRequest {
    /// An access or refresh token; holding it is the right to expire it.
    #[oai(validator(min_length = 1))]
    pub token: JsonString,
    /// Also expire every token connected to it through parent links
    /// (absent or `null`: `false`).
    /// In a form: `true`, `True`, `1`, `false`, `False` or `0`.
    #[oai(default, nullable)]
    #[serde(default, deserialize_with = "super::form::drf_bool")]
    pub affect_tree: bool,
}

/// A new token pair.
#[derive(Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct PairResponse {
    /// The access token, for `Authorization: Bearer`.
    pub access: String,
    /// The refresh token, for `refresh`.
    pub refresh: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives; absent when it never expires.
    pub expires_in: Option<u64>,
    /// Seconds the refresh token lives; absent when it never expires.
    pub refresh_expires_in: Option<u64>,
}

/// A new access token, and with rotation a new refresh token.
#[derive(Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct RefreshResponse {
    /// The new access token.
    pub access: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives; absent when it never expires.
    pub expires_in: Option<u64>,
    /// The new refresh token, when rotation is on; the old one is used up.
    pub refresh: Option<String>,
    /// Seconds the new refresh token lives; absent without rotation or expiry.
    pub refresh_expires_in: Option<u64>,
}

impl FormOrJsonBody for Credentials {
    const DESCRIPTION: &'static str = "Credentials, as JSON or form-encoded.";
}

impl FormOrJsonBody for RefreshRequest {
    const DESCRIPTION: &'static str = "A refresh token, as JSON or form-encoded.";
}

impl FormOrJsonBody for VerifyRequest {
    const DESCRIPTION: &'static str = "A token, as JSON or form-encoded.";
}

impl FormOrJsonBody for ExpireRequest {
    const DESCRIPTION: &'static str = "A token to expire, as JSON or form-encoded.";
}

pub struct TokenApi;

#[OpenApi(prefix_path = "/api/v1/token", tag = "ApiTags::Token")]
impl TokenApi {
    /// Obtain a token pair
    ///
    /// Trades a username and password for an access and a refresh token. An
    /// unknown user, a wrong password and an inactive user get the same 401.
    #[oai(path = "/obtain", method = "post")]
    async fn obtain(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: JsonOrForm<Credentials>,
    ) -> Result<NoStore<PairResponse>, Errors<statuses::Login>> {
        let JsonOrForm(creds) = body;
        let client = client_info(req, &state.http.trusted_proxies);
        let pair = state
            .users
            .sign_in(
                &creds.username,
                Secret::new(creds.password.into_inner()),
                client,
            )
            .await?;
        Ok(NoStore::new(pair.into()))
    }

    /// Refresh
    ///
    /// Trades a refresh token for a new access token. With rotation on, also
    /// a new refresh token, and the presented one is used up: presenting it
    /// again expires its whole tree.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: JsonOrForm<RefreshRequest>,
    ) -> Result<NoStore<RefreshResponse>, Errors<statuses::TokenInBody>> {
        let JsonOrForm(r) = body;
        let client = client_info(req, &state.http.trusted_proxies);
        let refreshed = state.registry.refresh(&r.refresh, client).await?;
        Ok(NoStore::new(refreshed.into()))
    }

    /// Verify
    ///
    /// Answers `{}` when the token is valid and active in the registry.
    #[oai(path = "/verify", method = "post")]
    async fn verify(
        &self,
        state: Data<&AppState>,
        body: JsonOrForm<VerifyRequest>,
    ) -> Result<Json<Valid>, Errors<statuses::TokenInBody>> {
        let JsonOrForm(v) = body;
        state.registry.check(&v.token, None).await?;
        Ok(Json(Valid {}))
    }

    /// Expire
    ///
    /// Expires the token, or with `affect_tree` every token of its tree.
    #[oai(path = "/expire", method = "post")]
    async fn expire(
        &self,
        state: Data<&AppState>,
        body: JsonOrForm<ExpireRequest>,
    ) -> Result<Json<Expired>, Errors<statuses::TokenInBody>> {
        let JsonOrForm(e) = body;
        let expired = state.registry.expire(&e.token, e.affect_tree).await?;
        Ok(Json(Expired { expired }))
    }
}

impl From<TokenPair> for PairResponse {
    fn from(pair: TokenPair) -> Self {
        PairResponse {
            access: pair.access.text,
            refresh: pair.refresh.text,
            token_type: "Bearer".into(),
            expires_in: pair.access.expires_in,
            refresh_expires_in: pair.refresh.expires_in,
        }
    }
}

impl From<Refreshed> for RefreshResponse {
    fn from(refreshed: Refreshed) -> Self {
        RefreshResponse {
            access: refreshed.access.text,
            token_type: "Bearer".into(),
            expires_in: refreshed.access.expires_in,
            refresh_expires_in: refreshed.refresh.as_ref().and_then(|r| r.expires_in),
            refresh: refreshed.refresh.map(|r| r.text),
        }
    }
}

impl Example for Credentials {
    fn example() -> Self {
        Credentials {
            username: "alice".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

impl Example for RefreshRequest {
    fn example() -> Self {
        RefreshRequest {
            refresh: EXAMPLE_JWT.into(),
        }
    }
}

impl Example for VerifyRequest {
    fn example() -> Self {
        VerifyRequest {
            token: EXAMPLE_JWT.into(),
        }
    }
}

impl Example for ExpireRequest {
    fn example() -> Self {
        ExpireRequest {
            token: EXAMPLE_JWT.into(),
            affect_tree: true,
        }
    }
}

impl Example for PairResponse {
    fn example() -> Self {
        PairResponse {
            access: EXAMPLE_JWT.into(),
            refresh: EXAMPLE_JWT.into(),
            token_type: "Bearer".into(),
            expires_in: Some(300),
            refresh_expires_in: Some(86400),
        }
    }
}

impl Example for RefreshResponse {
    fn example() -> Self {
        RefreshResponse {
            access: EXAMPLE_JWT.into(),
            token_type: "Bearer".into(),
            expires_in: Some(300),
            refresh: None,
            refresh_expires_in: None,
        }
    }
}
