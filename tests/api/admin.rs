use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{TestApp, error_code};

async fn create(app: &TestApp, admin: &str, name: &str, password: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        "/api/v1/users",
        admin,
        Some(json!({"username": name, "password": password})),
    )
    .await
}

async fn assert_all_refused(app: &TestApp, access: &str, refresh: &str) {
    assert_eq!(app.me(access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.verify(access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.verify(refresh).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.expire(access, true).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn admin_creates_a_user_who_can_then_log_in() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let resp = create(&app, &admin, "alice", "alice-password").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["is_admin"], false);
    assert_eq!(user["is_active"], true);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    app.pair("alice", "alice-password").await;
}

#[tokio::test]
async fn creating_an_existing_username_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    create(&app, &admin, "alice", "pw-one").await;
    let (status, code) = error_code(create(&app, &admin, "alice", "pw-two").await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
}

#[tokio::test]
async fn invalid_username_is_a_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (status, code) = error_code(create(&app, &admin, "no spaces please", "pw").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn non_admins_get_403_on_every_admin_route() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let (bob, _) = app.pair("bob", "bob-password").await;
    let routes = [
        (
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "x", "password": "y"})),
        ),
        (Method::GET, "/api/v1/users", None),
        (
            Method::PATCH,
            "/api/v1/users/admin",
            Some(json!({"is_active": false})),
        ),
        (Method::DELETE, "/api/v1/users/admin", None),
        (
            Method::POST,
            "/api/v1/users/admin/password",
            Some(json!({"password": "z"})),
        ),
        (Method::POST, "/api/v1/users/admin/tokens/expire", None),
        (Method::GET, "/api/v1/registry/tokens", None),
        (Method::POST, "/api/v1/registry/archive", Some(json!({}))),
        (
            Method::POST,
            "/api/v1/oauth/introspect",
            Some(json!({"token": "x"})),
        ),
    ];
    for (method, path, body) in routes {
        let (status, code) = error_code(app.call(method.clone(), path, &bob, body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{method} {path}"
        );
    }
    // The admin is untouched.
    app.admin_token().await;
}

#[tokio::test]
async fn admin_lists_users() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let admin = app.admin_token().await;
    let users: Value = app
        .call(Method::GET, "/api/v1/users", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bob"]);
}

#[tokio::test]
async fn expiring_all_of_a_users_tokens_refuses_them_everywhere() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let (a1, r1) = app.pair("bob", "bob-password").await;
    let (a2, r2) = app.pair("bob", "bob-password").await;
    let admin = app.admin_token().await;
    let resp = app
        .call(
            Method::POST,
            "/api/v1/users/bob/tokens/expire",
            &admin,
            None,
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 4}));
    assert_all_refused(&app, &a1, &r1).await;
    assert_all_refused(&app, &a2, &r2).await;
    // Bob can log in again; the admin's tokens are untouched.
    app.pair("bob", "bob-password").await;
    assert_eq!(app.me(&admin).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleting_a_user_refuses_their_tokens_and_a_new_namesake_inherits_none() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let (access, refresh) = app.pair("bob", "bob-password").await;
    let admin = app.admin_token().await;
    let resp = app
        .call(Method::DELETE, "/api/v1/users/bob", &admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_all_refused(&app, &access, &refresh).await;
    assert_eq!(
        create(&app, &admin, "bob", "bob-password").await.status(),
        StatusCode::CREATED
    );
    assert_all_refused(&app, &access, &refresh).await;
    let resp = app
        .call(Method::DELETE, "/api/v1/users/bob2", &admin, None)
        .await;
    assert_eq!(error_code(resp).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn changing_a_password_refuses_the_old_tokens_and_the_old_password() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let (access, refresh) = app.pair("bob", "bob-password").await;
    let admin = app.admin_token().await;
    let resp = app
        .call(
            Method::POST,
            "/api/v1/users/bob/password",
            &admin,
            Some(json!({"password": "new-password"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_all_refused(&app, &access, &refresh).await;
    assert_eq!(
        app.obtain("bob", "bob-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.pair("bob", "new-password").await;
}

#[tokio::test]
async fn a_deactivated_user_is_refused_until_reactivated() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let (access, refresh) = app.pair("bob", "bob-password").await;
    let admin = app.admin_token().await;
    let patch = |active: bool| {
        app.call(
            Method::PATCH,
            "/api/v1/users/bob",
            &admin,
            Some(json!({"is_active": active})),
        )
    };
    let user: Value = patch(false).await.json().await.unwrap();
    assert_eq!(user["is_active"], false);
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, code) = error_code(app.obtain("bob", "bob-password").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "no_active_account")
    );

    assert_eq!(patch(true).await.status(), StatusCode::OK);
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_can_promote_a_user() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let admin = app.admin_token().await;
    let resp = app
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            &admin,
            Some(json!({"is_admin": true})),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["is_admin"], true);
    let (bob, _) = app.pair("bob", "bob-password").await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/users", &bob, None)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn admin_browses_the_registry_by_user_and_state() {
    let app = TestApp::spawn().await;
    app.create_user("bob", "bob-password", false).await;
    let (bob_access, _) = app.pair("bob", "bob-password").await;
    app.expire(&bob_access, false).await;
    let admin = app.admin_token().await;
    let page: Value = app
        .call(
            Method::GET,
            "/api/v1/registry/tokens?username=bob&state=all",
            &admin,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let page: Value = app
        .call(
            Method::GET,
            "/api/v1/registry/tokens?username=bob&state=expired",
            &admin,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["token_type"], "access");
    let page: Value = app
        .call(Method::GET, "/api/v1/registry/tokens", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    // Active tokens of everybody: bob's refresh token and the admin's pair.
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
}

/// The spec documents the flags as nullable: `null` means the default on
/// creation and "leave it" on a change, and the spec says so.
#[tokio::test]
async fn null_flags_take_their_defaults_and_the_spec_says_they_may() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let resp = app
        .call(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"username": "nora", "password": "nora-password", "is_admin": null, "is_active": null})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(
        (&user["is_admin"], &user["is_active"]),
        (&json!(false), &json!(true))
    );
    let user: Value = app
        .call(
            Method::PATCH,
            "/api/v1/users/nora",
            &admin,
            Some(json!({"is_active": null, "is_admin": true})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&user["is_admin"], &user["is_active"]),
        (&json!(true), &json!(true))
    );

    let spec: Value = app.get_json("/openapi.json").await;
    for (schema, field) in [
        ("CreateUser", "is_admin"),
        ("CreateUser", "is_active"),
        ("PatchUser", "is_active"),
        ("PatchUser", "is_admin"),
    ] {
        assert_eq!(
            spec["components"]["schemas"][schema]["properties"][field]["nullable"], true,
            "{schema}.{field}"
        );
    }
}
