//! Usernames are NFKC-normalised, and look-alikes of a taken name are
//! refused.

use common::{ADMIN_PASSWORD, TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_look_alike_of_a_taken_name_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for name in ["ADMIN", "Admin", "ａｄｍｉｎ", "𝐚𝐝𝐦𝐢𝐧"] {
        let resp = app
            .call(
                Method::POST,
                "/api/v1/users",
                &admin,
                Some(json!({"username": name, "password": "another-password"})),
            )
            .await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::CONFLICT, "conflict".into()),
            "{name}"
        );
    }
    assert_eq!(app.state.users.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn names_are_stored_and_looked_up_normalised() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let resp = app
        .call(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"username": "ｂｏｂ", "password": "bob-password"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["username"], "bob");
    // Logging in with either form is logging in as bob.
    for name in ["bob", "ｂｏｂ"] {
        assert_eq!(
            app.obtain(name, "bob-password").await.status(),
            StatusCode::OK,
            "{name}"
        );
    }
    assert_eq!(
        app.obtain("ａｄｍｉｎ", ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}
