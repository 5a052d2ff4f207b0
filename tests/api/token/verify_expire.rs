use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokend::config::Lifetime;

use common::{ADMIN_PASSWORD, TestApp, claims, error_code, header};

use super::assert_refused;

#[tokio::test]
async fn refresh_token_is_not_an_access_token_nor_the_reverse() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_refused(&app, &refresh).await;
    let (status, code) = error_code(app.refresh(&access).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
}

#[tokio::test]
async fn tampered_signature_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let mut parts: Vec<String> = access.split('.').map(String::from).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[10] ^= 0x01;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    assert_refused(&app, &parts.join(".")).await;
    let (status, _) = error_code(app.verify(&parts.join(".")).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tampered_claims_are_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let mut c = claims(&access);
    c["username"] = json!("someone-else");
    let parts: Vec<&str> = access.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let h = header(&access);
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": h["kid"]});
    let payload = access.split('.').nth(1).unwrap();
    let forged = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(none_header.to_string()),
        payload
    );
    assert_refused(&app, &forged).await;
    let forged = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(none_header.to_string()),
        payload
    );
    assert_refused(&app, &forged).await;
}

#[tokio::test]
async fn expired_token_is_refused_after_its_lifetime() {
    let app = TestApp::spawn_with(|c| c.access_token_lifetime = Lifetime::secs(1)).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_refused(&app, &access).await;
}

#[tokio::test]
async fn force_expired_token_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = app.expire(&access, false).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 1}));
    assert_refused(&app, &access).await;
    assert_eq!(app.verify(&access).await.status(), StatusCode::UNAUTHORIZED);
    // Only that token: its refresh token still works.
    assert_eq!(app.verify(&refresh).await.status(), StatusCode::OK);
    // Expiring it again is not allowed: it is no longer valid.
    assert_eq!(
        app.expire(&access, false).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn verify_answers_an_empty_object_for_a_valid_token() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for token in [&access, &refresh] {
        let resp = app.verify(token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));
    }
    let (status, code) = error_code(app.verify("not-a-token").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
}

#[tokio::test]
async fn tree_expire_reaches_siblings_through_the_parent() {
    let app = TestApp::spawn().await;
    let (access1, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let access2 = body["access"].as_str().unwrap().to_owned();
    let (other_access, _) = app.pair("admin", ADMIN_PASSWORD).await;

    let resp = app.expire(&access1, true).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 3}));

    assert_refused(&app, &access1).await;
    assert_refused(&app, &access2).await;
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Another login's tree is untouched.
    assert_eq!(app.me(&other_access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn registry_row_must_agree_with_the_token_type() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    app.set_token_type(&access, "refresh").await;
    assert_refused(&app, &access).await;
}

#[tokio::test]
async fn unknown_jti_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    app.delete_row(&access).await;
    assert_refused(&app, &access).await;
}

#[tokio::test]
async fn inactive_user_cannot_obtain_and_their_tokens_stop_working() {
    let app = TestApp::spawn().await;
    app.create_user("carol", "carol-password", false).await;
    let (access, refresh) = app.pair("carol", "carol-password").await;
    app.set_user_active("carol", false).await;
    assert_refused(&app, &access).await;
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, code) = error_code(app.obtain("carol", "carol-password").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "no_active_account")
    );
}

#[tokio::test]
async fn deleted_user_tokens_stop_working_and_are_not_inherited() {
    let app = TestApp::spawn().await;
    app.create_user("dave", "dave-password", false).await;
    let (access, refresh) = app.pair("dave", "dave-password").await;
    app.state
        .users
        .delete("dave", tokend::users::LastAdmin::Keep)
        .await
        .unwrap();
    app.create_user("dave", "dave-password", false).await;
    assert_refused(&app, &access).await;
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
