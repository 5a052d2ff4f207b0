//! `GET /api/v1/tokens`, `POST /api/v1/tokens/{id}/expire`: the caller's own
//! tokens (their sessions).

use chrono::{DateTime, Utc};
use poem::web::Data;
use std::borrow::Cow;

use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromParameter, ParseResult, Type},
};
use uuid::Uuid;

use super::{ApiTags, error::ApiError, token::Expired};
use crate::{
    AppState,
    auth::BearerAuth,
    error::Error,
    registry::{CURSOR_PATTERN, Cursor, ListQuery, Page, TokenState},
};

/// The `cursor` query parameter: a page's `next_cursor`, or empty for the
/// first page. Documented with its pattern, so that every text the spec
/// allows is one tokend reads.
#[derive(Debug, Clone, Copy)]
pub struct CursorParam(Option<Cursor>);

impl Type for CursorParam {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string(cursor)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(CURSOR_PATTERN.into()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for CursorParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        if value.is_empty() {
            return Ok(CursorParam(None));
        }
        Cursor::decode(value)
            .map(|c| CursorParam(Some(c)))
            .map_err(|_| ParseError::custom("not a cursor tokend gave"))
    }
}

/// Which tokens to list.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum StateParam {
    /// Tokens that still work.
    Active,
    /// Tokens that were expired, rotated away, or are past their expiry.
    Expired,
    /// Both.
    All,
}

impl From<StateParam> for TokenState {
    fn from(s: StateParam) -> Self {
        match s {
            StateParam::Active => TokenState::Active,
            StateParam::Expired => TokenState::Expired,
            StateParam::All => TokenState::All,
        }
    }
}

/// Where a token went.
#[derive(Object)]
pub struct DeviceOut {
    pub user_agent: String,
    pub client_address: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A registry entry.
#[derive(Object)]
pub struct TokenItem {
    /// The registry id (for `/api/v1/tokens/{id}/expire`).
    pub id: Uuid,
    /// The token's `jti` claim.
    pub jti: Uuid,
    /// `access`, `refresh` or `registry`.
    pub token_type: String,
    /// The token it was minted from.
    #[oai(nullable)]
    pub parent_id: Option<Uuid>,
    /// Its owner.
    #[oai(nullable)]
    pub user_id: Option<Uuid>,
    pub issued_at: DateTime<Utc>,
    /// Natural expiry; null when expiry is disabled.
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was force-expired; null otherwise.
    #[oai(nullable)]
    pub expired_at: Option<DateTime<Utc>>,
    /// When a rotation used it up (refresh tokens).
    #[oai(nullable)]
    pub rotated_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub device: Option<DeviceOut>,
}

/// A page of tokens, newest first.
#[derive(Object)]
pub struct TokenPage {
    pub items: Vec<TokenItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl From<Page> for TokenPage {
    fn from(page: Page) -> Self {
        let items = page
            .rows
            .into_iter()
            .map(|(t, d)| TokenItem {
                id: t.id,
                jti: t.jti,
                token_type: t.token_type,
                parent_id: t.parent_id,
                user_id: t.user_id,
                issued_at: t.issued_at,
                expires_at: t.expires_at,
                expired_at: t.expired_at,
                rotated_at: t.rotated_at,
                device: d.map(|d| DeviceOut {
                    user_agent: d.user_agent,
                    client_address: d.client_address,
                    first_seen: d.first_seen,
                    last_seen: d.last_seen,
                }),
            })
            .collect();
        TokenPage {
            items,
            next_cursor: page.next_cursor.map(|c| c.encode()),
        }
    }
}

/// Whether to expire the token's whole tree.
#[derive(Object)]
pub struct ExpireOne {
    /// Also expire every token connected to it through parent links
    /// (absent or `null`: `false`).
    #[oai(default, nullable)]
    pub affect_tree: bool,
}

/// The listing parameters shared by the user's and the administrator's views.
pub fn list_query(
    user_id: Option<Uuid>,
    state: Option<StateParam>,
    limit: Option<u64>,
    cursor: Option<CursorParam>,
) -> ListQuery {
    ListQuery {
        user_id,
        state: state.map_or(TokenState::Active, Into::into),
        limit: limit.unwrap_or(50),
        cursor: cursor.and_then(|c| c.0),
    }
}

pub struct TokensApi;

#[OpenApi(prefix_path = "/api/v1/tokens", tag = "ApiTags::Tokens")]
impl TokensApi {
    /// My tokens
    ///
    /// The caller's tokens, newest first, a page at a time.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `active` (default), `expired` or `all`.
        #[oai(name = "state")]
        token_state: Query<Option<StateParam>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<CursorParam>>,
    ) -> Result<Json<TokenPage>, ApiError> {
        let query = list_query(Some(auth.0.user.id), token_state.0, limit.0, cursor.0);
        Ok(Json(state.registry.list(query).await?.into()))
    }

    /// Expire one of my tokens
    ///
    /// Expires the token (or its whole tree). Another user's token, or an id
    /// that is not a UUID, is 404.
    #[oai(path = "/:id/expire", method = "post")]
    async fn expire(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The token's registry id.
        id: Path<String>,
        body: Json<ExpireOne>,
    ) -> Result<Json<Expired>, ApiError> {
        let id: Uuid = id.0.parse().map_err(|_| Error::NotFound)?;
        let row = state.registry.find_for_user(auth.0.user.id, id).await?;
        let expired = state.registry.expire_row(&row, body.0.affect_tree).await?;
        Ok(Json(Expired { expired }))
    }
}
