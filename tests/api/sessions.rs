use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp, error_code};

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let resp = app.get_with(&format!("/api/v1/tokens{query}"), token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn my_tokens_are_listed_newest_first_with_their_device() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let page = list(&app, &access, "").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(page["next_cursor"].is_null());
    // The access token was issued with its refresh token; ids break the tie.
    for item in items {
        for field in [
            "id",
            "jti",
            "token_type",
            "issued_at",
            "expires_at",
            "device",
        ] {
            assert!(!item[field].is_null(), "{field} missing in {item}");
        }
        assert!(item.get("expired_at").is_some());
        assert_eq!(item["device"]["client_address"], "127.0.0.1");
    }
    let types: Vec<&str> = items
        .iter()
        .map(|i| i["token_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["access", "refresh"]);
}

#[tokio::test]
async fn listing_shows_only_the_callers_tokens() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    app.pair("admin", ADMIN_PASSWORD).await;
    let (bob, _) = app.pair("bob", "bob-password").await;
    let page = list(&app, &bob, "?state=all").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn state_filters_active_and_expired() {
    let app = TestApp::spawn().await;
    let (a1, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let (a2, _) = app.pair("admin", ADMIN_PASSWORD).await;
    app.expire(&a1, false).await;
    assert_eq!(
        list(&app, &a2, "?state=active").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let expired = list(&app, &a2, "?state=expired").await;
    let items = expired["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(!items[0]["expired_at"].is_null());
    assert_eq!(
        list(&app, &a2, "?state=all").await["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let resp = app.get_with("/api/v1/tokens?state=bogus", &a2).await;
    assert_eq!(error_code(resp).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn pagination_walks_every_token_once_in_order() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for _ in 0..11 {
        assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
    }
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    // 2 + 11 + 2 = 15 tokens, pages of 4.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=4&cursor={c}"),
            None => "?limit=4".into(),
        };
        let page = list(&app, &access, &query).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["issued_at"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 15);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| {
        let ta = chrono::DateTime::parse_from_rfc3339(&a.0).unwrap();
        let tb = chrono::DateTime::parse_from_rfc3339(&b.0).unwrap();
        tb.cmp(&ta).then(b.1.cmp(&a.1))
    });
    assert_eq!(seen, sorted, "newest first, then by id");
    sorted.dedup();
    assert_eq!(sorted.len(), 15, "no token twice");
}

#[tokio::test]
async fn limit_is_bounded_and_a_bad_cursor_is_a_400() {
    let app = TestApp::spawn().await;
    let access = app.admin_token().await;
    for query in [
        "?limit=0",
        "?limit=501",
        "?cursor=not-a-cursor",
        "?cursor=-1.00000000-0000-0000-0000-000000000000",
        "?cursor=9234567890123456789.00000000-0000-0000-0000-000000000000",
        "?cursor=12345678901234567890.00000000-0000-0000-0000-000000000000",
        "?cursor=12.0000000000000000000000000000000",
    ] {
        let resp = app
            .get_with(&format!("/api/v1/tokens{query}"), &access)
            .await;
        assert_eq!(error_code(resp).await.0, StatusCode::BAD_REQUEST, "{query}");
    }
}

/// The spec gives the cursor's pattern, and every text it allows is read:
/// a client (or schemathesis) following the spec never gets a 400 for it.
#[tokio::test]
async fn every_cursor_the_spec_allows_is_read() {
    let app = TestApp::spawn().await;
    let access = app.admin_token().await;
    app.pair("admin", ADMIN_PASSWORD).await;
    let spec: Value = app.get_json("/openapi.json").await;
    for path in ["/api/v1/tokens", "/api/v1/registry/tokens"] {
        let cursor = spec["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "cursor")
            .unwrap();
        assert_eq!(
            cursor["schema"]["pattern"],
            tokend::store::CURSOR_PATTERN,
            "{path}"
        );
    }
    let page = list(&app, &access, "?limit=1").await;
    let next = page["next_cursor"].as_str().unwrap();
    let (nanos, id) = next.split_once('.').unwrap();
    assert!(
        nanos.len() <= 19 && nanos.bytes().all(|b| b.is_ascii_digit()),
        "{next}"
    );
    assert_eq!(id.len(), 36, "{next}");
    for cursor in [
        "",
        next,
        "0.00000000-0000-0000-0000-000000000000",
        "999999999999999999.FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "8999999999999999999.00000000-0000-0000-0000-000000000000",
    ] {
        let page = list(&app, &access, &format!("?cursor={cursor}")).await;
        assert!(page["items"].is_array(), "{cursor}");
    }
    let first = list(
        &app,
        &access,
        "?cursor=8999999999999999999.ffffffff-ffff-ffff-ffff-ffffffffffff",
    )
    .await;
    assert_eq!(
        first["items"].as_array().unwrap().len(),
        4,
        "a cursor past every token is the first page"
    );
}

#[tokio::test]
async fn i_can_expire_one_of_my_tokens_by_id() {
    let app = TestApp::spawn().await;
    let (a1, r1) = app.pair("admin", ADMIN_PASSWORD).await;
    let (a2, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let page = list(&app, &a2, "?state=all").await;
    // The oldest pair's refresh token is the last item.
    let items = page["items"].as_array().unwrap();
    let oldest_refresh = items.last().unwrap()["id"].as_str().unwrap().to_owned();
    let resp = app
        .call(
            Method::POST,
            &format!("/api/v1/tokens/{oldest_refresh}/expire"),
            &a2,
            Some(json!({"affect_tree": true})),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 2}));
    assert_eq!(app.me(&a1).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.refresh(&r1).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(&a2).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_users_token_id_is_404_not_403() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let admin = app.admin_token().await;
    let (bob, _) = app.pair("bob", "bob-password").await;
    let page = list(&app, &admin, "").await;
    let admin_token_id = page["items"][0]["id"].as_str().unwrap().to_owned();
    for id in [
        admin_token_id.as_str(),
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let resp = app
            .call(
                Method::POST,
                &format!("/api/v1/tokens/{id}/expire"),
                &bob,
                Some(json!({"affect_tree": false})),
            )
            .await;
        let (status, code) = error_code(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{id}"
        );
    }
    assert_eq!(app.me(&admin).await.status(), StatusCode::OK);
}
