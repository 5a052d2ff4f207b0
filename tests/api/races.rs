//! Races under 64 concurrent clients, started together at a barrier.

use std::sync::Arc;

use entity::tokens;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, Condition};
use serde_json::Value;
use tokio::sync::Barrier;

use common::{ADMIN_PASSWORD, TestApp, on_postgres};

const CLIENTS: usize = 64;

/// Active tokens of the tree `root`.
async fn active_in_tree(app: &TestApp, root: uuid::Uuid) -> Vec<tokens::Model> {
    app.active_rows_where(tokens::Column::RootId.eq(root)).await
}

/// Status and body of a refresh.
async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let resp = app.refresh(token).await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn rotation_hands_out_exactly_one_successor_per_refresh_token_under_64_clients() {
    let app = Arc::new(TestApp::spawn_with(crate::token::rotating_without_grace).await);
    let trees = 4;
    let mut refreshes = Vec::new();
    for _ in 0..trees {
        refreshes.push(app.pair("admin", ADMIN_PASSWORD).await.1);
    }
    let barrier = Arc::new(Barrier::new(CLIENTS));

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (app, barrier) = (app.clone(), barrier.clone());
            let token = refreshes[i % trees].clone();
            tokio::spawn(async move {
                barrier.wait().await;
                (i % trees, refresh(&app, &token).await.0)
            })
        })
        .collect();
    let mut winners = vec![0; trees];
    for task in tasks {
        let (tree, status) = task.await.expect("task");
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "unexpected {status}"
        );
        winners[tree] += usize::from(status == StatusCode::OK);
    }

    assert_eq!(winners, vec![1; trees], "one refresh wins per token");
    for token in &refreshes {
        let successors = app.successors(token).await;
        assert_eq!(successors.len(), 1, "one successor: {successors:#?}");
    }
}

/// Without rotation one refresh token serves any number of refreshes: 64 at
/// once all succeed (no deadlock, no "database is locked"), and each access
/// token they hand out is registered, as a child of the refresh token, and
/// works (no lost insert).
#[tokio::test]
async fn sixty_four_refreshes_of_one_token_without_rotation_all_register_and_work() {
    let app = Arc::new(TestApp::spawn_with(|c| c.rotate_refresh_tokens = false).await);
    let (_, token) = app.pair("admin", ADMIN_PASSWORD).await;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (app, barrier, token) = (app.clone(), barrier.clone(), token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                refresh(&app, &token).await
            })
        })
        .collect();
    let mut accesses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("refresh").is_none(), "no rotation: {body}");
        accesses.push(body["access"].as_str().expect("access").to_owned());
    }
    let parent = app.row(&token).await.id;
    let children = app.children(parent).await;
    // The access token of the obtain, and one per refresh.
    assert_eq!(
        children.len(),
        CLIENTS + 1,
        "one registered access token per refresh"
    );
    for access in &accesses {
        assert_eq!(app.row(access).await.parent_id, Some(parent));
        assert_eq!(app.me(access).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn tree_expiry_racing_refreshes_leaves_no_active_token_in_the_tree() {
    let app = Arc::new(TestApp::spawn().await);
    for round in 0..4 {
        let (_, refresh_token) = app.pair("admin", ADMIN_PASSWORD).await;
        let root = app.row(&refresh_token).await.root_id;
        let barrier = Arc::new(Barrier::new(CLIENTS));
        // The expiry goes in the middle of the crowd of refreshes.
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (app, barrier, token) = (app.clone(), barrier.clone(), refresh_token.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    if i == CLIENTS / 2 {
                        app.expire(&token, true).await.status()
                    } else {
                        refresh(&app, &token).await.0
                    }
                })
            })
            .collect();
        for task in tasks {
            let status = task.await.expect("task");
            assert!(
                status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
                "unexpected {status}"
            );
        }

        let active = active_in_tree(&app, root).await;
        assert!(
            active.is_empty(),
            "round {round}: {} tokens of an expired tree are active",
            active.len()
        );
    }
}

#[tokio::test]
async fn deleting_a_user_while_they_refresh_leaves_them_no_working_token() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_user("carol", "carol-password", false).await;
    let (_, refresh_token) = app.pair("carol", "carol-password").await;
    let carol = app.row(&refresh_token).await;
    let barrier = Arc::new(Barrier::new(CLIENTS));

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (app, barrier, token) = (app.clone(), barrier.clone(), refresh_token.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if i == CLIENTS / 2 {
                    app.state
                        .users
                        .delete("carol", tokend::users::LastAdmin::Keep)
                        .await
                        .expect("delete carol");
                    None
                } else {
                    Some(refresh(&app, &token).await)
                }
            })
        })
        .collect();
    let mut handed_out = Vec::new();
    for task in tasks {
        let Some((status, body)) = task.await.expect("task") else {
            continue;
        };
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "unexpected {status}: {body}"
        );
        if status == StatusCode::OK {
            handed_out.push(body["access"].as_str().expect("access").to_owned());
        }
    }

    for access in &handed_out {
        assert_eq!(app.me(access).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.refresh(&refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let left = app
        .rows_where(
            Condition::any()
                .add(tokens::Column::RootId.eq(carol.root_id))
                .add(tokens::Column::UserId.eq(carol.user_id)),
        )
        .await;
    assert!(left.is_empty(), "a deleted user's tokens remain: {left:#?}");
}

/// PostgreSQL's advisory lock key of a uuid, as tokend computes it: the
/// first eight bytes of the SHA-256 of its text, little-endian.
fn lock_key_sql(id: uuid::Uuid) -> String {
    let bytes: Vec<String> = (0..8)
        .map(|i| format!("(get_byte(d, {i})::int8 << {})", 8 * i))
        .collect();
    format!(
        "(SELECT {} FROM (SELECT sha256(convert_to('{id}', 'UTF8')) AS d) AS digest)",
        bytes.join(" | ")
    )
}

/// A user's deletion that comes while a refresh of theirs has rotated its
/// token and not yet written its successor: the refresh goes on and
/// commits, and the deletion, which waited for it, removes what it wrote.
/// The refresh is played in SQL, step by step, as tokend's takes its locks
/// and writes on PostgreSQL: the tree's and user's advisory locks shared,
/// the rotation, then the new row. A deletion that took no lock of the
/// user's would meet the refresh row by row and one of them would die in a
/// deadlock.
#[tokio::test]
async fn a_users_deletion_waits_for_a_refresh_of_theirs_half_written() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if !on_postgres() {
        return; // SQLite has one writer: a deletion never meets a refresh half written
    }
    let app = Arc::new(TestApp::spawn().await);
    app.create_user("erin", "erin-password", false).await;
    let (_, refresh_token) = app.pair("erin", "erin-password").await;
    let presented = app.row(&refresh_token).await;
    let user = presented.user_id.expect("a user's token");

    let refresh = app.db().await.begin().await.expect("begin");
    refresh
        .execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock_shared({}), pg_advisory_xact_lock_shared({})",
            lock_key_sql(presented.root_id),
            lock_key_sql(user),
        ))
        .await
        .expect("the refresh's locks");
    refresh
        .execute_unprepared(&format!(
            "UPDATE tokens SET rotated_at = now() WHERE id = '{}'",
            presented.id
        ))
        .await
        .expect("the rotation");

    let deleting = {
        let app = app.clone();
        tokio::spawn(async move {
            app.state
                .users
                .delete("erin", tokend::users::LastAdmin::Keep)
                .await
        })
    };
    // The deletion is under way once a session of the database waits for a
    // lock (ours waits for nothing).
    let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    loop {
        let row = app
            .db()
            .await
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                waiting,
            ))
            .await
            .expect("pg_stat_activity")
            .expect("a count");
        if row.try_get::<i64>("", "n").expect("n") > 0 {
            break;
        }
        assert!(
            !deleting.is_finished(),
            "the deletion did not wait for the refresh"
        );
        tokio::task::yield_now().await;
    }

    let successor = uuid::Uuid::now_v7();
    refresh
        .execute_unprepared(&format!(
            "INSERT INTO tokens (id, jti, token_type, parent_id, root_id, user_id, \
             issued_at, expires_at, device_id) VALUES ('{successor}', '{}', 'refresh', \
             '{}', '{}', '{user}', now(), now() + interval '1 day', {})",
            uuid::Uuid::now_v7(),
            presented.id,
            presented.root_id,
            presented
                .device_id
                .map_or("NULL".to_owned(), |d| format!("'{d}'")),
        ))
        .await
        .expect("the refresh writes its successor while the deletion waits");
    refresh.commit().await.expect("the refresh commits");

    deleting
        .await
        .expect("task")
        .expect("the deletion goes on after the refresh");
    let left = app
        .rows_where(
            Condition::any()
                .add(tokens::Column::RootId.eq(presented.root_id))
                .add(tokens::Column::UserId.eq(user)),
        )
        .await;
    assert!(left.is_empty(), "a deleted user's tokens remain: {left:#?}");
    assert_eq!(
        app.refresh(&refresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A registration step that, once armed, stops the next issue between its
/// read of the refresh token and its write (steps run before the write)
/// until the test lets it go.
#[derive(Default)]
struct Pause {
    armed: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl tokend::registry::pipeline::RegistrationStep for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }
    async fn run(
        &self,
        _ctx: &mut tokend::registry::pipeline::RegistrationContext,
    ) -> tokend::error::Result<()> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.reached.notify_one();
            self.go.notified().await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_user_deleted_in_the_middle_of_their_refresh_gets_401_and_no_token() {
    let pause = Arc::new(Pause::default());
    let step: Arc<dyn tokend::registry::pipeline::RegistrationStep> = pause.clone();
    let app = Arc::new(
        TestApp::spawn_with_steps(|c| c.registration_pipeline.push("pause".into()), &[step]).await,
    );
    app.create_user("dave", "dave-password", false).await;
    let (_, refresh_token) = app.pair("dave", "dave-password").await;
    pause.armed.store(true, std::sync::atomic::Ordering::SeqCst);

    let refreshing = {
        let (app, token) = (app.clone(), refresh_token.clone());
        tokio::spawn(async move { refresh(&app, &token).await })
    };
    pause.reached.notified().await;
    let on_postgres = std::env::var("TOKEND_TEST_DATABASE_URL").is_ok();
    if on_postgres {
        // The delete commits while the refresh is between its read and its insert.
        app.state
            .users
            .delete("dave", tokend::users::LastAdmin::Keep)
            .await
            .expect("delete dave");
        pause.go.notify_one();
    } else {
        // SQLite: the refresh goes on first, then the delete (the order from
        // when steps ran inside the write and held SQLite's one writer).
        pause.go.notify_one();
        app.state
            .users
            .delete("dave", tokend::users::LastAdmin::Keep)
            .await
            .expect("delete dave");
    }
    let (status, body) = refreshing.await.expect("refresh task");

    assert!(
        status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
        "unexpected {status}: {body}"
    );
    if on_postgres {
        assert_eq!(body["code"], "token_not_valid", "{body}");
    }
    if let Some(access) = body["access"].as_str() {
        assert_eq!(app.me(access).await.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn expiring_all_of_a_users_tokens_racing_refreshes_leaves_none_active() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_user("bob", "bob-password", false).await;
    let user_id = app.user_id("bob").await;
    for round in 0..4 {
        let (_, refresh_token) = app.pair("bob", "bob-password").await;
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (app, barrier, token) = (app.clone(), barrier.clone(), refresh_token.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    if i == CLIENTS / 2 {
                        app.state.users.expire_all("bob").await.expect("expire all");
                    } else {
                        refresh(&app, &token).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        let active = app
            .active_rows_where(tokens::Column::UserId.eq(user_id))
            .await;
        assert!(
            active.is_empty(),
            "round {round}: {} of bob's tokens are active",
            active.len()
        );
    }
}

#[tokio::test]
async fn archive_racing_with_issue_loses_no_active_token() {
    // Many logins of one user at once: the throttle (which admits only a
    // few password checks of a username at a time) is not what this tests.
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.login_max_failures = 1000;
            c.login_max_failures_per_address = 1000;
        })
        .await,
    );
    // Dead tokens for the archive to chew on.
    for _ in 0..20 {
        let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
        app.expire(&access, true).await;
    }
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if i % 8 == 0 {
                    app.state
                        .registry
                        .archive(Some(chrono::Utc::now()))
                        .await
                        .expect("archive");
                    None
                } else {
                    Some(app.pair("admin", ADMIN_PASSWORD).await)
                }
            })
        })
        .collect();
    let mut issued = Vec::new();
    for task in tasks {
        if let Some(pair) = task.await.expect("task") {
            issued.push(pair);
        }
    }
    assert_eq!(issued.len(), CLIENTS - CLIENTS / 8);
    for (access, refresh) in &issued {
        assert_eq!(app.me(access).await.status(), StatusCode::OK);
        assert_eq!(app.verify(refresh).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.state
            .registry
            .archive(Some(chrono::Utc::now()))
            .await
            .unwrap(),
        0
    );
}
