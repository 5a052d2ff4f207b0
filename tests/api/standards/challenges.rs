//! Point 2: every 401 of a Bearer route carries RFC 6750's challenge.

use reqwest::{StatusCode, header::WWW_AUTHENTICATE};

use common::TestApp;

fn challenge(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_401_without_a_token_challenges_for_a_bearer_token() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/api-token",
        "/api/v1/users",
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            challenge(&resp).as_deref(),
            Some("Bearer realm=\"tokend\""),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_refused_token_gets_error_invalid_token() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.pair("admin", common::ADMIN_PASSWORD).await;
    for token in ["garbage", refresh.as_str()] {
        let resp = app.me(token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&resp).as_deref(),
            Some("Bearer realm=\"tokend\", error=\"invalid_token\"")
        );
    }
}

#[tokio::test]
async fn answers_that_are_not_401_carry_no_challenge() {
    let app = TestApp::spawn().await;
    let access = app.admin_token().await;
    let resp = app.me(&access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(challenge(&resp).is_none());
    // A login failure is not a Bearer route's.
    let resp = app.obtain("admin", "wrong").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).is_none());
}
