//! Point 3: access and refresh tokens a verifier can tell apart (RFC 9068),
//! and introspection fields with RFC 7662's meaning.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp, claims, header};

use super::{add_client, introspect};

/// `token`'s claims signed again by the app's key with header `typ`.
fn resigned_with_typ(app: &TestApp, token: &str, typ: &str) -> String {
    app.state.keys.sign_typed(typ, &claims(token)).unwrap()
}

#[tokio::test]
async fn access_tokens_are_at_jwt_with_rfc_9068_claims_and_refresh_tokens_are_not() {
    let app = TestApp::spawn_with(|c| c.audience = Some("api.example".into())).await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(header(&access)["typ"], "at+jwt");
    assert_eq!(header(&refresh)["typ"], "refresh+jwt");
    let c = claims(&access);
    for claim in ["iss", "sub", "iat", "jti", "exp", "aud", "client_id"] {
        if claim == "iss" {
            continue; // only when an issuer is configured
        }
        assert!(c.get(claim).is_some(), "{claim} missing: {c}");
    }
    assert_eq!(c["client_id"], "tokend");
    assert_eq!(c["aud"], "api.example");
}

#[tokio::test]
async fn a_jwt_whose_typ_does_not_match_its_use_is_refused() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    // The same claims, signed by the same key: only the typ differs.
    assert_eq!(
        app.me(&resigned_with_typ(&app, &access, "at+jwt"))
            .await
            .status(),
        StatusCode::OK
    );
    for typ in ["JWT", "refresh+jwt"] {
        let token = resigned_with_typ(&app, &access, typ);
        assert_eq!(
            app.me(&token).await.status(),
            StatusCode::UNAUTHORIZED,
            "{typ}"
        );
    }
    for typ in ["at+jwt", "JWT"] {
        let token = resigned_with_typ(&app, &refresh, typ);
        assert_eq!(
            app.refresh(&token).await.status(),
            StatusCode::UNAUTHORIZED,
            "{typ}"
        );
    }
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn introspection_says_the_oauth_token_type_and_tokends_kind_apart() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let ask = |token: String| {
        app.call(
            Method::POST,
            "/api/v1/oauth/introspect",
            &admin,
            Some(json!({ "token": token })),
        )
    };
    let body: Value = ask(access.clone()).await.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["tokend_kind"], "access");
    assert_eq!(body["client_id"], "tokend");
    let body: Value = ask(refresh).await.json().await.unwrap();
    assert_eq!(body["active"], true, "an administrator is told: {body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["tokend_kind"], "refresh");
}

#[tokio::test]
async fn a_resource_server_is_never_told_a_refresh_token_is_active() {
    let app = TestApp::spawn().await;
    let client = add_client(&app, "api", true, false).await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body = introspect(&app, &client, &access).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        introspect(&app, &client, &refresh).await,
        json!({"active": false})
    );
}
