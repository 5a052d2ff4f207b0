//! RFC 7009 revocation and RFC 7662 introspection, for services that already
//! speak OAuth 2.0.

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{
    ApiTags,
    auth::BearerAuth,
    body::{FormOrJsonBody, JsonOrForm},
    error::{Errors, statuses},
    json_string::JsonString,
    types::{NoStore, Valid},
};
use crate::{error::Error, state::AppState};

/// A token, with an optional hint of its type.
#[derive(Object, Deserialize)]
pub struct TokenForm {
    /// The token.
    pub token: JsonString,
    /// `access_token` or `refresh_token`; tokend finds out by itself.
    #[oai(nullable)]
    pub token_type_hint: Option<JsonString>,
}

impl FormOrJsonBody for TokenForm {
    const DESCRIPTION: &'static str = "A token, form-encoded (RFC 7009/7662) or as JSON.";
    const FORM_FIRST: bool = true;
}

/// What introspection tells about a token.
#[derive(Object, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct Introspection {
    /// Whether the token is valid and active in the registry right now.
    pub active: bool,
    pub sub: Option<String>,
    pub username: Option<String>,
    pub token_type: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub iss: Option<String>,
    pub aud: Option<String>,
}

pub struct OAuthApi;

#[OpenApi(prefix_path = "/api/v1/oauth", tag = "ApiTags::OAuth")]
impl OAuthApi {
    /// Revoke a token (RFC 7009)
    ///
    /// Expires the token, and with a refresh token its whole tree. Answers
    /// 200 even for an unknown or invalid token, as RFC 7009 asks.
    #[oai(path = "/revoke", method = "post")]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        body: JsonOrForm<TokenForm>,
    ) -> Result<Json<Valid>, Errors<statuses::PublicBody>> {
        let JsonOrForm(t) = body;
        state.registry.revoke(&t.token).await?;
        Ok(Json(Valid {}))
    }

    /// Introspect a token (RFC 7662)
    ///
    /// For administrators. Registry-aware: a force-expired, rotated or
    /// unknown token is `{"active": false}`.
    #[oai(path = "/introspect", method = "post")]
    async fn introspect(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: JsonOrForm<TokenForm>,
    ) -> Result<NoStore<Introspection>, Errors<statuses::BearerBodyAdmin>> {
        auth.admin()?;
        let JsonOrForm(t) = body;
        let answer = match state.registry.check(&t.token, None).await {
            Ok(valid) => {
                let c = valid.claims;
                Introspection {
                    active: true,
                    sub: Some(c.sub),
                    username: Some(c.username),
                    token_type: Some(c.token_type.as_str().into()),
                    exp: c.exp,
                    iat: Some(c.iat),
                    jti: Some(c.jti.to_string()),
                    iss: c.iss,
                    aud: c.aud,
                }
            }
            Err(Error::TokenNotValid) => Introspection::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(NoStore::new(answer))
    }
}
