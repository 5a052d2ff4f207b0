//! `POST /api/v1/token/{obtain,refresh,verify,expire}`: simplejwt's wire format.

use poem::{Request, web::Data};
use poem_openapi::{
    ApiRequest, Object, OpenApi,
    payload::{Form, Json},
    types::Example,
};
use serde::Deserialize;

use super::{ApiTags, client_info, error::ApiError, text::Text};
use crate::{AppState, config::Secret, registry::Pair};

type Result<T> = std::result::Result<T, ApiError>;

/// A shortened token, for the documentation's examples.
const EXAMPLE_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6IkhUVUM6M1lOQSJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl";

/// Username and password.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct Credentials {
    /// The user's name.
    #[oai(validator(min_length = 1, max_length = 150))]
    pub username: Text,
    /// The user's password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: Text,
}

/// Credentials, as JSON or form-encoded.
#[derive(ApiRequest)]
pub enum ObtainBody {
    Json(Json<Credentials>),
    Form(Form<Credentials>),
}

/// A refresh token.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct RefreshRequest {
    /// The refresh token from `obtain` (or the last rotating `refresh`).
    #[oai(validator(min_length = 1))]
    pub refresh: Text,
}

/// A refresh token, as JSON or form-encoded.
#[derive(ApiRequest)]
pub enum RefreshBody {
    Json(Json<RefreshRequest>),
    Form(Form<RefreshRequest>),
}

/// Any token tokend issued.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct VerifyRequest {
    /// An access or refresh token.
    #[oai(validator(min_length = 1))]
    pub token: Text,
}

/// A token, as JSON or form-encoded.
#[derive(ApiRequest)]
pub enum VerifyBody {
    Json(Json<VerifyRequest>),
    Form(Form<VerifyRequest>),
}

/// A token to expire.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct ExpireRequest {
    /// An access or refresh token; holding it is the right to expire it.
    #[oai(validator(min_length = 1))]
    pub token: Text,
    /// Also expire every token connected to it through parent links
    /// (absent or `null`: `false`).
    #[oai(default, nullable)]
    #[serde(default)]
    pub affect_tree: bool,
}

/// A token to expire, as JSON or form-encoded.
#[derive(ApiRequest)]
pub enum ExpireBody {
    Json(Json<ExpireRequest>),
    Form(Form<ExpireRequest>),
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

/// An empty object: the token is valid.
#[derive(Object)]
pub struct Valid {}

/// How many tokens a call expired.
#[derive(Object)]
#[oai(example)]
pub struct Expired {
    /// Tokens that were active and were expired by this call.
    pub expired: u64,
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
        body: ObtainBody,
    ) -> Result<Json<PairResponse>> {
        let (ObtainBody::Json(Json(creds)) | ObtainBody::Form(Form(creds))) = body;
        let client = client_info(req, state.config.trust_proxy_headers);
        let address = client.address.clone().unwrap_or_default();
        let user = state
            .users
            .login(
                &creds.username,
                Secret::new(creds.password.into_inner()),
                &address,
            )
            .await?;
        let issued = state.registry.obtain(&user, client).await?;
        if state.config.update_last_login {
            state.users.touch_last_login(user.id).await?;
        }
        Ok(Json(pair(issued)))
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
        body: RefreshBody,
    ) -> Result<Json<RefreshResponse>> {
        let (RefreshBody::Json(Json(r)) | RefreshBody::Form(Form(r))) = body;
        let client = client_info(req, state.config.trust_proxy_headers);
        let issued = state.registry.refresh(&r.refresh, client).await?;
        Ok(Json(RefreshResponse {
            access: issued.access.token,
            token_type: "Bearer".into(),
            expires_in: issued.access.expires_in,
            refresh_expires_in: issued.refresh.as_ref().and_then(|r| r.expires_in),
            refresh: issued.refresh.map(|r| r.token),
        }))
    }

    /// Verify
    ///
    /// Answers `{}` when the token is valid and active in the registry.
    #[oai(path = "/verify", method = "post")]
    async fn verify(&self, state: Data<&AppState>, body: VerifyBody) -> Result<Json<Valid>> {
        let (VerifyBody::Json(Json(v)) | VerifyBody::Form(Form(v))) = body;
        state.registry.check(&v.token, None).await?;
        Ok(Json(Valid {}))
    }

    /// Expire
    ///
    /// Expires the token, or with `affect_tree` every token of its tree.
    #[oai(path = "/expire", method = "post")]
    async fn expire(&self, state: Data<&AppState>, body: ExpireBody) -> Result<Json<Expired>> {
        let (ExpireBody::Json(Json(e)) | ExpireBody::Form(Form(e))) = body;
        let expired = state.registry.expire(&e.token, e.affect_tree).await?;
        Ok(Json(Expired { expired }))
    }
}

fn pair(pair: Pair) -> PairResponse {
    PairResponse {
        access: pair.access.token,
        refresh: pair.refresh.token,
        token_type: "Bearer".into(),
        expires_in: pair.access.expires_in,
        refresh_expires_in: pair.refresh.expires_in,
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

impl Example for Expired {
    fn example() -> Self {
        Expired { expired: 3 }
    }
}
