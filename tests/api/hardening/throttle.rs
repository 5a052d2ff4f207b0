//! The login throttle holds whatever the concurrency: every login in flight
//! at once is counted before its password is checked.

use std::sync::Arc;

use common::{ADMIN_PASSWORD, TestApp, on_postgres};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Barrier;

const GUESSES: usize = 24;

/// `GUESSES` obtains for `username` sent at once, each with the password
/// `password(i)`; the statuses, in order.
async fn burst(
    app: &Arc<TestApp>,
    username: &'static str,
    password: impl Fn(usize) -> String,
) -> Vec<StatusCode> {
    let barrier = Arc::new(Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (app, barrier, password) = (app.clone(), barrier.clone(), password(i));
            tokio::spawn(async move {
                barrier.wait().await;
                app.obtain(username, &password).await.status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn concurrent_wrong_passwords_get_at_most_the_limit_of_checks() {
    let app = Arc::new(TestApp::spawn_with(|c| c.login_max_failures = 5).await);
    let statuses = burst(&app, "admin", |i| format!("wrong-{i}")).await;
    assert!(
        count(&statuses, StatusCode::UNAUTHORIZED) <= 5,
        "{statuses:?}"
    );
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED)
            + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        GUESSES,
        "{statuses:?}"
    );
    // A second burst with the right password somewhere in it: refused too.
    let statuses = burst(&app, "admin", |i| {
        if i == 17 {
            ADMIN_PASSWORD.to_owned()
        } else {
            format!("wrong-again-{i}")
        }
    })
    .await;
    assert_eq!(
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        GUESSES,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn concurrent_guesses_from_one_address_get_at_most_its_limit_of_checks() {
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.login_max_failures = 100;
            c.login_max_failures_per_address = 5;
        })
        .await,
    );
    // Each guess for another (unknown) user, all from 127.0.0.1.
    let barrier = Arc::new(Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                app.obtain(&format!("nobody{i}"), "wrong").await.status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert!(
        count(&statuses, StatusCode::UNAUTHORIZED) <= 5,
        "{statuses:?}"
    );
    assert!(count(&statuses, StatusCode::TOO_MANY_REQUESTS) >= GUESSES - 5);
}

#[tokio::test]
async fn concurrent_basic_credentials_at_the_token_server_get_at_most_the_limit() {
    let app = Arc::new(TestApp::spawn_with(|c| c.login_max_failures = 5).await);
    let barrier = Arc::new(Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                app.client
                    .get(app.url("/token?service=tokend"))
                    .basic_auth("admin", Some(format!("wrong-{i}")))
                    .send()
                    .await
                    .expect("request")
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert!(
        count(&statuses, StatusCode::UNAUTHORIZED) <= 5,
        "{statuses:?}"
    );
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED)
            + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        GUESSES
    );
}

#[tokio::test]
async fn concurrent_right_passwords_all_get_in() {
    // Logins in flight at once beyond the limit wait for a check to end
    // rather than being refused: a user may log in from many places.
    let app = Arc::new(TestApp::spawn_with(|c| c.login_max_failures = 5).await);
    let statuses = burst(&app, "admin", |_| ADMIN_PASSWORD.to_owned()).await;
    assert_eq!(count(&statuses, StatusCode::OK), GUESSES, "{statuses:?}");
}

#[tokio::test]
async fn two_replicas_on_one_database_share_the_limit() {
    if !on_postgres() {
        return; // replicas share a PostgreSQL database
    }
    let app = Arc::new(TestApp::spawn_with(|c| c.login_max_failures = 5).await);
    let replica = Arc::new(app.replica().await);
    let barrier = Arc::new(Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (app, replica, barrier) = (app.clone(), replica.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let password = format!("wrong-{i}");
                if i % 2 == 0 {
                    app.obtain("admin", &password).await.status()
                } else {
                    replica.obtain("admin", &password).await.status()
                }
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert!(
        count(&statuses, StatusCode::UNAUTHORIZED) <= 5,
        "{statuses:?}"
    );
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED)
            + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        GUESSES
    );
}

#[tokio::test]
async fn waiting_retry_after_seconds_is_enough() {
    let clock = Arc::new(tokend::clock::ManualClock::new(chrono::Utc::now()));
    let app = TestApp::spawn_with_clock(
        |c| {
            c.login_max_failures = 2;
            c.login_throttle_window =
                tokend::config::HumanDuration(std::time::Duration::from_secs(60));
        },
        clock.clone(),
    )
    .await;
    app.obtain("admin", "wrong").await;
    clock.advance(chrono::Duration::milliseconds(1500));
    app.obtain("admin", "wrong").await;
    let resp = app.obtain("admin", ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The first failure lifts 58.5 s from now: rounded up, not down.
    assert_eq!(retry_after, 59);
    clock.advance(chrono::Duration::seconds(retry_after - 1));
    assert_eq!(
        app.obtain("admin", ADMIN_PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(chrono::Duration::seconds(1));
    let resp = app
        .post_json(
            "/api/v1/token/obtain",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}
