//! Issuer, audience and leeway.

use reqwest::StatusCode;
use serde_json::Value;
use tokend::config::HumanDuration;

use common::{ADMIN_PASSWORD, TestApp, claims, header};

use super::{assert_token_not_valid, assert_valid};

/// `token`'s claims changed by `change`, signed by the app's own signing key:
/// only the changed claims can make it fail.
fn resign(
    app: &TestApp,
    token: &str,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut claims = claims(token);
    change(claims.as_object_mut().unwrap());
    let typ = header(token)["typ"].as_str().unwrap().to_owned();
    app.state.keys.sign_typed(&typ, &claims).unwrap()
}

async fn spawn_with_issuer_and_audience() -> TestApp {
    TestApp::spawn_with(|c| {
        c.issuer = Some("https://tokend.example".into());
        c.audience = Some("api.example".into());
    })
    .await
}

#[tokio::test]
async fn issuer_and_audience_are_put_in_every_token() {
    let app = spawn_with_issuer_and_audience().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for token in [&access, &refresh] {
        assert_eq!(claims(token)["iss"], "https://tokend.example");
        assert_eq!(claims(token)["aud"], "api.example");
    }
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    let app = spawn_with_issuer_and_audience().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_valid(&app, &resign(&app, &access, |_| {})).await;
    let other = resign(&app, &access, |c| {
        c.insert("aud".into(), "other.example".into());
    });
    assert_token_not_valid(&app, &other).await;
    let missing = resign(&app, &access, |c| {
        c.remove("aud");
    });
    assert_token_not_valid(&app, &missing).await;
}

#[tokio::test]
async fn token_for_another_issuer_is_refused() {
    let app = spawn_with_issuer_and_audience().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let other = resign(&app, &access, |c| {
        c.insert("iss".into(), "https://evil.example".into());
    });
    assert_token_not_valid(&app, &other).await;
    let missing = resign(&app, &access, |c| {
        c.remove("iss");
    });
    assert_token_not_valid(&app, &missing).await;
}

#[tokio::test]
async fn token_with_an_audience_is_refused_when_none_is_configured() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let aimed = resign(&app, &access, |c| {
        c.insert("aud".into(), "registry.example".into());
    });
    assert_token_not_valid(&app, &aimed).await;
}

fn expired_seconds_ago(app: &TestApp, token: &str, secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    resign(app, token, |c| {
        c.insert("exp".into(), (now - secs).into());
    })
}

#[tokio::test]
async fn leeway_accepts_a_token_just_past_its_expiry() {
    let app =
        TestApp::spawn_with(|c| c.leeway = HumanDuration(std::time::Duration::from_secs(120)))
            .await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_valid(&app, &expired_seconds_ago(&app, &access, 30)).await;
    assert_token_not_valid(&app, &expired_seconds_ago(&app, &access, 600)).await;
}

#[tokio::test]
async fn without_leeway_a_token_past_its_expiry_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_token_not_valid(&app, &expired_seconds_ago(&app, &access, 30)).await;
}
