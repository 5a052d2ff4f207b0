//! The `tokens` table (the registry) and the `devices` its rows point to:
//! look-ups, pages, expiry and archive batches. The write transaction of a
//! registration is in `token_txn`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{devices, tokens, users};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Condition, Expr, ExprTrait, IntoCondition, Query},
};
use uuid::Uuid;

use super::{
    Cursor,
    sqlite_reader::{Found, SqliteReader},
    sqlite_writer::SqliteWriter,
};
use crate::{
    db::{Db, PgConns},
    error::Result,
};

/// Rows and device of one registration, written together.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The rows, linked to their parents and their user.
    pub rows: Vec<tokens::Model>,
    /// Where the tokens went; their rows then point to it.
    pub device: Option<Device>,
}

/// Where a user's tokens went: a user agent and a client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub user_id: Uuid,
    pub user_agent: String,
    pub client_address: String,
    pub seen_at: DateTime<Utc>,
}

/// Which tokens a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenState {
    #[default]
    Active,
    Expired,
    All,
}

/// A page request: newest first, by keyset on (issued_at, id).
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    /// Only this user's tokens; `None`: everybody's.
    pub user_id: Option<Uuid>,
    pub state: TokenState,
    pub limit: u64,
    /// Start after this token.
    pub cursor: Option<Cursor>,
}

/// A page of tokens with their devices.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<(tokens::Model, Option<devices::Model>)>,
    pub next_cursor: Option<Cursor>,
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

/// Dead before `cutoff`: no longer active and died (forced, rotated or
/// natural expiry) before it. A rotated refresh token only once its natural
/// expiry is past the cutoff too, so that its reuse stays detectable while
/// it could still be presented.
fn dead_before(cutoff: DateTime<Utc>) -> Condition {
    Condition::any()
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
        )
}

/// The registry's table.
#[derive(Clone, Debug)]
pub struct TokenStore {
    pub(super) db: Db,
    /// SQLite in a file: the look-up of every authenticated call, on the
    /// calling thread.
    pub(super) reader: Option<Arc<SqliteReader>>,
    /// SQLite in a file: the registry's write transactions, in batches on a
    /// thread of their own.
    pub(super) writer: Option<Arc<SqliteWriter>>,
    /// PostgreSQL: those write transactions on held connections, and that
    /// look-up in groups on them.
    pub(super) pg: Option<Arc<PgConns>>,
    pub(super) groups: Option<super::pg_txn::Groups>,
}

impl TokenStore {
    pub fn new(db: Db) -> Self {
        let reader = db.sqlite_file().map(|file| {
            Arc::new(SqliteReader::new(
                file.to_owned(),
                db.timeout(),
                crate::db::READER_CACHE_SIZE,
            ))
        });
        let writer = db.sqlite_file().map(|file| {
            Arc::new(SqliteWriter::start(
                file.to_owned(),
                db.timeout(),
                db.write_gate(),
            ))
        });
        // The hot path's statements, prepared on each held connection.
        let pg = (db.pg_conns()).inspect(|conns| conns.on_connect(&super::pg_txn::prepared()));
        let groups = pg.clone().map(super::pg_txn::Groups::start);
        TokenStore {
            db,
            reader,
            writer,
            pg,
            groups,
        }
    }

    /// The store without its SQLite writer or held connections: every
    /// write through sea-orm.
    #[cfg(test)]
    pub(super) fn through_sea_orm(db: Db) -> Self {
        TokenStore {
            writer: None,
            pg: None,
            groups: None,
            ..TokenStore::new(db)
        }
    }

    /// A token's row and its user (`None` when the row has no user or the
    /// user is gone), outside any transaction: on SQLite on the calling
    /// thread (through sea-orm when that fails or meets a value it cannot
    /// read), on PostgreSQL in a group of look-ups (`pg_txn::Groups`).
    pub async fn find_by_jti(
        &self,
        jti: Uuid,
    ) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
        if let Some(reader) = &self.reader {
            match reader.token_by_jti(jti) {
                Ok(Found::Row(row, user)) => return Ok(Some((row, user))),
                Ok(Found::Nothing) => return Ok(None),
                Ok(Found::Undecodable) | Err(_) => {}
            }
        }
        if let Some(groups) = &self.groups {
            return groups.lookups.find(jti).await;
        }
        find_by_jti(&self.db.read, jti).await
    }

    /// One of a user's tokens by id; another user's token is `None`.
    pub async fn find_for_user(&self, user_id: Uuid, id: Uuid) -> Result<Option<tokens::Model>> {
        Ok(tokens::Entity::find_by_id(id)
            .filter(tokens::Column::UserId.eq(user_id))
            .one(&self.db.read)
            .await?)
    }

    /// A page of tokens, newest first (issued_at, then id), by keyset: the
    /// cost of a page does not grow with how deep it is.
    pub async fn page(&self, query: &PageQuery, now: DateTime<Utc>) -> Result<Page> {
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

    /// Expires one token if it is active; returns how many (0 or 1).
    pub async fn expire_one(&self, id: Uuid, now: DateTime<Utc>) -> Result<u64> {
        let _turn = self.db.write_turn().await;
        expire_where(&self.db.write, tokens::Column::Id.eq(id), now).await
    }

    /// Expires every active token of a tree, holding the tree's lock.
    pub async fn expire_tree(&self, root_id: Uuid, now: DateTime<Utc>) -> Result<u64> {
        self.expire_locked(root_id, tokens::Column::RootId.eq(root_id), now)
            .await
    }

    /// Expires every active token of a user, holding the user's lock so that
    /// a refresh racing it cannot leave a live token.
    pub async fn expire_user(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<u64> {
        self.expire_locked(user_id, tokens::Column::UserId.eq(user_id), now)
            .await
    }

    /// Expires every active token of a user but those of the tree rooted
    /// at `spared`, holding the user's lock like [`expire_user`](Self::expire_user).
    pub async fn expire_user_but_tree(
        &self,
        user_id: Uuid,
        spared: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let which = Condition::all()
            .add(tokens::Column::UserId.eq(user_id))
            .add(tokens::Column::RootId.ne(spared));
        self.expire_locked(user_id, which, now).await
    }

    /// Expires the active tokens `which` picks, in a write transaction that
    /// holds the lock of `key` (a tree's root id or a user's id, as
    /// [`lock`] takes them).
    async fn expire_locked(
        &self,
        key: Uuid,
        which: impl IntoCondition,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let key = key.to_string();
        super::in_transaction(&self.db, Some(&key), |txn| async move {
            expire_where(&*txn, which, now).await
        })
        .await
    }

    /// Deletes up to `limit` tokens dead before `cutoff`, in a short
    /// transaction of its own; returns (how many were found, how many went).
    pub async fn archive_batch(&self, cutoff: DateTime<Utc>, limit: u64) -> Result<(u64, u64)> {
        let ids: Vec<Uuid> = tokens::Entity::find()
            .select_only()
            .column(tokens::Column::Id)
            .filter(dead_before(cutoff))
            .limit(limit)
            .into_tuple()
            .all(&self.db.read)
            .await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let found = ids.len() as u64;
        let _turn = self.db.write_turn().await;
        let deleted = tokens::Entity::delete_many()
            .filter(tokens::Column::Id.is_in(ids))
            .filter(dead_before(cutoff))
            .exec(&self.db.write)
            .await?;
        Ok((found, deleted.rows_affected))
    }

    /// Deletes up to `limit` devices no token refers to any more; returns
    /// how many went.
    pub async fn purge_devices(&self, limit: u64) -> Result<u64> {
        let unused = Query::select()
            .column((devices::Entity, devices::Column::Id))
            .from(devices::Entity)
            .and_where(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from(tokens::Entity)
                        .and_where(
                            Expr::col((tokens::Entity, tokens::Column::DeviceId))
                                .equals((devices::Entity, devices::Column::Id)),
                        )
                        .to_owned(),
                )
                .not(),
            )
            .limit(limit)
            .to_owned();
        let _turn = self.db.write_turn().await;
        let deleted = devices::Entity::delete_many()
            .filter(devices::Column::Id.in_subquery(unused))
            .exec(&self.db.write)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Inserts rows as they are, in one transaction, many per statement: for
    /// filling a registry in bulk (benchmarks), not for issuing.
    pub async fn insert_bulk(&self, rows: Vec<tokens::Model>) -> Result<u64> {
        /// 11 columns a row, under SQLite's 32 766 variables a statement.
        const ROWS_PER_STATEMENT: usize = 2000;
        let written = rows.len() as u64;
        super::in_transaction(&self.db, None, |txn| async move {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let chunk = chunk.iter().cloned().map(tokens::ActiveModel::from);
                tokens::Entity::insert_many(chunk)
                    .exec_without_returning(&*txn)
                    .await?;
            }
            Ok(())
        })
        .await?;
        Ok(written)
    }
}

/// Serializes the changes to one tree or one user's tokens (a refresh, a
/// tree expiry, a user-wide expiry) until the end of `txn`, keyed by the
/// tree's root id or the user's id; returns whether it took a lock.
///
/// PostgreSQL runs transactions side by side: without the lock, a refresh
/// that read its token just before an expiry committed would add live tokens
/// to the expired tree (the expiry's UPDATE never sees rows committed after
/// it started). A transaction-scoped advisory lock closes that gap. SQLite,
/// with its one writer, needs none.
pub(super) async fn lock(txn: &DatabaseTransaction, ids: &[Uuid]) -> Result<bool> {
    let keys: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    super::advisory_locks(txn, &keys).await
}

/// The registry row of a jti, with its user.
pub(super) async fn find_by_jti(
    db: &impl ConnectionTrait,
    jti: Uuid,
) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
    // `all`: `jti` is unique, and `one`'s bound `LIMIT` re-plans on SQLite.
    Ok(tokens::Entity::find()
        .filter(tokens::Column::Jti.eq(jti))
        .find_also_related(users::Entity)
        .all(db)
        .await?
        .pop())
}

/// Expires the active tokens matching `which`; returns how many.
pub(super) async fn expire_where(
    db: &impl ConnectionTrait,
    which: impl IntoCondition,
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
