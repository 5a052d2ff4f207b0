//! RFC 7009 revocation and RFC 7662 introspection, for services that already
//! speak OAuth 2.0.

use poem::web::Data;
use poem_openapi::{ApiRequest, Object, OpenApi, payload::Form, payload::Json};
use serde::Deserialize;

use super::{ApiTags, error::ApiError, text::Text, token::Valid};
use crate::{AppState, auth::BearerAuth, error::Error, jwt::TokenType};

/// A token, with an optional hint of its type.
#[derive(Object, Deserialize)]
pub struct TokenForm {
    /// The token.
    pub token: Text,
    /// `access_token` or `refresh_token`; tokend finds out by itself.
    #[oai(nullable)]
    pub token_type_hint: Option<Text>,
}

/// A token, form-encoded (RFC 7009/7662) or as JSON.
#[derive(ApiRequest)]
pub enum TokenBody {
    Form(Form<TokenForm>),
    Json(Json<TokenForm>),
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
        body: TokenBody,
    ) -> Result<Json<Valid>, ApiError> {
        let (TokenBody::Form(Form(t)) | TokenBody::Json(Json(t))) = body;
        match state.registry.check(&t.token, None).await {
            Ok(checked) => {
                let tree = checked.claims.token_type == TokenType::Refresh;
                state.registry.expire_row(&checked.row, tree).await?;
            }
            Err(Error::TokenNotValid) => {}
            Err(e) => return Err(e.into()),
        }
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
        body: TokenBody,
    ) -> Result<Json<Introspection>, ApiError> {
        if !auth.0.user.is_admin {
            return Err(Error::PermissionDenied.into());
        }
        let (TokenBody::Form(Form(t)) | TokenBody::Json(Json(t))) = body;
        let answer = match state.registry.check(&t.token, None).await {
            Ok(checked) => {
                let c = checked.claims;
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
        Ok(Json(answer))
    }
}
