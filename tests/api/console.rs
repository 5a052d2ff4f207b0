//! The web console at `/ui/`: embedded files, served with a strict policy;
//! and the signing keys it shows administrators.

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let resp = reqwest::get(app.url(path)).await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
}

#[tokio::test]
async fn the_console_has_no_inline_script_or_style_and_loads_small() {
    let app = TestApp::spawn().await;
    let html = reqwest::get(app.url("/ui/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<style"), "inline style");
    assert!(!html.contains(" style="), "inline style attribute");
    for script in html.split("<script").skip(1) {
        assert!(script.contains("src="), "inline script: {script}");
    }
    let mut total = html.len();
    for file in [
        "style.css",
        "app.js",
        "api.js",
        "dom.js",
        "pages.js",
        "admin.js",
    ] {
        let body = reqwest::get(app.url(&format!("/ui/{file}")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains("innerHTML"), "{file} writes markup");
        total += body.len();
    }
    assert!(total < 150 * 1024, "first load is {total} bytes");
}

#[tokio::test]
async fn ui_without_a_slash_redirects_and_unknown_files_are_json_404() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(app.url("/ui")).send().await.unwrap();
    assert!(resp.status().is_redirection());
    assert_eq!(resp.headers()["location"], "/ui/");
    let resp = client.get(app.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    let resp = client.post(app.url("/ui/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn administrators_see_the_key_ring_and_others_do_not() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let resp = app.call(Method::GET, "/api/v1/keys", &admin, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let keys: Value = resp.json().await.unwrap();
    let keys = keys.as_array().expect("a list");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["signing"], true);
    assert!(keys[0]["kid"].as_str().is_some_and(|k| !k.is_empty()));
    let text = keys[0].to_string();
    assert!(!text.contains("\"d\""), "no private part: {text}");

    app.create_user("bob", "bob-password", false).await;
    let (bob, _) = app.pair("bob", "bob-password").await;
    let resp = app.call(Method::GET, "/api/v1/keys", &bob, None).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
