//! The API types more than one group of routes answers or takes.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use entity::users;
use poem_openapi::{
    ApiResponse, Enum, Object,
    payload::Json,
    registry::{MetaSchema, MetaSchemaRef},
    types::{Example, ParseError, ParseFromParameter, ParseResult, ToJSON, Type},
};
use uuid::Uuid;

use crate::store::{CURSOR_PATTERN, Cursor, Page, PageQuery, TokenState};

/// A user account.
#[derive(Object)]
pub struct UserOut {
    /// The user's id.
    pub id: Uuid,
    pub username: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    /// The last successful obtain, when `update_last_login` is on; `null`
    /// before the first one.
    #[oai(nullable)]
    pub last_login: Option<DateTime<Utc>>,
}

impl From<users::Model> for UserOut {
    fn from(u: users::Model) -> Self {
        UserOut {
            id: u.id,
            username: u.username,
            is_admin: u.is_admin,
            is_active: u.is_active,
            created_at: u.created_at,
            last_login: u.last_login,
        }
    }
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

impl Example for Expired {
    fn example() -> Self {
        Expired { expired: 3 }
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1): what
/// an answer that carries a token or a secret says to caches.
pub const NO_STORE: &str = "no-store";
pub const NO_CACHE: &str = "no-cache";

/// An answer that carries a token or a secret: no cache may keep it.
#[derive(ApiResponse)]
pub enum NoStore<T: ToJSON> {
    /// The answer; it holds a secret, so caches must not keep it.
    #[oai(status = 200)]
    Ok(
        Json<T>,
        /// Always `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// Always `no-cache`.
        #[oai(header = "Pragma")]
        String,
    ),
}

impl<T: ToJSON> NoStore<T> {
    pub fn new(body: T) -> Self {
        NoStore::Ok(Json(body), NO_STORE.into(), NO_CACHE.into())
    }
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
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

    raw_value_is_self!();
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

/// The listing parameters shared by the user's and the administrator's views.
pub fn page_query(
    user_id: Option<Uuid>,
    state: Option<StateParam>,
    limit: Option<u64>,
    cursor: Option<CursorParam>,
) -> PageQuery {
    PageQuery {
        user_id,
        state: state.map_or(TokenState::Active, Into::into),
        limit: limit.unwrap_or(50),
        cursor: cursor.and_then(|c| c.0),
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
