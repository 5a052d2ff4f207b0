//! The throttle's statements off sea-orm (SQLite's threads, PostgreSQL's
//! held connections) count and write exactly what sea-orm's do, on the
//! same rows.

use std::time::Duration as StdDuration;

use chrono::{Duration, SubsecRound, Utc};
use entity::login_failures;
use sea_orm::{EntityTrait, QueryOrder};

use crate::{
    db::Db,
    store::{Attempts, LoginFailureStore, TokenStore, Window, test_postgres, test_sqlite},
};

#[tokio::test]
async fn off_sqlx_the_throttle_counts_and_writes_what_sea_orm_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = test_sqlite(&dir).await;
    let tokens = TokenStore::new(db.clone());
    let threads = tokens.sqlite_threads();
    assert!(threads.reader.is_some() && threads.writer.is_some());
    let fast = LoginFailureStore::new(db.clone(), threads);
    counts_and_writes_what_sea_orm_does(&db, fast).await;
}

/// On PostgreSQL only (the suite's PostgreSQL pass).
#[tokio::test]
async fn on_held_connections_the_throttle_counts_and_writes_what_sea_orm_does() {
    let Some((_database, db)) = test_postgres(StdDuration::from_secs(30)).await else {
        return;
    };
    let fast = LoginFailureStore::new(db.clone(), Default::default());
    assert!(fast.pg.is_some(), "PostgreSQL has held connections");
    counts_and_writes_what_sea_orm_does(&db, fast).await;
}

/// `fast` and a store through sea-orm write attempts in turn; each counts
/// what the other does, and reads back alike.
async fn counts_and_writes_what_sea_orm_does(db: &Db, fast: LoginFailureStore) {
    let slow = LoginFailureStore::through_sea_orm(db.clone());
    let now = Utc::now().trunc_subsecs(6);
    let window = Window {
        since: now - Duration::hours(1),
        stale_before: now - Duration::seconds(60),
    };
    let all = |_: &Attempts, _: &Attempts| true;

    // ann from two addresses, written by each store in turn: a failure by
    // each, a check under way by each, one pending so long it never ended,
    // and one before the window.
    let mut ids = Vec::new();
    for (i, (store, address, minutes_ago, settle)) in [
        (&fast, "10.0.0.1", 30, true),
        (&slow, "10.0.0.2", 20, true),
        (&fast, "10.0.0.1", 0, false),
        (&slow, "10.0.0.1", 0, false),
        (&fast, "10.0.0.2", 10, false),
        (&slow, "10.0.0.1", 90, true),
    ]
    .into_iter()
    .enumerate()
    {
        let at = now - Duration::minutes(minutes_ago) + Duration::milliseconds(i as i64);
        let (_, _, id) = store.admit("ann", address, window, at, all).await.unwrap();
        let id = id.expect("admitted");
        if settle {
            store.settle_failed(id, at).await.unwrap();
        }
        ids.push(id);
    }
    let admitted = fast
        .admit("bob", "10.0.0.2", window, now, all)
        .await
        .unwrap();
    let bob = admitted.2.unwrap();

    let keys = [
        ("ann", "10.0.0.1"),
        ("ann", "10.0.0.2"),
        ("ann", ""),
        ("", "10.0.0.1"),
        ("bob", "10.0.0.3"),
        ("nobody", "10.9.9.9"),
        ("", ""),
    ];
    let counts = async |store: &LoginFailureStore| {
        let mut counted = Vec::new();
        for (username, address) in keys {
            counted.push(store.count(username, address, window).await.unwrap());
        }
        counted
    };
    let by_both = counts(&fast).await;
    assert_eq!(by_both, counts(&slow).await);
    // Not vacuous: two failures and the stale check for ann, two checks under way.
    let (ann, from_one) = by_both[0];
    assert_eq!((ann.failed, ann.pending), (3, 2));
    assert_eq!(ann.oldest_failed, Some(now - Duration::minutes(30)));
    assert_eq!((from_one.failed, from_one.pending), (1, 2));
    assert_eq!(by_both[4].0.pending, 1);

    // What each wrote reads back alike through sea-orm.
    let rows = login_failures::Entity::find()
        .order_by_asc(login_failures::Column::FailedAt)
        .all(&db.read)
        .await
        .unwrap();
    assert_eq!(rows.len(), 7);
    let written = rows.iter().find(|row| row.id == ids[0]).unwrap();
    assert_eq!(written.username, "ann");
    assert_eq!(written.client_address, "10.0.0.1");
    assert!(!written.pending);
    assert_eq!(written.failed_at, now - Duration::minutes(30));

    // A refused admission records nothing.
    let refused = fast
        .admit("ann", "10.0.0.1", window, now, |_, _| false)
        .await
        .unwrap();
    assert_eq!(refused.2, None);
    assert_eq!((refused.0, refused.1), (by_both[0].0, by_both[0].1));

    // ann's second check under way succeeds: her failures before it are
    // forgotten, with it; the first, still under way, stays, and so does
    // the one that never ended, which counts as failed. bob's is withdrawn.
    fast.forget_failures_up_to("ann", ids[3]).await.unwrap();
    fast.delete(bob).await.unwrap();
    let after = counts(&fast).await;
    assert_eq!(after, counts(&slow).await);
    assert_eq!((after[2].0.failed, after[2].0.pending), (1, 1));
    assert_eq!(after[4].0, Attempts::default());
}
