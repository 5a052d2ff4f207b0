//! The hot path's held connections on PostgreSQL: a registration in one
//! statement stores what sea-orm stores, a refused statement keeps its
//! connection, and a call past the deadline loses its connection and
//! everything its transaction had done. Each test does nothing on SQLite:
//! they run in the PostgreSQL pass of the suite
//! (`TOKEND_TEST_DATABASE_URL`).

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use entity::{devices, tokens, users};
use sea_orm::{
    EntityTrait,
    sqlx::{self, Connection, postgres::PgConnection},
};
use uuid::Uuid;

use super::LAST_SEEN_STEP;
use crate::{
    db::Db,
    error::Error,
    store::test_row as row,
    store::{
        Device, Registration, TokenStore, UserStore, lock_key, tokens::find_by_jti, users::new_user,
    },
};

/// A migrated database of its own, on PostgreSQL only.
async fn postgres(timeout: Duration) -> Option<(common::TestDatabase, Db)> {
    crate::store::test_postgres(timeout).await
}

async fn ann(db: &Db, now: DateTime<Utc>) -> users::Model {
    let user = new_user("ann".into(), "ann".into(), "h".into(), false, true, now);
    UserStore::new(db.clone()).insert(user).await.unwrap()
}

/// What the tests that watch the server start from: a database of its own
/// with Ann in it, a store on it, and a connection of the test's own.
struct Ann {
    /// Dropped (the database with it) when the test's `Ann` is.
    _database: common::TestDatabase,
    db: Db,
    watcher: PgConnection,
    store: TokenStore,
    now: DateTime<Utc>,
    user: users::Model,
}

async fn with_ann() -> Option<Ann> {
    let (database, db) = postgres(Duration::from_secs(30)).await?;
    let watcher = PgConnection::connect(database.postgres_url().unwrap())
        .await
        .unwrap();
    let store = TokenStore::new(db.clone());
    let now = Utc::now().trunc_subsecs(6);
    let user = ann(&db, now).await;
    Some(Ann {
        _database: database,
        db,
        watcher,
        store,
        now,
        user,
    })
}

fn only(row: tokens::Model) -> Registration {
    Registration {
        rows: vec![row],
        device: None,
    }
}

async fn device_row(db: &Db, id: Uuid) -> devices::Model {
    devices::Entity::find_by_id(id)
        .one(&db.read)
        .await
        .unwrap()
        .unwrap()
}

async fn register(store: &TokenStore, registration: Registration) -> crate::error::Result<()> {
    store
        .write(move |txn| async move {
            match txn.register(registration).await? {
                true => Ok(()),
                false => Err(Error::TokenNotValid),
            }
        })
        .await
}

/// A root token of `user`'s, registered without a device.
async fn registered_root(
    store: &TokenStore,
    user: &users::Model,
    now: DateTime<Utc>,
) -> tokens::Model {
    let root = row(Some(user.id), now);
    register(store, only(root.clone())).await.unwrap();
    root
}

/// The device upsert and the rows' insert, in one statement, store what
/// sea-orm's two statements store; later registrations from the same
/// device reuse its row and move `last_seen` in steps of LAST_SEEN_STEP.
#[tokio::test]
async fn a_registration_in_one_statement_stores_what_sea_orm_stores() {
    let Some((_database, db)) = postgres(Duration::from_secs(5)).await else {
        return;
    };
    let store = TokenStore::new(db.clone());
    assert!(store.pg.is_some(), "PostgreSQL has held connections");
    let sea = TokenStore::through_sea_orm(db.clone());
    let now = Utc::now().trunc_subsecs(6);
    let user = ann(&db, now).await;
    let device = |agent: &str, seen_at| Device {
        user_id: user.id,
        user_agent: agent.into(),
        client_address: "10.0.0.1".into(),
        seen_at,
    };
    let (held, through_sea) = (row(Some(user.id), now), row(Some(user.id), now));
    let access = tokens::Model {
        token_type: "access".into(),
        parent_id: Some(held.id),
        ..row(Some(user.id), now)
    };
    register(
        &store,
        Registration {
            rows: vec![held.clone(), access.clone()],
            device: Some(device("held", now)),
        },
    )
    .await
    .unwrap();
    register(
        &sea,
        Registration {
            rows: vec![through_sea.clone()],
            device: Some(device("sea-orm", now)),
        },
    )
    .await
    .unwrap();

    let read = |jti| find_by_jti(&db.read, jti);
    let (held_back, owner) = read(held.jti).await.unwrap().unwrap();
    let (sea_back, _) = read(through_sea.jti).await.unwrap().unwrap();
    assert_eq!(owner.map(|u| u.id), Some(user.id));
    let device_id = held_back.device_id.expect("the rows point to the device");
    assert_eq!(
        tokens::Model {
            device_id: None,
            ..held_back
        },
        held
    );
    assert_eq!(
        tokens::Model {
            device_id: None,
            ..sea_back.clone()
        },
        through_sea
    );
    let (access_back, _) = read(access.jti).await.unwrap().unwrap();
    assert_eq!(access_back.device_id, Some(device_id));
    let stored = device_row(&db, device_id).await;
    let sea_device = device_row(&db, sea_back.device_id.unwrap()).await;
    assert_eq!((stored.first_seen, stored.last_seen), (now, now));
    assert_eq!(
        (
            sea_device.first_seen,
            sea_device.last_seen,
            sea_device.user_id
        ),
        (now, now, Some(user.id))
    );

    // Within LAST_SEEN_STEP the device's row is not written (nor locked);
    // past it, `last_seen` moves.
    let soon = now + chrono::Duration::seconds(5);
    let later = now + LAST_SEEN_STEP + chrono::Duration::seconds(1);
    for (at, last_seen) in [(soon, now), (later, later)] {
        let again = row(Some(user.id), at);
        let registration = Registration {
            rows: vec![again.clone()],
            device: Some(device("held", at)),
        };
        register(&store, registration).await.unwrap();
        let (again_back, _) = read(again.jti).await.unwrap().unwrap();
        assert_eq!(again_back.device_id, Some(device_id), "one row per device");
        let stored = device_row(&db, device_id).await;
        assert_eq!((stored.first_seen, stored.last_seen), (now, last_seen));
    }
}

/// A row whose user does not exist is refused by the foreign key: the job
/// fails, nothing it wrote stays, and the connection, sound, is lent again
/// instead of a new one being opened.
#[tokio::test]
async fn a_refused_registration_rolls_back_and_keeps_its_connection() {
    let Some((_database, db)) = postgres(Duration::from_secs(5)).await else {
        return;
    };
    let store = TokenStore::new(db.clone());
    let conns = store.pg.clone().unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let first = row(None, now);
    register(&store, only(first.clone())).await.unwrap();
    let opened = conns.opened();

    let (id, orphan) = (first.id, row(Some(Uuid::new_v4()), now));
    let orphan_jti = orphan.jti;
    let refused = store
        .write(move |txn| async move {
            assert!(txn.rotate(id, now).await?);
            match txn.register(only(orphan)).await? {
                true => Ok(()),
                false => Err(Error::TokenNotValid),
            }
        })
        .await;
    assert!(matches!(refused, Err(Error::TokenNotValid)), "{refused:?}");
    let (first_back, _) = find_by_jti(&db.read, first.jti).await.unwrap().unwrap();
    assert_eq!(
        first_back.rotated_at, None,
        "the refused job's rotation stayed"
    );
    assert!(find_by_jti(&db.read, orphan_jti).await.unwrap().is_none());

    let next = row(None, now);
    register(&store, only(next.clone())).await.unwrap();
    assert!(store.find_by_jti(next.jti).await.unwrap().is_some());
    assert_eq!(conns.opened(), opened, "a sound connection was closed");
}

/// A write that cannot finish within `database_timeout` (here: waiting for
/// a lock another session holds) is unavailable at the deadline; its
/// connection is closed, so PostgreSQL rolls back what it wrote and frees
/// its locks, and the next call opens a new one.
#[tokio::test]
async fn a_write_past_the_deadline_is_unavailable_and_loses_its_connection() {
    let timeout = Duration::from_millis(300);
    let Some((database, db)) = postgres(timeout).await else {
        return;
    };
    let store = TokenStore::new(db.clone());
    let conns = store.pg.clone().unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let url = database.postgres_url().unwrap();
    let mut other = PgConnection::connect(url).await.unwrap();
    let held = Uuid::now_v7();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key(&held.to_string()))
        .execute(&mut other)
        .await
        .unwrap();

    let written = row(None, now);
    let (jti, mine) = (written.jti, written.root_id);
    let missed = store
        .write(move |txn| async move {
            txn.lock(&[mine]).await?;
            assert!(txn.register(only(written)).await?);
            txn.lock(&[held]).await
        })
        .await;
    assert!(matches!(missed, Err(Error::Unavailable(_))), "{missed:?}");
    let opened = conns.opened();

    // The dropped connection's statement, still waiting for `held`, ends at
    // its `statement_timeout`; its server process then finds the socket
    // closed and rolls back, which frees `mine`. Bounded.
    let key = lock_key(&mine.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut other)
            .await
            .unwrap();
        if free {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the missed transaction kept its lock"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        store.find_by_jti(jti).await.unwrap().is_none(),
        "its row stayed"
    );
    assert_eq!(
        conns.opened(),
        opened + 1,
        "the missed call's connection was lent again"
    );
}

mod locks;
mod lookups;
mod open;
mod registrations;
