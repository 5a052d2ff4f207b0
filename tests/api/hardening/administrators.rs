//! The last active administrator stays one: nobody could administer tokend
//! through its API otherwise.

use std::sync::Arc;

use common::{ADMIN_PASSWORD, TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::Barrier;

#[tokio::test]
async fn the_last_administrator_cannot_be_demoted_deactivated_or_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (method, path, body) in [
        (
            Method::PATCH,
            "/api/v1/users/admin",
            Some(json!({"is_admin": false})),
        ),
        (
            Method::PATCH,
            "/api/v1/users/admin",
            Some(json!({"is_active": false})),
        ),
        (Method::DELETE, "/api/v1/users/admin", None),
    ] {
        let resp = app.call(method.clone(), path, &admin, body).await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::CONFLICT, "conflict".into()),
            "{method} {path}"
        );
    }
    assert_eq!(app.me(&admin).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_another_administrator_it_can() {
    let app = TestApp::spawn().await;
    app.create_user("root", "root-password", true).await;
    let admin = app.admin_token().await;
    let resp = app
        .call(
            Method::PATCH,
            "/api/v1/users/admin",
            &admin,
            Some(json!({"is_admin": false})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_administrators_demoting_each_other_at_once_leave_one() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_user("root", "root-password", true).await;
    let tokens = [
        ("root", app.admin_token().await),
        ("admin", app.pair("root", "root-password").await.0),
    ];
    for _ in 0..8 {
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = tokens
            .iter()
            .cloned()
            .map(|(target, token)| {
                let (app, barrier) = (app.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    app.call(
                        Method::PATCH,
                        &format!("/api/v1/users/{target}"),
                        &token,
                        Some(json!({"is_admin": false})),
                    )
                    .await
                    .status()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        let admins = app
            .state
            .users
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.is_admin && u.is_active)
            .count();
        assert_eq!(admins, 1, "{statuses:?}");
        // Make both administrators again for the next round.
        for name in ["admin", "root"] {
            app.state
                .users
                .update(name, None, Some(true), tokend::users::LastAdmin::Keep)
                .await
                .unwrap();
        }
        assert_eq!(
            app.obtain("admin", ADMIN_PASSWORD).await.status(),
            StatusCode::OK
        );
    }
}
