//! The registry of issued tokens: every container token has its row.

use common::{TestApp, claims};
use reqwest::StatusCode;

use super::{SERVICE, get_token, json_ok, with_alice_and_bob};

#[tokio::test]
async fn each_issued_token_is_registered_as_a_registry_token_of_its_user() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        get_token(
            &app,
            &[("service", SERVICE)],
            Some(("alice", "alice-password")),
        )
        .await,
    )
    .await;
    let r = app.row(body["token"].as_str().unwrap()).await;
    assert_eq!(r.token_type, "registry");
    assert_eq!(r.user_id, Some(app.user_id("alice").await));
    assert_eq!(r.parent_id, None);
    let lifetime = r.expires_at.unwrap() - r.issued_at;
    assert_eq!(lifetime.num_seconds(), 300);
}

#[tokio::test]
async fn anonymous_tokens_are_not_registered() {
    // An anonymous token grants only what the rules give everyone, and
    // nobody could revoke it: 200 anonymous requests write nothing.
    let app = TestApp::spawn().await;
    for i in 0..200 {
        let resp = app
            .client
            .get(app.url(&format!("/token?service={SERVICE}")))
            .header("user-agent", format!("agent-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(app.count_tokens().await, 0);
    assert_eq!(app.count_devices().await, 0);
}

#[tokio::test]
async fn an_offline_token_is_the_parent_of_the_registry_token_issued_with_it() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("offline_token", "true"),
                ("client_id", "docker"),
            ],
            Some(("alice", "alice-password")),
        )
        .await,
    )
    .await;
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    let c = claims(refresh);
    assert_eq!(c["token_type"], "refresh");
    assert_eq!(c["aud"], SERVICE);
    let refresh_row = app.row(refresh).await;
    let token_row = app.row(body["token"].as_str().unwrap()).await;
    assert_eq!(token_row.parent_id, Some(refresh_row.id));
    assert_eq!(refresh_row.user_id, Some(app.user_id("alice").await));
}
