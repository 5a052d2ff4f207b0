//! The registrations of refreshes, in groups: those waiting together go as
//! one statement, a refused one fails alone, and the writer's connection is
//! its own, so refreshes holding every lent connection still register.

use std::sync::atomic::Ordering;

use futures_util::future::join_all;

use super::*;
use crate::store::TreeLock;

/// Registrations submitted together, on the test's one thread: every one
/// of them is queued before the writer runs.
const SUBMITTED: usize = 24;

/// A child of `parent` (an access token), or of a parent that never was.
fn child(parent: Option<&tokens::Model>, user: &users::Model, now: DateTime<Utc>) -> tokens::Model {
    let (parent_id, root_id) = match parent {
        Some(parent) => (parent.id, parent.root_id),
        None => (Uuid::now_v7(), Uuid::now_v7()),
    };
    tokens::Model {
        token_type: "access".into(),
        parent_id: Some(parent_id),
        root_id,
        ..row(Some(user.id), now)
    }
}

/// Submits each registration at once and gives each outcome, in order.
async fn submit_together(
    store: &TokenStore,
    each: Vec<Vec<tokens::Model>>,
) -> Vec<crate::error::Result<bool>> {
    let registrations = store.groups.clone().unwrap().registrations;
    let submitted: Vec<_> = each
        .into_iter()
        .map(|rows| {
            let registrations = registrations.clone();
            tokio::spawn(async move { registrations.register(rows).await })
        })
        .collect();
    join_all(submitted)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn registrations_waiting_together_go_as_one_statement_and_a_refused_one_fails_alone() {
    let Some(Ann {
        _database: _kept,
        db,
        store,
        now,
        user,
        ..
    }) = with_ann().await
    else {
        return;
    };
    let statements = store.groups.clone().unwrap().registrations.statements;
    let root = registered_root(&store, &user, now).await;

    let all_sound: Vec<Vec<tokens::Model>> = (0..SUBMITTED)
        .map(|_| vec![child(Some(&root), &user, now)])
        .collect();
    let before = statements.load(Ordering::Relaxed);
    let outcomes = submit_together(&store, all_sound.clone()).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(true))),
        "{outcomes:?}"
    );
    assert_eq!(
        statements.load(Ordering::Relaxed) - before,
        1,
        "{SUBMITTED} registrations waiting together are one statement"
    );
    for rows in &all_sound {
        let (back, _) = find_by_jti(&db.read, rows[0].jti).await.unwrap().unwrap();
        assert_eq!(back, rows[0]);
    }

    // One registration (of two rows) points to a parent that never was: it
    // alone is refused, and none of its rows stays.
    let refused = SUBMITTED / 2;
    let mixed: Vec<Vec<tokens::Model>> = (0..SUBMITTED)
        .map(|i| match i == refused {
            true => vec![child(Some(&root), &user, now), child(None, &user, now)],
            false => vec![child(Some(&root), &user, now)],
        })
        .collect();
    let before = statements.load(Ordering::Relaxed);
    let outcomes = submit_together(&store, mixed.clone()).await;
    for (i, (rows, outcome)) in mixed.iter().zip(&outcomes).enumerate() {
        let stored = find_by_jti(&db.read, rows[0].jti).await.unwrap();
        if i == refused {
            assert!(matches!(outcome, Ok(false)), "{outcome:?}");
            assert!(stored.is_none(), "half of a refused registration stayed");
        } else {
            assert!(matches!(outcome, Ok(true)), "{i}: {outcome:?}");
            assert!(
                stored.is_some(),
                "{i}: a neighbour of the refused one was lost"
            );
        }
    }
    assert_eq!(
        statements.load(Ordering::Relaxed) - before,
        1 + SUBMITTED as u64,
        "the group, then each registration alone"
    );
}

/// Refreshes holding every connection the store lends still register: the
/// writer's connection is not one of them.
#[tokio::test]
async fn refreshes_holding_every_lent_connection_still_register() {
    let Some((_database, db)) = postgres(Duration::from_secs(5)).await else {
        return;
    };
    let store = TokenStore::new(db.clone());
    let now = Utc::now().trunc_subsecs(6);
    let user = ann(&db, now).await;
    let statements = store.groups.clone().unwrap().registrations.statements;
    // As many as the store lends (`postgres` sets four).
    let mut opened = Vec::new();
    for _ in 0..4 {
        let root = registered_root(&store, &user, now).await;
        let open = store.open(root.jti, Some(TreeLock::Shared)).await.unwrap();
        opened.push((root, open));
    }
    let (lent, _) = store.pg.as_ref().unwrap().counts();
    assert_eq!(lent, 4, "every connection is held by an opened refresh");

    let before = statements.load(Ordering::Relaxed);
    let children: Vec<tokens::Model> = (opened.iter())
        .map(|(root, _)| child(Some(root), &user, now))
        .collect();
    let written = opened
        .into_iter()
        .zip(children.clone())
        .map(|((_, open), child)| {
            open.write(&store, move |txn| async move {
                match txn.register(only(child)).await? {
                    true => Ok(()),
                    false => Err(Error::TokenNotValid),
                }
            })
        });
    for outcome in join_all(written).await {
        outcome.expect("a refresh registered while the others held their connections");
    }
    assert!(
        statements.load(Ordering::Relaxed) > before,
        "the registrations went to the writer"
    );
    for child in children {
        assert!(store.find_by_jti(child.jti).await.unwrap().is_some());
    }
}

/// A login's registration is one statement sent on its own: no `BEGIN`,
/// no `COMMIT`; refused, it writes nothing and keeps its connection.
#[tokio::test]
async fn a_registration_alone_is_one_statement_its_own_transaction() {
    let Some(Ann {
        _database: _kept,
        db,
        mut watcher,
        store,
        now,
        user,
    }) = with_ann().await
    else {
        return;
    };
    let from_phone = |rows| Registration {
        rows,
        device: Some(Device {
            user_id: user.id,
            user_agent: "phone".into(),
            client_address: "10.0.0.1".into(),
            seen_at: now,
        }),
    };
    let root = row(Some(user.id), now);
    assert!(
        store
            .register_alone(from_phone(vec![root.clone()]))
            .await
            .unwrap()
    );
    let (back, _) = find_by_jti(&db.read, root.jti).await.unwrap().unwrap();
    assert_eq!(back.jti, root.jti);
    assert!(back.device_id.is_some(), "the device came with the row");
    let last: Vec<String> = sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity \
         WHERE state = 'idle' AND datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut watcher)
    .await
    .unwrap();
    assert!(
        last.iter().any(|q| q.starts_with("WITH found AS")),
        "the registration was the connection's last statement: {last:?}"
    );

    let conns = store.pg.clone().unwrap();
    let opened = conns.opened();
    let orphan = row(Some(Uuid::new_v4()), now);
    let orphan_jti = orphan.jti;
    assert!(!store.register_alone(only(orphan)).await.unwrap());
    assert!(find_by_jti(&db.read, orphan_jti).await.unwrap().is_none());
    assert!(
        store
            .register_alone(only(row(Some(user.id), now)))
            .await
            .unwrap()
    );
    assert_eq!(
        conns.opened(),
        opened,
        "the refused one kept its connection"
    );
}
