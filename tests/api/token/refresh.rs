use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use common::{ADMIN_PASSWORD, TestApp, error_code};

use super::{assert_refused, rotating_without_grace};

#[tokio::test]
async fn refresh_without_rotation_keeps_the_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for _ in 0..2 {
        let resp = app.refresh(&refresh).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("refresh").is_none());
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 300);
        let access = body["access"].as_str().unwrap();
        assert_eq!(app.me(access).await.status(), StatusCode::OK);
        assert_eq!(
            app.row(access).await.parent_id,
            Some(app.row(&refresh).await.id)
        );
    }
}

#[tokio::test]
async fn refresh_with_rotation_hands_out_a_new_pair_and_uses_up_the_old() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = app.refresh(&refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let new_refresh = body["refresh"].as_str().unwrap();
    let new_access = body["access"].as_str().unwrap();
    assert_eq!(body["refresh_expires_in"], 86400);
    let old_row = app.row(&refresh).await;
    let new_refresh_row = app.row(new_refresh).await;
    assert!(old_row.rotated_at.is_some());
    assert_eq!(new_refresh_row.parent_id, Some(old_row.id));
    assert_eq!(
        app.row(new_access).await.parent_id,
        Some(new_refresh_row.id)
    );
    assert_eq!(app.me(new_access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(new_refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reused_rotated_refresh_token_expires_the_whole_tree() {
    let app = TestApp::spawn_with(rotating_without_grace).await;
    let (first_access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let new_refresh = body["refresh"].as_str().unwrap().to_owned();
    let new_access = body["access"].as_str().unwrap().to_owned();

    let (status, code) = error_code(app.refresh(&refresh).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );

    assert_refused(&app, &first_access).await;
    assert_refused(&app, &new_access).await;
    assert_eq!(
        app.refresh(&new_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn verify_and_expire_of_a_used_up_token_change_nothing() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let new_access = body["access"].as_str().unwrap();
    assert_eq!(
        app.verify(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.expire(&refresh, true).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(new_access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_succeed_exactly_once() {
    let app = Arc::new(TestApp::spawn_with(rotating_without_grace).await);
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let attempts = 24;
    let barrier = Arc::new(tokio::sync::Barrier::new(attempts));
    let mut tasks = Vec::new();
    for _ in 0..attempts {
        let (app, barrier, refresh) = (app.clone(), barrier.clone(), refresh.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.refresh(&refresh).await.status()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "unexpected {status}"
        );
        ok += usize::from(status == StatusCode::OK);
    }
    assert_eq!(ok, 1, "exactly one refresh wins");
    let successors = app.successors(&refresh).await;
    assert_eq!(
        successors.len(),
        1,
        "one successor refresh token: {successors:#?}"
    );
}

#[tokio::test]
async fn expire_on_refresh_expires_the_rest_of_the_tree() {
    let app = TestApp::spawn_with(|c| c.expire_on_refresh = true).await;
    let (access1, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let access2 = body["access"].as_str().unwrap();
    assert_refused(&app, &access1).await;
    assert_eq!(app.me(access2).await.status(), StatusCode::OK);
    assert_eq!(app.verify(&refresh).await.status(), StatusCode::OK);
}
