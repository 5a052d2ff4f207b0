//! The refresh reuse grace: a client that lost the answer to a rotating
//! refresh presents the used-up token again and lands back on its chain.

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use tokend::{clock::ManualClock, config::HumanDuration};
use tokio::sync::Barrier;

use common::{ADMIN_PASSWORD, TestApp, claims, jti, on_postgres};

use super::assert_refused;

const GRACE: Duration = Duration::from_secs(10);

fn rotating(c: &mut tokend::Config) {
    c.rotate_refresh_tokens = true;
    c.refresh_reuse_grace = HumanDuration(GRACE);
}

async fn rotating_on_a_clock() -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    (
        TestApp::spawn_with_clock(rotating, clock.clone()).await,
        clock,
    )
}

/// The access and refresh tokens of a successful refresh.
async fn refreshed(resp: reqwest::Response) -> (String, String) {
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let text = |field: &str| body[field].as_str().expect(field).to_owned();
    (text("access"), text("refresh"))
}

#[tokio::test]
async fn a_retry_within_the_grace_gets_the_same_successor_and_a_new_access_token() {
    let (app, clock) = rotating_on_a_clock().await;
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let (first_access, child) = refreshed(app.refresh(&parent).await).await;

    clock.advance(chrono::Duration::seconds(9));
    let (again_access, again_child) = refreshed(app.refresh(&parent).await).await;

    let (c1, c2) = (claims(&child), claims(&again_child));
    assert_eq!(c2["jti"], c1["jti"], "the same successor");
    assert_eq!(c2["exp"], c1["exp"], "with its own expiry");
    assert_eq!(c2["iat"], c1["iat"]);
    assert_ne!(jti(&again_access), jti(&first_access), "a new access token");
    let child_row = app.row(&child).await;
    assert_eq!(app.row(&again_access).await.parent_id, Some(child_row.id));
    assert_eq!(
        app.successors(&parent).await.len(),
        1,
        "nothing new registered"
    );
    // Both access tokens work, and the chain goes on from the successor.
    assert_eq!(app.me(&first_access).await.status(), StatusCode::OK);
    assert_eq!(app.me(&again_access).await.status(), StatusCode::OK);
    let (_, grandchild) = refreshed(app.refresh(&again_child).await).await;
    assert_eq!(app.row(&grandchild).await.parent_id, Some(child_row.id));
}

#[tokio::test]
async fn the_default_grace_is_ten_seconds() {
    assert_eq!(tokend::Config::default().refresh_reuse_grace.0, GRACE);
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let (_, child) = refreshed(app.refresh(&parent).await).await;
    let (_, again) = refreshed(app.refresh(&parent).await).await;
    assert_eq!(jti(&again), jti(&child));
}

#[tokio::test]
async fn with_no_grace_a_retry_is_theft() {
    let app = TestApp::spawn_with(|c| {
        c.rotate_refresh_tokens = true;
        c.refresh_reuse_grace = HumanDuration(Duration::ZERO);
    })
    .await;
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let (access, child) = refreshed(app.refresh(&parent).await).await;
    assert_eq!(
        app.refresh(&parent).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_refused(&app, &access).await;
    assert_eq!(app.refresh(&child).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn after_the_grace_a_retry_is_theft_and_expires_the_successor_too() {
    let (app, clock) = rotating_on_a_clock().await;
    let (first_access, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let (access, child) = refreshed(app.refresh(&parent).await).await;

    clock.advance(chrono::Duration::from_std(GRACE).unwrap() + chrono::Duration::seconds(1));
    assert_eq!(
        app.refresh(&parent).await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert_refused(&app, &first_access).await;
    assert_refused(&app, &access).await;
    assert_eq!(app.refresh(&child).await.status(), StatusCode::UNAUTHORIZED);
    assert!(app.row(&child).await.expired_at.is_some());
}

#[tokio::test]
async fn a_successor_rotated_in_turn_is_not_handed_out_again() {
    let (app, _clock) = rotating_on_a_clock().await;
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let (_, child) = refreshed(app.refresh(&parent).await).await;
    let (grandchild_access, grandchild) = refreshed(app.refresh(&child).await).await;
    let rows_before = app.count_tokens().await;

    assert_eq!(
        app.refresh(&parent).await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(app.count_tokens().await, rows_before, "nothing handed out");
    assert_eq!(app.me(&grandchild_access).await.status(), StatusCode::OK);
    assert!(
        app.row(&grandchild).await.expired_at.is_none(),
        "nothing expired"
    );
}

#[tokio::test]
async fn an_expired_successor_is_not_handed_out_again() {
    let (app, _clock) = rotating_on_a_clock().await;
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let (_, child) = refreshed(app.refresh(&parent).await).await;
    assert_eq!(app.expire(&child, false).await.status(), StatusCode::OK);
    let rows_before = app.count_tokens().await;

    assert_eq!(
        app.refresh(&parent).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.count_tokens().await, rows_before, "nothing handed out");
}

#[tokio::test]
async fn a_deactivated_user_gets_nothing_within_the_grace() {
    let (app, _clock) = rotating_on_a_clock().await;
    app.create_user("alice", "alice-password-1", false).await;
    let (_, parent) = app.pair("alice", "alice-password-1").await;
    refreshed(app.refresh(&parent).await).await;
    app.set_user_active("alice", false).await;
    let rows_before = app.count_tokens().await;

    assert_eq!(
        app.refresh(&parent).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.count_tokens().await, rows_before, "nothing handed out");
}

/// Refreshes `parent` from `clients` tasks at once, task `i` by
/// `send(i, parent)`; returns each answer's status and refresh jti.
async fn refresh_together<F, Fut>(
    clients: usize,
    parent: &str,
    send: F,
) -> Vec<(StatusCode, String)>
where
    F: Fn(usize, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Response> + Send,
{
    let barrier = Arc::new(Barrier::new(clients));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (barrier, parent, send) = (barrier.clone(), parent.to_owned(), send.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = send(i, parent).await;
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let refresh = body["refresh"].as_str().map(|t| jti(t).to_string());
                (status, refresh.unwrap_or_default())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    answers
}

/// Every answer succeeded with one successor; the registry holds exactly
/// that successor under `parent`, and one access token per answer under it.
async fn assert_one_successor(app: &TestApp, parent: &str, answers: &[(StatusCode, String)]) {
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let first = &answers[0].1;
    assert!(
        answers.iter().all(|(_, j)| j == first),
        "one successor: {answers:?}"
    );
    let successors = app.successors(parent).await;
    assert_eq!(successors.len(), 1, "{successors:#?}");
    assert_eq!(&successors[0].jti.to_string(), first);
    let children = app.children(successors[0].id).await;
    assert_eq!(children.len(), answers.len(), "one access token per answer");
    assert!(children.iter().all(|c| c.token_type == "access"));
}

const CLIENTS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_within_the_grace_all_get_the_one_successor() {
    let app = Arc::new(TestApp::spawn_with(rotating).await);
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let server = app.clone();
    let answers = refresh_together(CLIENTS, &parent, move |_, token| {
        let app = server.clone();
        async move { app.refresh(&token).await }
    })
    .await;
    assert_one_successor(&app, &parent, &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_across_two_replicas_get_the_one_successor() {
    if !on_postgres() {
        return; // replicas share a PostgreSQL database
    }
    let app = Arc::new(TestApp::spawn_with(rotating).await);
    let replica = Arc::new(app.replica().await);
    let (_, parent) = app.pair("admin", ADMIN_PASSWORD).await;
    let server = app.clone();
    let answers = refresh_together(CLIENTS, &parent, move |i, token| {
        let (app, replica) = (server.clone(), replica.clone());
        async move {
            if i % 2 == 0 {
                app.refresh(&token).await
            } else {
                replica.refresh(&token).await
            }
        }
    })
    .await;
    assert_one_successor(&app, &parent, &answers).await;
}
