//! The token registry: issuing, refreshing, checking and expiring tokens.
//! Every business rule about tokens (rotation, reuse detection, tree expiry)
//! lives here, where tests can reach it without HTTP.

pub mod pipeline;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::{devices, tokens, users};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Condition, Expr},
};
use uuid::Uuid;

use crate::{
    config::{Config, Lifetime},
    error::{Error, Result},
    inline_read::Found,
    jwt::{Claims, KeyRing, TokenType},
};
use pipeline::{ClientInfo, NewToken, Pipeline, RegistrationContext};

/// Token lifetimes and refresh rules, from the settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub access_lifetime: Lifetime,
    pub refresh_lifetime: Lifetime,
    pub rotate_refresh_tokens: bool,
    pub expire_on_refresh: bool,
    pub refresh_reuse_grace: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl TokenSettings {
    pub fn from_config(config: &Config) -> Self {
        TokenSettings {
            access_lifetime: config.access_token_lifetime,
            refresh_lifetime: config.refresh_token_lifetime,
            rotate_refresh_tokens: config.rotate_refresh_tokens,
            expire_on_refresh: config.expire_on_refresh,
            refresh_reuse_grace: config.refresh_reuse_grace.0,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }
    }
}

/// A signed token and how long it lives (`None`: no expiry).
#[derive(Debug, Clone)]
pub struct SignedToken {
    pub token: String,
    pub expires_in: Option<u64>,
}

/// What `obtain` hands out.
#[derive(Debug, Clone)]
pub struct Pair {
    pub access: SignedToken,
    pub refresh: SignedToken,
}

/// What `refresh` hands out: a refresh token only with rotation.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access: SignedToken,
    pub refresh: Option<SignedToken>,
}

/// A token that passed every check, with its registry row and its user.
#[derive(Debug, Clone)]
pub struct Checked {
    pub claims: Claims,
    pub row: tokens::Model,
    pub user: users::Model,
}

#[derive(Clone, Debug)]
pub struct Registry {
    db: crate::db::Db,
    keys: Arc<KeyRing>,
    settings: TokenSettings,
    pipeline: Pipeline,
}

impl Registry {
    pub fn new(
        db: crate::db::Db,
        keys: Arc<KeyRing>,
        settings: TokenSettings,
        pipeline: Pipeline,
    ) -> Self {
        Registry {
            db,
            keys,
            settings,
            pipeline,
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Issues a refresh/access pair to an authenticated user.
    pub async fn obtain(&self, user: &users::Model, client: ClientInfo) -> Result<Pair> {
        let now = Utc::now();
        let audience = self.settings.audience.as_deref();
        let (refresh, refresh_new) = self.mint(user.into(), TokenType::Refresh, now, audience)?;
        let (access, access_new) = self.mint(user.into(), TokenType::Access, now, audience)?;
        self.register(vec![refresh_new, access_new], Some(user.id), client, now)
            .await?;
        Ok(Pair { access, refresh })
    }

    /// Registers new tokens (no parent) in a transaction of their own.
    async fn register(
        &self,
        tokens: Vec<NewToken>,
        user_id: Option<Uuid>,
        client: ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let txn = self.db.write.begin().await?;
        let ctx = RegistrationContext::new(tokens, None, user_id, client, now);
        self.pipeline.run(ctx, &txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Issues a token that `sign` makes (the container registry's) to `user`
    /// (`None`: an anonymous caller). With `offline_audience` and a user, a
    /// refresh token bound to that audience comes first and is its parent.
    /// `sign` gets the issue time and returns its token and registry row.
    pub async fn issue<T>(
        &self,
        user: Option<&users::Model>,
        offline_audience: Option<&str>,
        client: ClientInfo,
        sign: impl FnOnce(DateTime<Utc>) -> Result<(T, NewToken)>,
    ) -> Result<(T, Option<SignedToken>)> {
        let now = Utc::now();
        let mut issue = Vec::with_capacity(2);
        let mut refresh = None;
        if let (Some(user), Some(audience)) = (user, offline_audience) {
            let (signed, new) = self.mint(user.into(), TokenType::Refresh, now, Some(audience))?;
            refresh = Some(signed);
            issue.push(new);
        }
        let (token, new) = sign(now)?;
        issue.push(new);
        self.register(issue, user.map(|u| u.id), client, now)
            .await?;
        Ok((token, refresh))
    }

    /// Trades a refresh token for a new access token (and, with rotation, a
    /// new refresh token). A used-up refresh token presented again is theft:
    /// its whole tree is expired, unless it comes within the reuse grace.
    pub async fn refresh(&self, token: &str, client: ClientInfo) -> Result<Issued> {
        let audience = self.settings.audience.as_deref();
        // Checked before anything is signed for it.
        let claims = self.refresh_claims(token, audience)?;
        let now = Utc::now();
        // Sign before taking the writer, which a refresh then holds for its
        // database work alone (on SQLite every refresh waits for it). The
        // refresh token names its user; should the user found in the
        // transaction differ in name, the tokens are signed again for it.
        let subject = Subject {
            id: claims.user_id,
            username: &claims.username,
        };
        let rotated = self
            .settings
            .rotate_refresh_tokens
            .then(|| self.mint(subject, TokenType::Refresh, now, audience))
            .transpose()?;
        let access = self.mint(subject, TokenType::Access, now, audience)?;
        let (access, refresh) = self
            .refresh_verified(&claims, audience, client, now, rotated, |user, now| {
                if Subject::from(user) == subject {
                    Ok(access)
                } else {
                    self.mint(user.into(), TokenType::Access, now, audience)
                }
            })
            .await?;
        Ok(Issued { access, refresh })
    }

    /// The refresh rules of [`Registry::refresh`] for a refresh token bound
    /// to `audience` (and accepted for that audience only), issuing the token
    /// `sign` makes for the token's user at the refresh time. Such a token
    /// is never rotated, whatever `rotate_refresh_tokens` says: container
    /// clients keep the refresh token of their login for its whole life.
    pub async fn refresh_with<T>(
        &self,
        token: &str,
        audience: Option<&str>,
        client: ClientInfo,
        sign: impl FnOnce(&users::Model, DateTime<Utc>) -> Result<(T, NewToken)>,
    ) -> Result<(T, Option<SignedToken>)> {
        let claims = self.refresh_claims(token, audience)?;
        self.refresh_verified(&claims, audience, client, Utc::now(), None, sign)
            .await
    }

    /// The claims of a refresh token bound to `audience`; anything else is
    /// not valid here.
    fn refresh_claims(&self, token: &str, audience: Option<&str>) -> Result<Claims> {
        let claims = self.keys.verify_claims(token, audience)?;
        if claims.token_type != TokenType::Refresh || claims.aud.as_deref() != audience {
            return Err(Error::TokenNotValid);
        }
        Ok(claims)
    }

    /// [`Registry::refresh_with`] for the claims of
    /// [`refresh_claims`](Self::refresh_claims); `rotated` is the successor
    /// refresh token when it was signed already (for the claims' user).
    async fn refresh_verified<T>(
        &self,
        claims: &Claims,
        audience: Option<&str>,
        client: ClientInfo,
        now: DateTime<Utc>,
        rotated: Option<Minted>,
        sign: impl FnOnce(&users::Model, DateTime<Utc>) -> Result<(T, NewToken)>,
    ) -> Result<(T, Option<SignedToken>)> {
        let txn = self.db.write.begin().await?;
        let (mut row, mut user) = find_by_jti(&txn, claims.jti).await?;
        // Tree first, then user: every path takes them in this order.
        if lock(&txn, row.root_id).await? {
            if let Some(user_id) = row.user_id {
                lock(&txn, user_id).await?;
            }
            // Read again: a tree or user expiry may have committed while we waited.
            (row, user) = find_by_jti(&txn, claims.jti).await?;
        }
        if row.rotated_at.is_some() {
            self.on_reuse(txn, &row, now).await?;
            return Err(Error::TokenNotValid);
        }
        let user = agrees(claims, &row, user, now)?;

        let mut issue = Vec::with_capacity(2);
        let mut refresh = None;
        // `rotated` is signed when this refresh rotates: the API's refresh
        // with rotation on. Container offline refresh tokens never rotate:
        // docker and containers/image keep the one they got.
        if let Some(minted) = rotated {
            let used_up = tokens::Entity::update_many()
                .col_expr(tokens::Column::RotatedAt, Expr::value(now))
                .filter(tokens::Column::Id.eq(row.id))
                .filter(tokens::Column::RotatedAt.is_null())
                .filter(tokens::Column::ExpiredAt.is_null())
                .exec(&txn)
                .await?;
            if used_up.rows_affected != 1 {
                // Another refresh rotated it between our read and our write.
                let (row, _) = find_by_jti(&txn, claims.jti).await?;
                self.on_reuse(txn, &row, now).await?;
                return Err(Error::TokenNotValid);
            }
            let (signed, new) = if user.username == claims.username {
                minted
            } else {
                self.mint((&user).into(), TokenType::Refresh, now, audience)?
            };
            refresh = Some(signed);
            issue.push(new);
        }
        let (issued, new) = sign(&user, now)?;
        issue.push(new);
        if self.settings.expire_on_refresh {
            tokens::Entity::update_many()
                .col_expr(tokens::Column::ExpiredAt, Expr::value(now))
                .filter(tokens::Column::RootId.eq(row.root_id))
                .filter(tokens::Column::Id.ne(row.id))
                .filter(active_at(now))
                .exec(&txn)
                .await?;
        }
        let ctx = RegistrationContext::new(issue, Some(row), None, client, now);
        self.pipeline.run(ctx, &txn).await?;
        txn.commit().await?;
        Ok((issued, refresh))
    }

    /// A used-up refresh token came back: outside the grace period, expire
    /// every token of its tree (and commit that), inside it, change nothing.
    async fn on_reuse(
        &self,
        txn: sea_orm::DatabaseTransaction,
        row: &tokens::Model,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let rotated_at = row.rotated_at.unwrap_or(now);
        let grace = chrono::Duration::from_std(self.settings.refresh_reuse_grace)
            .unwrap_or(chrono::Duration::MAX);
        if now - rotated_at <= grace && !grace.is_zero() {
            return Ok(());
        }
        let expired = expire_where(&txn, tokens::Column::RootId.eq(row.root_id), now).await?;
        txn.commit().await?;
        tracing::warn!(
            token_id = %row.id,
            user_id = ?row.user_id,
            expired,
            "a rotated refresh token was presented again; its tree is expired"
        );
        Ok(())
    }

    /// Checks a token completely: signature and claims, then the registry
    /// (same type and user, active) and the user (exists, active).
    pub async fn check(&self, token: &str, expected: Option<TokenType>) -> Result<Checked> {
        let claims = self
            .keys
            .verify_claims(token, self.settings.audience.as_deref())?;
        // A refresh token bound to a container registry service is for its
        // refresh grant only.
        if expected.is_some_and(|t| t != claims.token_type) || claims.aud != self.settings.audience
        {
            return Err(Error::TokenNotValid);
        }
        let (row, user) = self.read_by_jti(claims.jti).await?;
        let user = agrees(&claims, &row, user, Utc::now())?;
        Ok(Checked { claims, row, user })
    }

    /// A token's row and user, outside any transaction: on the calling
    /// thread where SQLite allows it, else (and whenever that fails or meets
    /// a value it cannot read) through sea-orm, which then decides.
    async fn read_by_jti(&self, jti: Uuid) -> Result<(tokens::Model, Option<users::Model>)> {
        if let Some(inline) = &self.db.inline {
            match inline.token_by_jti(jti) {
                Ok(Found::Row(row, user)) => return Ok((row, user)),
                Ok(Found::Nothing) => return Err(Error::TokenNotValid),
                Ok(Found::Undecodable) | Err(_) => {}
            }
        }
        find_by_jti(&self.db.read, jti).await
    }

    /// Expires a valid token, or with `affect_tree` every token of its tree.
    /// Returns how many active tokens this call expired.
    pub async fn expire(&self, token: &str, affect_tree: bool) -> Result<u64> {
        let checked = self.check(token, None).await?;
        self.expire_row(&checked.row, affect_tree).await
    }

    /// Expires one registry row, or its whole tree.
    pub async fn expire_row(&self, row: &tokens::Model, affect_tree: bool) -> Result<u64> {
        let now = Utc::now();
        if !affect_tree {
            return expire_where(&self.db.write, tokens::Column::Id.eq(row.id), now).await;
        }
        let txn = self.db.write.begin().await?;
        lock(&txn, row.root_id).await?;
        let expired = expire_where(&txn, tokens::Column::RootId.eq(row.root_id), now).await?;
        txn.commit().await?;
        Ok(expired)
    }

    /// Expires every active token of a user; returns how many. Holds the
    /// user's lock, so that a refresh racing it cannot leave a live token.
    pub async fn expire_user(&self, user_id: Uuid) -> Result<u64> {
        let txn = self.db.write.begin().await?;
        lock(&txn, user_id).await?;
        let expired = expire_where(&txn, tokens::Column::UserId.eq(user_id), Utc::now()).await?;
        txn.commit().await?;
        Ok(expired)
    }

    /// One of a user's tokens by id; another user's token is not found.
    pub async fn find_for_user(&self, user_id: Uuid, id: Uuid) -> Result<tokens::Model> {
        tokens::Entity::find_by_id(id)
            .filter(tokens::Column::UserId.eq(user_id))
            .one(&self.db.read)
            .await?
            .ok_or(Error::NotFound)
    }

    /// A page of tokens, newest first (issued_at, then id), by keyset: the
    /// cost of a page does not grow with how deep it is.
    pub async fn list(&self, query: ListQuery) -> Result<Page> {
        let now = Utc::now();
        let mut select = tokens::Entity::find()
            .find_also_related(devices::Entity)
            .order_by_desc(tokens::Column::IssuedAt)
            .order_by_desc(tokens::Column::Id)
            .limit(query.limit + 1);
        if let Some(user_id) = query.user_id {
            select = select.filter(tokens::Column::UserId.eq(user_id));
        }
        select = match query.state {
            TokenState::Active => select.filter(active_at(now)),
            TokenState::Expired => select.filter(active_at(now).not()),
            TokenState::All => select,
        };
        if let Some(cursor) = query.cursor {
            select = select.filter(
                Condition::any()
                    .add(tokens::Column::IssuedAt.lt(cursor.issued_at))
                    .add(
                        Condition::all()
                            .add(tokens::Column::IssuedAt.eq(cursor.issued_at))
                            .add(tokens::Column::Id.lt(cursor.id)),
                    ),
            );
        }
        let mut rows = select.all(&self.db.read).await?;
        let next_cursor = if rows.len() as u64 > query.limit {
            rows.truncate(query.limit as usize);
            rows.last().map(|(t, _)| Cursor {
                issued_at: t.issued_at,
                id: t.id,
            })
        } else {
            None
        };
        Ok(Page { rows, next_cursor })
    }

    /// Removes tokens that are no longer active and died before `cutoff`
    /// (at most now), in batches of short transactions so that token issue
    /// never waits long. A rotated refresh token goes only once its natural
    /// expiry is past the cutoff too, so that its reuse stays detectable.
    pub async fn archive(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let cutoff = cutoff.min(Utc::now());
        let dead = Condition::any()
            .add(
                Condition::all()
                    .add(tokens::Column::RotatedAt.is_null())
                    .add(
                        Condition::any()
                            .add(tokens::Column::ExpiredAt.lt(cutoff))
                            .add(tokens::Column::ExpiresAt.lt(cutoff)),
                    ),
            )
            .add(
                Condition::all()
                    .add(tokens::Column::RotatedAt.lt(cutoff))
                    .add(tokens::Column::ExpiresAt.lt(cutoff)),
            );
        let mut archived = 0;
        loop {
            let ids: Vec<Uuid> = tokens::Entity::find()
                .select_only()
                .column(tokens::Column::Id)
                .filter(dead.clone())
                .limit(ARCHIVE_BATCH)
                .into_tuple()
                .all(&self.db.read)
                .await?;
            if ids.is_empty() {
                break;
            }
            let batch = ids.len() as u64;
            let deleted = tokens::Entity::delete_many()
                .filter(tokens::Column::Id.is_in(ids))
                .filter(dead.clone())
                .exec(&self.db.write)
                .await?;
            archived += deleted.rows_affected;
            if batch < ARCHIVE_BATCH {
                break;
            }
            // Let waiting writers in between batches.
            tokio::task::yield_now().await;
        }
        Ok(archived)
    }

    /// Signs a token of `kind` with `audience` for `user` and describes its
    /// registry row.
    fn mint(
        &self,
        user: Subject<'_>,
        kind: TokenType,
        now: DateTime<Utc>,
        audience: Option<&str>,
    ) -> Result<Minted> {
        let lifetime = match kind {
            TokenType::Refresh => self.settings.refresh_lifetime,
            _ => self.settings.access_lifetime,
        };
        let new = NewToken::new(kind, now, lifetime.0);
        let claims = Claims {
            token_type: kind,
            jti: new.jti,
            iat: now.timestamp(),
            exp: new.expires_at.map(|t| t.timestamp()),
            sub: user.id.to_string(),
            user_id: user.id,
            username: user.username.to_owned(),
            iss: self.settings.issuer.clone(),
            aud: audience.map(str::to_owned),
        };
        let token = self.keys.sign(&claims)?;
        let signed = SignedToken {
            token,
            expires_in: lifetime.0.map(|d| d.as_secs()),
        };
        Ok((signed, new))
    }
}

/// A signed token and the registry row it will get.
type Minted = (SignedToken, NewToken);

/// Whom a token is for: what its claims name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Subject<'a> {
    id: Uuid,
    username: &'a str,
}

impl<'a> From<&'a users::Model> for Subject<'a> {
    fn from(user: &'a users::Model) -> Self {
        Subject {
            id: user.id,
            username: &user.username,
        }
    }
}

/// Rows deleted per archive transaction.
const ARCHIVE_BATCH: u64 = 1000;

/// Which tokens a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenState {
    #[default]
    Active,
    Expired,
    All,
}

/// Where a page starts: after this token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub issued_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// `<nanoseconds>.<id>`; see [`CURSOR_PATTERN`].
    pub fn encode(&self) -> String {
        let nanos = self.issued_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        format!("{nanos}.{}", self.id)
    }

    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::InvalidRequest("The cursor is not valid.".into());
        let (nanos, id) = text.split_once('.').ok_or_else(bad)?;
        // Exactly what the pattern allows: up to 19 digits, the 19th-place
        // one at most 8 (below i64::MAX), and a hyphenated id.
        let in_range = nanos.len() < 19 || (nanos.len() == 19 && nanos.as_bytes()[0] <= b'8');
        if nanos.is_empty()
            || !in_range
            || !nanos.bytes().all(|b| b.is_ascii_digit())
            || id.len() != 36
        {
            return Err(bad());
        }
        let nanos: i64 = nanos.parse().map_err(|_| bad())?;
        Ok(Cursor {
            issued_at: DateTime::from_timestamp_nanos(nanos),
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        })
    }
}

/// What a cursor looks like, for the API's documentation and validation:
/// every text it matches decodes (or is empty: the first page).
pub const CURSOR_PATTERN: &str = "^(([0-9]{1,18}|[0-8][0-9]{18})\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$";

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this user's tokens; `None`: everybody's.
    pub user_id: Option<Uuid>,
    pub state: TokenState,
    pub limit: u64,
    pub cursor: Option<Cursor>,
}

/// A page of tokens with their devices.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<(tokens::Model, Option<devices::Model>)>,
    pub next_cursor: Option<Cursor>,
}

/// Serializes the changes to one tree or one user's tokens (a refresh, a
/// tree expiry, a user-wide expiry) until the end of `txn`, keyed by the
/// tree's root id or the user's id; returns whether it took a lock.
///
/// PostgreSQL runs transactions side by side: without the lock, a refresh
/// that read its token just before an expiry committed would add live tokens
/// to the expired tree (the expiry's UPDATE never sees rows committed after
/// it started). A transaction-scoped advisory lock closes that gap. SQLite
/// needs none: its one writer connection runs write transactions one after
/// another.
async fn lock(txn: &DatabaseTransaction, id: Uuid) -> Result<bool> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let (high, low) = id.as_u64_pair();
    // Two ids sharing a key only wait for each other; nothing breaks.
    let key = i64::from_ne_bytes((high ^ low).to_ne_bytes());
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(true)
}

/// The registry row of a jti, with its user.
async fn find_by_jti(
    db: &impl ConnectionTrait,
    jti: Uuid,
) -> Result<(tokens::Model, Option<users::Model>)> {
    // `jti` is unique: `all` returns at most one row, without the bound
    // `LIMIT` of `one`, which makes SQLite re-plan the statement every time.
    tokens::Entity::find()
        .filter(tokens::Column::Jti.eq(jti))
        .find_also_related(users::Entity)
        .all(db)
        .await?
        .pop()
        .ok_or(Error::TokenNotValid)
}

/// The row must agree with the claims and be active; the user must exist and
/// be active. Returns the user.
fn agrees(
    claims: &Claims,
    row: &tokens::Model,
    user: Option<users::Model>,
    now: DateTime<Utc>,
) -> Result<users::Model> {
    let user = user.ok_or(Error::TokenNotValid)?;
    let valid = row.token_type == claims.token_type.as_str()
        && row.user_id == Some(claims.user_id)
        && is_active(row, now)
        && user.is_active;
    if valid {
        Ok(user)
    } else {
        Err(Error::TokenNotValid)
    }
}

/// Not force-expired, not rotated away, not past its expiry.
pub fn is_active(row: &tokens::Model, now: DateTime<Utc>) -> bool {
    row.expired_at.is_none() && row.rotated_at.is_none() && row.expires_at.is_none_or(|t| t > now)
}

/// The SQL twin of [`is_active`].
pub fn active_at(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(tokens::Column::ExpiredAt.is_null())
        .add(tokens::Column::RotatedAt.is_null())
        .add(
            Condition::any()
                .add(tokens::Column::ExpiresAt.is_null())
                .add(tokens::Column::ExpiresAt.gt(now)),
        )
}

/// Expires the active tokens matching `which`; returns how many.
async fn expire_where(
    db: &impl ConnectionTrait,
    which: impl sea_orm::sea_query::IntoCondition,
    now: DateTime<Utc>,
) -> Result<u64> {
    let result = tokens::Entity::update_many()
        .col_expr(tokens::Column::ExpiredAt, Expr::value(now))
        .filter(which)
        .filter(active_at(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
