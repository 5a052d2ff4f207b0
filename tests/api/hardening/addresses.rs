//! Client addresses behind trusted proxies, and devices: only an IP address
//! is taken, and a device belongs to one user.

use common::{ADMIN_PASSWORD, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokend::config::TrustedProxies;

async fn obtain_via_proxy(app: &TestApp, forwarded: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/token/obtain"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("request")
}

/// The address recorded for the device of `access`'s session.
async fn session_address(app: &TestApp, access: &str) -> String {
    let page: Value = app
        .get_with("/api/v1/tokens", access)
        .await
        .json()
        .await
        .unwrap();
    page["items"][0]["device"]["client_address"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_forwarded_address_that_is_not_an_ip_address_is_not_taken() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = TrustedProxies::Hops(1)).await;
    for (forwarded, recorded) in [
        ("10.1.1.01", "127.0.0.1"),
        ("not-an-address", "127.0.0.1"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("::ffff:10.1.1.1", "10.1.1.1"),
    ] {
        let resp = obtain_via_proxy(&app, forwarded, ADMIN_PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::OK, "{forwarded}");
        let body: Value = resp.json().await.unwrap();
        let access = body["access"].as_str().unwrap();
        assert_eq!(session_address(&app, access).await, recorded, "{forwarded}");
    }
}

#[tokio::test]
async fn a_long_forwarded_value_neither_fails_nor_escapes_the_throttle() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = TrustedProxies::Hops(1);
        c.login_max_failures = 100;
        c.login_max_failures_per_address = 2;
    })
    .await;
    // 65 characters, then 200 KB: neither is an address, so both count as
    // the socket's, 127.0.0.1, and neither is stored as it came.
    let long = "9".repeat(65);
    let huge = "9".repeat(200 * 1024);
    for forwarded in [&long, &huge] {
        let resp = obtain_via_proxy(&app, forwarded, "wrong").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = obtain_via_proxy(&app, &long, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn each_user_has_devices_of_their_own() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alice-password", false).await;
    let (admin_access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let (alice_access, _) = app.pair("alice", "alice-password").await;
    // Same user agent, same address: two users, two devices.
    assert_eq!(app.count_devices().await, 2);
    let admin_device = app.row(&admin_access).await.device_id.unwrap();
    let alice_device = app.row(&alice_access).await.device_id.unwrap();
    assert_ne!(admin_device, alice_device);
    let alice_row = app.device(alice_device).await;
    assert_eq!(alice_row.user_id, Some(app.user_id("alice").await));
    // The admin signing in again moves their own device's last_seen only.
    let before = app.device(alice_device).await;
    app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.device(alice_device).await, before);
}

#[tokio::test]
async fn archive_removes_devices_no_token_refers_to() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.count_devices().await, 1);
    app.expire(&access, true).await;
    let admin = app.admin_token().await;
    app.expire(&admin, true).await;
    app.state.archive(None).await.unwrap();
    assert_eq!(app.count_tokens().await, 0);
    assert_eq!(app.count_devices().await, 0);
}
