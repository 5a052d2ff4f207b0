//! The registry's write transaction: what a job may do inside it.

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{devices, tokens, users};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, SqlErr,
    sea_query::{Condition, Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    pg_txn::{self, PgTxn},
    sqlite_txn::{self, Conn},
    tokens::{Device, Registration, TokenStore, expire_where, find_by_jti, lock},
};
use crate::error::{Error, Result};

impl TokenStore {
    /// Runs `job` in a write transaction: committed when it returns `Ok`,
    /// rolled back when it returns `Err`. The job decides with what it reads
    /// inside; nothing else writes between its reads and its writes. On
    /// SQLite in a file the job runs on the writer's connection, in a batch
    /// committed with its neighbours (`sqlite_writer`), and must not wait
    /// for anything but this transaction.
    pub async fn write<T, F, Fut>(&self, job: F) -> Result<T>
    where
        F: FnOnce(TokenTxn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.write(job).await;
        }
        match &self.pg {
            Some(conns) => pg_txn::write(conns, job).await,
            None => {
                let job = |txn| job(TokenTxn(Inner::SeaOrm(txn)));
                super::in_transaction(&self.db, None, job).await
            }
        }
    }
}

impl TokenStore {
    /// A registration written on its own, as by a [`write`](Self::write)
    /// whose job only registers: `Ok(false)` when a row points to a user or
    /// parent that is gone, and nothing is written. On PostgreSQL its one
    /// statement is sent without `BEGIN` and `COMMIT`.
    pub async fn register_alone(&self, registration: Registration) -> Result<bool> {
        if let (None, Some(conns)) = (&self.writer, &self.pg) {
            return pg_txn::register_alone(conns, registration).await;
        }
        let registered = self
            .write(|txn| async move {
                match txn.register(registration).await? {
                    true => Ok(()),
                    // Rolled back.
                    false => Err(Error::TokenNotValid),
                }
            })
            .await;
        match registered {
            Ok(()) => Ok(true),
            Err(Error::TokenNotValid) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// How [`TokenStore::open`] locks the token's tree and user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeLock {
    /// Shared with the refreshes of the tree: for a job that only adds
    /// under an active token ([`TokenTxn::lock_shared`]).
    Shared,
    /// [`TokenTxn::lock`].
    Exclusive,
}

/// A token read for a write about it: on PostgreSQL, read in the write's
/// transaction, under its tree's and user's locks, which the write then
/// finds taken. Dropped without [`write`](Opened::write), that transaction
/// is rolled back with its connection. On SQLite in a file, not read at all
/// when asked with a lock: the write reads it ([`read_in_write`](Opened::read_in_write)).
pub struct Opened {
    found: Option<(tokens::Model, Option<users::Model>)>,
    txn: Option<PgTxn>,
    read_in_write: bool,
}

impl TokenStore {
    /// The row of `jti` and its user, as [`find_by_jti`](Self::find_by_jti)
    /// reads them, for a write that follows. With `lock`, on PostgreSQL,
    /// the write's transaction begins here, with the locks of the token's
    /// tree and then user, and the row is read under them, in one round
    /// trip. Only for a caller that does not wait between this and the
    /// write: the locks are held meanwhile.
    ///
    /// With `lock`, on SQLite in a file, nothing is read here: the writer
    /// runs one write at a time, so the row the write reads in its
    /// transaction is the one a read here would have found, and there it
    /// costs less (the writer's pages are in its cache; a reader's cache is
    /// emptied by every commit).
    pub async fn open(&self, jti: Uuid, lock: Option<TreeLock>) -> Result<Opened> {
        if let (Some(conns), Some(lock)) = (&self.pg, lock) {
            let registrations = self.groups.as_ref().map(|g| &g.registrations);
            let (found, txn) =
                pg_txn::open(conns, jti, lock == TreeLock::Shared, registrations).await?;
            return Ok(Opened {
                found,
                txn,
                read_in_write: false,
            });
        }
        if self.writer.is_some() && lock.is_some() {
            return Ok(Opened {
                found: None,
                txn: None,
                read_in_write: true,
            });
        }
        Ok(Opened {
            found: self.find_by_jti(jti).await?,
            txn: None,
            read_in_write: false,
        })
    }
}

impl Opened {
    /// The token's row and user; `None` when there is no such token, or
    /// when it was not read ([`read_in_write`](Self::read_in_write)).
    pub fn found(&self) -> Option<&(tokens::Model, Option<users::Model>)> {
        self.found.as_ref()
    }

    /// Whether the token is left for the write to read: then nothing
    /// was [`found`](Self::found), and the write runs alone, with nothing
    /// to lock.
    pub fn read_in_write(&self) -> bool {
        self.read_in_write
    }

    /// [`TokenStore::write`], in the transaction [`TokenStore::open`]
    /// began when it did. There, on PostgreSQL, a registration of known
    /// devices made before any other write is committed apart, with
    /// other refreshes' (`pg_txn::Registrations`), while the transaction
    /// holds its locks: the job must write nothing after it, and fail
    /// after it only for the registration's own outcome.
    pub async fn write<T, F, Fut>(self, store: &TokenStore, job: F) -> Result<T>
    where
        F: FnOnce(TokenTxn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        match (self.txn, &store.pg) {
            (Some(txn), Some(conns)) => pg_txn::write_in(conns, txn, job).await,
            _ => store.write(job).await,
        }
    }
}

/// The registry inside a write transaction: a handle the job owns and
/// drops when it is done.
#[derive(Clone)]
pub struct TokenTxn(Inner);

#[derive(Clone)]
enum Inner {
    /// SQLite in memory, or a store built without its fast paths.
    SeaOrm(Arc<DatabaseTransaction>),
    /// PostgreSQL: a held connection's transaction.
    Postgres(PgTxn),
    /// The SQLite writer's transaction.
    Sqlite(Conn),
}

impl TokenTxn {
    pub(super) fn sqlite(conn: Conn) -> Self {
        TokenTxn(Inner::Sqlite(conn))
    }

    pub(super) fn postgres(txn: PgTxn) -> Self {
        TokenTxn(Inner::Postgres(txn))
    }

    /// Serializes the changes to trees or users' tokens until the end of
    /// the transaction, keyed by a tree's root id or a user's id: the locks
    /// are taken in the order given, in one round trip. The expiries of a
    /// tree or of a user's tokens take the same locks.
    pub async fn lock(&self, ids: &[Uuid]) -> Result<()> {
        self.lock_as(ids, false).await
    }

    /// [`lock`](Self::lock), shared with every other `lock_shared` of the
    /// same keys: for a job that only adds tokens under an active one, so
    /// that refreshes of one tree run side by side while an expiry of the
    /// tree or of its user waits for them (and they for it).
    pub async fn lock_shared(&self, ids: &[Uuid]) -> Result<()> {
        self.lock_as(ids, true).await
    }

    async fn lock_as(&self, ids: &[Uuid], shared: bool) -> Result<()> {
        match &self.0 {
            // Exclusive even when asked for shared: stricter, still right.
            Inner::SeaOrm(txn) => lock(txn, ids).await.map(drop),
            Inner::Postgres(txn) => txn.lock(ids, shared).await,
            // One writer: nothing runs beside this transaction.
            Inner::Sqlite(_) => Ok(()),
        }
    }

    /// Whether [`lock`](Self::lock) takes a lock at all: only PostgreSQL
    /// runs write transactions side by side.
    pub fn locks(&self) -> bool {
        match &self.0 {
            Inner::SeaOrm(txn) => txn.get_database_backend() == DbBackend::Postgres,
            Inner::Postgres(_) => true,
            Inner::Sqlite(_) => false,
        }
    }

    /// A token's row and user, as this transaction sees them.
    pub async fn find_by_jti(
        &self,
        jti: Uuid,
    ) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
        match &self.0 {
            Inner::SeaOrm(txn) => find_by_jti(&**txn, jti).await,
            Inner::Postgres(txn) => txn.find_by_jti(jti).await,
            Inner::Sqlite(conn) => sqlite_txn::find_by_jti(conn, jti),
        }
    }

    /// The child of `parent_id` of type `kind`, with its user: for the
    /// refresh token a rotation handed out, at most one, since only one
    /// rotation of a token commits.
    pub async fn child_of_type(
        &self,
        parent_id: Uuid,
        kind: &str,
    ) -> Result<Option<(tokens::Model, Option<users::Model>)>> {
        let txn = match &self.0 {
            Inner::SeaOrm(txn) => txn,
            Inner::Sqlite(conn) => return sqlite_txn::child_of_type(conn, parent_id, kind),
            Inner::Postgres(txn) => return txn.child_of_type(parent_id, kind).await,
        };
        Ok(tokens::Entity::find()
            .filter(tokens::Column::ParentId.eq(parent_id))
            .filter(tokens::Column::TokenType.eq(kind))
            .find_also_related(users::Entity)
            .all(&**txn)
            .await?
            .pop())
    }

    /// Marks an active token used up by rotation; false when it was not
    /// active any more (another refresh rotated it, or it was expired).
    pub async fn rotate(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let txn = match &self.0 {
            Inner::SeaOrm(txn) => txn,
            Inner::Sqlite(conn) => return sqlite_txn::rotate(conn, id, now),
            Inner::Postgres(txn) => return txn.rotate(id, now).await,
        };
        let used_up = tokens::Entity::update_many()
            .col_expr(tokens::Column::RotatedAt, Expr::value(now))
            .filter(tokens::Column::Id.eq(id))
            .filter(tokens::Column::RotatedAt.is_null())
            .filter(tokens::Column::ExpiredAt.is_null())
            .exec(&**txn)
            .await?;
        Ok(used_up.rows_affected == 1)
    }

    /// Expires every active token of a tree but `keep`; returns how many.
    pub async fn expire_tree_except(
        &self,
        root_id: Uuid,
        keep: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let txn = match &self.0 {
            Inner::SeaOrm(txn) => txn,
            Inner::Sqlite(conn) => return sqlite_txn::expire_tree_except(conn, root_id, keep, now),
            Inner::Postgres(txn) => return txn.expire_tree_except(root_id, keep, now).await,
        };
        let which = Condition::all()
            .add(tokens::Column::RootId.eq(root_id))
            .add(tokens::Column::Id.ne(keep));
        expire_where(&**txn, which, now).await
    }

    /// Writes a registration: its device (one row per user, user agent and
    /// address, its `last_seen` moved on), then its rows. `Ok(false)` when a
    /// row points to a user or parent that is gone (deleted while we issued:
    /// on PostgreSQL the delete can commit in between); the transaction is
    /// then unusable and must be rolled back.
    pub async fn register(&self, registration: Registration) -> Result<bool> {
        let txn = match &self.0 {
            Inner::SeaOrm(txn) => txn,
            Inner::Sqlite(conn) => return sqlite_txn::register(conn, registration),
            Inner::Postgres(txn) => return txn.register(registration).await,
        };
        let Registration { mut rows, device } = registration;
        if let Some(device) = device {
            let device_id = upsert_device(txn, device).await?;
            for row in &mut rows {
                row.device_id = Some(device_id);
            }
        }
        if rows.is_empty() {
            return Ok(true);
        }
        let inserted = tokens::Entity::insert_many(rows.into_iter().map(tokens::ActiveModel::from))
            .exec_without_returning(&**txn)
            .await;
        match inserted {
            Err(e) if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) => {
                Ok(false)
            }
            other => other.map(|_| true).map_err(Error::from),
        }
    }
}

async fn upsert_device(txn: &DatabaseTransaction, device: Device) -> Result<Uuid> {
    let row = devices::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(Some(device.user_id)),
        user_agent: Set(device.user_agent),
        client_address: Set(device.client_address),
        first_seen: Set(device.seen_at),
        last_seen: Set(device.seen_at),
    };
    let row = devices::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                devices::Column::UserId,
                devices::Column::UserAgent,
                devices::Column::ClientAddress,
            ])
            .update_column(devices::Column::LastSeen)
            .to_owned(),
        )
        .exec_with_returning(txn)
        .await?;
    Ok(row.id)
}
