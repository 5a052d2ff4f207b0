//! `open`: a refresh's transaction begun with its token's locks and look-up
//! in one round trip, which the job then finds done.

use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::sqlx::{self, Connection, postgres::PgConnection};
use uuid::Uuid;

use super::{Ann, postgres, register, row, with_ann};
use entity::tokens;

use super::super::LAST_SEEN_STEP;
use crate::store::{Device, Registration, TreeLock, lock_key, pg_txn::open::key_of};

/// PostgreSQL's key of a uuid is the one every other path takes.
#[tokio::test]
async fn the_lock_key_computed_in_sql_is_the_lock_key() {
    let Some((database, _db)) = postgres(Duration::from_secs(30)).await else {
        return;
    };
    let mut conn = PgConnection::connect(database.postgres_url().unwrap())
        .await
        .unwrap();
    for id in [Uuid::nil(), Uuid::max(), Uuid::now_v7(), Uuid::new_v4()] {
        let sql = format!("SELECT {} FROM (SELECT $1::uuid AS id) t", key_of("t.id"));
        let key: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(key, lock_key(&id.to_string()), "the keys of {id}");
    }
}

/// The last query of each session of this test's database in `state`.
async fn last_query(watcher: &mut PgConnection, state: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity \
         WHERE state = $1 AND datname = current_database()",
    )
    .bind(state)
    .fetch_all(watcher)
    .await
    .unwrap()
}

/// Waits, bounded, until one advisory lock is waited for.
async fn until_a_lock_is_waited_for(
    watcher: &mut PgConnection,
    waiter: &tokio::task::JoinHandle<crate::error::Result<u64>>,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        .fetch_one(&mut *watcher)
        .await
        .unwrap();
        if waiting == 1 {
            return;
        }
        assert!(!waiter.is_finished(), "the expiry did not wait");
        assert!(
            Instant::now() < deadline,
            "the expiry never waited for a lock"
        );
        tokio::task::yield_now().await;
    }
}

/// Between `open` and the write, the tree cannot be expired: an expiry
/// waits for the write, and the job's own locks and look-up of the token
/// send nothing to the server.
#[tokio::test]
async fn an_opened_token_is_read_under_its_locks_and_the_job_finds_them_taken() {
    let Some(ann) = with_ann().await else {
        return;
    };
    let Ann {
        mut watcher,
        store,
        now,
        user,
        ..
    } = ann;
    let root = super::registered_root(&store, &user, now).await;
    let (root_id, jti) = (root.id, root.jti);

    let opened = store.open(jti, Some(TreeLock::Shared)).await.unwrap();
    let (found, found_user) = opened.found().cloned().unwrap();
    assert_eq!(found, root);
    assert_eq!(found_user.map(|u| u.id), Some(user.id));
    let expiry = {
        let store = store.clone();
        tokio::spawn(async move { store.expire_tree(root_id, Utc::now()).await })
    };
    until_a_lock_is_waited_for(&mut watcher, &expiry).await;

    let child = tokens::Model {
        token_type: "access".into(),
        parent_id: Some(root_id),
        root_id,
        ..row(Some(user.id), now)
    };
    let child_jti = child.jti;
    let seen = opened
        .write(&store, {
            let mut watcher = watcher;
            move |txn| async move {
                txn.lock_shared(&[root_id, user.id]).await?;
                let (again, _) = txn.find_by_jti(jti).await?.unwrap();
                assert_eq!(again, root);
                let last = last_query(&mut watcher, "idle in transaction").await;
                assert!(txn.register(super::only(child)).await?);
                Ok(last)
            }
        })
        .await
        .unwrap();
    assert_eq!(seen.len(), 1, "one transaction open: {seen:?}");
    assert!(
        seen[0].starts_with("BEGIN; EXECUTE tokend_lock_shared("),
        "the job sent a statement of its own: {}",
        seen[0]
    );
    assert_eq!(expiry.await.unwrap().unwrap(), 2, "the root and its child");
    let (child, _) = store.find_by_jti(child_jti).await.unwrap().unwrap();
    assert!(child.expired_at.is_some(), "the expiry saw the child");
}

/// A `jti` with no row leaves no transaction open and keeps its connection;
/// an opened token dropped without a write frees its locks.
#[tokio::test]
async fn nothing_opened_is_left_behind() {
    let Some(ann) = with_ann().await else {
        return;
    };
    let Ann {
        mut watcher,
        store,
        now,
        user,
        ..
    } = ann;
    let root = super::registered_root(&store, &user, now).await;
    let (root_id, jti) = (root.id, root.jti);
    let conns = store.pg.clone().unwrap();

    let opened_before = conns.opened();
    let nothing = store
        .open(Uuid::now_v7(), Some(TreeLock::Exclusive))
        .await
        .unwrap();
    assert!(nothing.found().is_none());
    drop(nothing);
    assert!(
        last_query(&mut watcher, "idle in transaction")
            .await
            .is_empty()
    );
    store.find_by_jti(jti).await.unwrap().unwrap();
    assert_eq!(
        conns.opened(),
        opened_before,
        "the connection was given back"
    );

    let opened = store.open(jti, Some(TreeLock::Exclusive)).await.unwrap();
    assert!(opened.found().is_some());
    drop(opened);
    let expired = tokio::time::timeout(
        Duration::from_secs(20),
        store.expire_tree(root_id, Utc::now()),
    )
    .await
    .expect("the dropped transaction kept its locks")
    .unwrap();
    assert_eq!(expired, 1);
}

/// A registration from the device of the token the transaction opened,
/// seen within LAST_SEEN_STEP, is the rows' insert alone, pointing to that
/// device, and goes to the group writer: the transaction sends nothing but
/// its opening. Later than that, the device's row is written as always, in
/// the transaction.
#[tokio::test]
async fn the_opened_tokens_device_seen_lately_is_not_written_again() {
    let Some(ann) = with_ann().await else {
        return;
    };
    let Ann {
        db,
        mut watcher,
        store,
        now,
        user,
        ..
    } = ann;
    let from_phone = |row: tokens::Model, seen_at| Registration {
        rows: vec![row],
        device: Some(Device {
            user_id: user.id,
            user_agent: "phone".into(),
            client_address: "10.0.0.1".into(),
            seen_at,
        }),
    };
    let root = row(Some(user.id), now);
    let (root_id, jti) = (root.id, root.jti);
    register(&store, from_phone(root, now)).await.unwrap();
    let (root, _) = store.find_by_jti(jti).await.unwrap().unwrap();
    let phone = root.device_id.unwrap();
    let child = |at| tokens::Model {
        token_type: "access".into(),
        parent_id: Some(root_id),
        root_id,
        ..row(Some(user.id), at)
    };

    let statements = store.groups.clone().unwrap().registrations.statements;
    let later = now + LAST_SEEN_STEP + chrono::Duration::seconds(1);
    for (at, sent, grouped, last_seen) in [
        (
            now + chrono::Duration::seconds(5),
            "BEGIN; EXECUTE tokend_lock_shared(",
            1,
            now,
        ),
        (later, "WITH found AS", 0, later),
    ] {
        let before = statements.load(std::sync::atomic::Ordering::Relaxed);
        let registered = child(at);
        let child_jti = registered.jti;
        let opened = store.open(jti, Some(TreeLock::Shared)).await.unwrap();
        let registration = from_phone(registered, at);
        let queries;
        (watcher, queries) = opened
            .write(&store, move |txn| async move {
                assert!(txn.register(registration).await?);
                let queries = last_query(&mut watcher, "idle in transaction").await;
                Ok((watcher, queries))
            })
            .await
            .unwrap();
        assert!(
            queries.len() == 1 && queries[0].starts_with(sent),
            "{queries:?}"
        );
        assert_eq!(
            statements.load(std::sync::atomic::Ordering::Relaxed) - before,
            grouped
        );
        let (back, _) = store.find_by_jti(child_jti).await.unwrap().unwrap();
        assert_eq!(back.device_id, Some(phone), "one row per device");
        let device = super::device_row(&db, phone).await;
        assert_eq!(device.last_seen, last_seen);
    }
}
