//! The look-ups by `jti`, in groups: each caller gets its own row, the
//! look-ups waiting together go as one statement, and a group whose
//! statement fails fails each of its callers with `unavailable`.

use std::sync::atomic::Ordering;

use super::*;

/// Look-ups asked together, on the test's one thread: every one of them is
/// queued before a reader runs.
const ASKED: usize = 48;

#[tokio::test]
async fn look_ups_asked_together_go_as_one_statement_and_each_gets_its_own_row() {
    let Some(Ann {
        _database: _kept,
        store,
        now,
        user,
        ..
    }) = with_ann().await
    else {
        return;
    };
    let lookups = store
        .groups
        .clone()
        .expect("PostgreSQL looks up in groups")
        .lookups;
    let mut registered = Vec::new();
    for _ in 0..ASKED / 2 {
        registered.push(registered_root(&store, &user, now).await);
    }
    // Half of the look-ups find a row (the first token's three times, as
    // calls made at once with one token ask), half find none.
    let jtis: Vec<Uuid> = registered
        .iter()
        .map(|row| row.jti)
        .chain([registered[0].jti; 2])
        .chain((0..ASKED / 2 - 2).map(|_| Uuid::now_v7()))
        .collect();
    let before = lookups.groups.load(Ordering::Relaxed);

    let asked: Vec<_> = jtis
        .iter()
        .map(|&jti| {
            let store = store.clone();
            tokio::spawn(async move { (jti, store.find_by_jti(jti).await) })
        })
        .collect();
    for task in asked {
        let (jti, found) = task.await.unwrap();
        match registered.iter().find(|row| row.jti == jti) {
            Some(row) => {
                let (found, owner) = found.unwrap().expect("a registered token is found");
                assert_eq!(&found, row);
                assert_eq!(owner.map(|u| u.id), Some(user.id));
            }
            None => assert!(found.unwrap().is_none(), "an unknown jti finds nothing"),
        }
    }
    assert_eq!(
        lookups.groups.load(Ordering::Relaxed) - before,
        1,
        "{ASKED} look-ups waiting together are one statement"
    );
}

#[tokio::test]
async fn a_group_whose_statement_fails_fails_each_look_up_as_unavailable() {
    let Some(Ann {
        _database: _kept,
        db,
        store,
        ..
    }) = with_ann().await
    else {
        return;
    };
    db.pg_conns().expect("held connections").close();
    let asked: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.find_by_jti(Uuid::now_v7()).await })
        })
        .collect();
    for task in asked {
        let failed = task.await.unwrap();
        assert!(matches!(failed, Err(Error::Unavailable(_))), "{failed:?}");
    }
}
