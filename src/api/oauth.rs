//! RFC 7009 revocation and RFC 7662 introspection, for services that already
//! speak OAuth 2.0. Registered clients authenticate with
//! `client_secret_basic` or `client_secret_post`; an administrator's Bearer
//! token is accepted for introspection; anyone holding a token may revoke
//! it. Errors also carry RFC 6749's `error` (see `oauth_errors`).

use poem::{Request, http::header, web::Data};
use poem_openapi::{
    Object, OpenApi, SecurityScheme,
    auth::{Basic, Bearer},
    payload::Json,
};
use serde::Deserialize;

use super::{
    ApiTags,
    body::{FormOrJsonBody, JsonOrForm},
    error::{Errors, statuses},
    json_string::JsonString,
    types::{NoStore, Valid},
};
use crate::{
    error::{Error, Result},
    oauth::{Introspector, TokenInfo},
    state::AppState,
};

/// A token, with an optional hint of its type, and the client's
/// credentials when it sends them in the body (`client_secret_post`).
#[derive(Object, Deserialize)]
pub struct TokenForm {
    /// The token.
    pub token: JsonString,
    /// `access_token` or `refresh_token`; tokend finds out by itself.
    #[oai(nullable)]
    pub token_type_hint: Option<JsonString>,
    /// A registered client's id (`client_secret_post`).
    #[oai(nullable)]
    pub client_id: Option<JsonString>,
    /// The client's secret (`client_secret_post`).
    #[oai(nullable)]
    pub client_secret: Option<JsonString>,
}

impl FormOrJsonBody for TokenForm {
    const DESCRIPTION: &'static str = "A token, form-encoded (RFC 7009/7662) or as JSON.";
    const FORM_FIRST: bool = true;
}

/// What introspection tells about a token (RFC 7662).
#[derive(Object, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct Introspection {
    /// Whether the token is valid and active in the registry right now. A
    /// registered client asking about a refresh token is told `false`: it
    /// is never a credential for a resource server.
    pub active: bool,
    /// The OAuth token type: `Bearer` for tokens presented to a resource
    /// (access, container registry and API tokens), `refresh_token` for a
    /// refresh token (only administrators are told of those).
    pub token_type: Option<String>,
    /// tokend's own kind of token: `access`, `refresh`, `registry` or
    /// `api_token`.
    pub tokend_kind: Option<String>,
    /// The user's id.
    pub sub: Option<String>,
    pub username: Option<String>,
    /// The client the token was issued to (`tokend` for a direct login).
    pub client_id: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub iss: Option<String>,
    pub aud: Option<String>,
}

impl From<Option<TokenInfo>> for Introspection {
    fn from(info: Option<TokenInfo>) -> Self {
        let Some(t) = info else {
            return Introspection::default();
        };
        Introspection {
            active: true,
            token_type: Some(t.kind.oauth_token_type().into()),
            tokend_kind: Some(t.kind.as_str().into()),
            sub: Some(t.user.id.to_string()),
            username: Some(t.user.username),
            client_id: t.client_id,
            exp: t.exp,
            iat: Some(t.iat),
            jti: t.jti.map(|j| j.to_string()),
            iss: t.iss,
            aud: t.aud,
        }
    }
}

/// A registered client's id and secret (`client_secret_basic`).
#[derive(SecurityScheme)]
#[oai(ty = "basic", rename = "ClientBasic")]
pub struct ClientBasic(Basic);

/// An administrator's access JWT or API token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "BearerAuth")]
pub struct AdminBearer(Bearer);

/// Who introspects: a client by Basic or by the body, or an administrator.
#[derive(SecurityScheme)]
pub enum IntrospectAuth {
    ClientBasic(ClientBasic),
    AdminBearer(AdminBearer),
    /// `client_secret_post`: the credentials are in the body.
    #[oai(fallback)]
    InBody,
}

/// Who revokes: a client by Basic or by the body, or the token's holder.
#[derive(SecurityScheme)]
pub enum RevokeAuth {
    ClientBasic(ClientBasic),
    /// `client_secret_post`, or no credentials: the holder of a token may
    /// revoke it.
    #[oai(fallback)]
    InBodyOrNone,
}

pub struct OAuthApi;

#[OpenApi(prefix_path = "/api/v1/oauth", tag = "ApiTags::OAuth")]
impl OAuthApi {
    /// Revoke a token (RFC 7009)
    ///
    /// Needs no credentials: whoever holds a token may revoke it. A
    /// registered client may authenticate (`client_secret_basic` or
    /// `client_secret_post`); it then needs the revoke permission. Expires
    /// an access or container registry token, a refresh token's whole tree,
    /// deletes an API token. Answers 200 even for an unknown or invalid
    /// token, as RFC 7009 asks; 400 `unsupported_token_type` for an
    /// anonymous container registry token, which is never registered.
    #[oai(path = "/revoke", method = "post")]
    async fn revoke(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: RevokeAuth,
        body: JsonOrForm<TokenForm>,
    ) -> Result<Json<Valid>, Errors<statuses::OAuthBody>> {
        let JsonOrForm(t) = body;
        let basic = match auth {
            RevokeAuth::ClientBasic(ClientBasic(b)) => Some(b),
            RevokeAuth::InBodyOrNone if sends_scheme(req, "basic") => {
                return Err(Error::InvalidClient.into());
            }
            RevokeAuth::InBodyOrNone => None,
        };
        let client = match credentials(basic, &t)? {
            Some((id, secret)) => Some(state.oauth.client(&id, &secret).await?),
            None => None,
        };
        state.oauth.revoke(client.as_ref(), &t.token).await?;
        Ok(Json(Valid {}))
    }

    /// Introspect a token (RFC 7662)
    ///
    /// For registered clients with the introspect permission
    /// (`client_secret_basic` or `client_secret_post`) and administrators
    /// (Bearer). Registry-aware: a force-expired, rotated or unknown token
    /// is `{"active": false}`. Covers access, refresh, container registry
    /// and API tokens; a client asking about a refresh token is told
    /// `{"active": false}`.
    #[oai(path = "/introspect", method = "post")]
    async fn introspect(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: IntrospectAuth,
        body: JsonOrForm<TokenForm>,
    ) -> Result<NoStore<Introspection>, Errors<statuses::OAuthBody>> {
        let JsonOrForm(t) = body;
        let asker = match auth {
            IntrospectAuth::AdminBearer(AdminBearer(bearer)) => {
                if t.client_id.is_some() || t.client_secret.is_some() {
                    return Err(two_methods().into());
                }
                state.oauth.admin(&bearer.token).await?
            }
            IntrospectAuth::ClientBasic(ClientBasic(b)) => {
                let (id, secret) = credentials(Some(b), &t)?.ok_or(Error::InvalidClient)?;
                Introspector::Client(state.oauth.client(&id, &secret).await?)
            }
            IntrospectAuth::InBody if req.headers().contains_key(header::AUTHORIZATION) => {
                return Err(Error::InvalidClient.into());
            }
            IntrospectAuth::InBody => {
                let (id, secret) = credentials(None, &t)?.ok_or(Error::InvalidClient)?;
                Introspector::Client(state.oauth.client(&id, &secret).await?)
            }
        };
        let info = state.oauth.introspect(&asker, &t.token).await?;
        Ok(NoStore::new(info.into()))
    }
}

/// Whether the request's `Authorization` uses `scheme`.
fn sends_scheme(req: &Request, scheme: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(' ').next().unwrap_or_default())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
}

fn two_methods() -> Error {
    Error::InvalidRequest("Send the client's credentials one way only (RFC 6749 2.3).".into())
}

/// The client's id and secret, from Basic or the body (not both); `None`
/// when neither was sent.
fn credentials(basic: Option<Basic>, t: &TokenForm) -> Result<Option<(String, String)>> {
    let in_body = match (&t.client_id, &t.client_secret) {
        (Some(id), Some(secret)) => Some((id.as_str().to_owned(), secret.as_str().to_owned())),
        (None, None) => None,
        // An id without a secret is a public client, which tokend has not.
        _ => return Err(Error::InvalidClient),
    };
    match (basic, in_body) {
        (Some(_), Some(_)) => Err(two_methods()),
        (Some(b), None) => Ok(Some((b.username, b.password))),
        (None, body) => Ok(body),
    }
}
