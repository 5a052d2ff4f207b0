//! Shared tree locks: refreshes of one tree side by side, expiries after
//! them.

use std::time::{Duration, Instant};

use chrono::Utc;
use entity::tokens;
use sea_orm::sqlx;

use super::{Ann, register, row, with_ann};
use crate::store::{Device, Registration};

/// Jobs that only add under a tree share its lock, and registrations from
/// one device within LAST_SEEN_STEP do not lock its row: one waits for
/// nothing while another holds both, and an expiry of the tree waits.
#[tokio::test]
async fn shared_tree_locks_let_refreshes_pass_and_hold_expiries() {
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
    let from_device = |row: tokens::Model| Registration {
        rows: vec![row],
        device: Some(Device {
            user_id: user.id,
            user_agent: "phone".into(),
            client_address: "10.0.0.1".into(),
            seen_at: now,
        }),
    };
    let root = row(None, now);
    let root_id = root.id;
    register(&store, from_device(root)).await.unwrap();
    let child = |_| tokens::Model {
        token_type: "access".into(),
        parent_id: Some(root_id),
        root_id,
        ..row(None, now)
    };
    let (first, second) = (from_device(child(1)), from_device(child(2)));

    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |txn| async move {
                    txn.lock_shared(&[root_id]).await?;
                    assert!(txn.register(first).await?);
                    let _ = locked.send(());
                    let _ = released.await;
                    Ok(())
                })
                .await
        })
    };
    is_locked.await.unwrap();
    let child_jti = second.rows[0].jti;
    let passing = store.write(move |txn| async move {
        txn.lock_shared(&[root_id]).await?;
        assert!(txn.register(second).await?);
        Ok(())
    });
    // An exclusive lock, or a lock on the device's row, would wait for the
    // holder, which waits for us.
    tokio::time::timeout(Duration::from_secs(20), passing)
        .await
        .expect("a shared lock or the device's row waited for the holder")
        .unwrap();
    let expiry = {
        let store = store.clone();
        tokio::spawn(async move { store.expire_tree(root_id, Utc::now()).await })
    };
    // The expiry waits for the holder's lock. Bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            !expiry.is_finished(),
            "the expiry did not wait for the holder"
        );
        assert!(
            Instant::now() < deadline,
            "the expiry never waited for a lock"
        );
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(
        expiry.await.unwrap().unwrap(),
        3,
        "root and children expired"
    );
    let (child, _) = store.find_by_jti(child_jti).await.unwrap().unwrap();
    assert!(child.expired_at.is_some());
}
