//! `GET|POST /token`: the container registry token server.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokend::{
    config::{Dur, RegistryRule},
    container::RegistryClaims,
};

use crate::helpers::{ADMIN_PASSWORD, TestApp, claims, error_code, header, row};

const SERVICE: &str = "tokend";

/// `GET /token` with these query pairs and, optionally, Basic credentials.
async fn get_token(app: &TestApp, query: &[(&str, &str)], creds: Option<(&str, &str)>) -> Response {
    let mut req = app.client.get(app.url("/token")).query(query);
    if let Some((user, password)) = creds {
        req = req.basic_auth(user, Some(password));
    }
    req.send().await.expect("request")
}

/// `POST /token` with a form.
async fn post_token(app: &TestApp, form: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .expect("request")
}

async fn json_ok(resp: Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The `error` and `code` of an OAuth2 error answer.
async fn oauth_error(resp: Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error body is JSON");
    assert!(body["detail"].is_string(), "error without detail: {body}");
    (
        status,
        body["code"].as_str().expect("code").to_owned(),
        body["error"].as_str().expect("error").to_owned(),
    )
}

async fn with_alice_and_bob(app: &TestApp) {
    app.create_user("alice", "alice-password", false).await;
    app.create_user("bob", "bob-password", false).await;
}

async fn user_id(app: &TestApp, name: &str) -> uuid::Uuid {
    app.state.users.find(name).await.unwrap().expect("user").id
}

// --- GET: the token.md flow ---------------------------------------------

#[tokio::test]
async fn get_token_grants_a_user_their_own_repository() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:alice/hello:pull,push"),
            ],
            Some(("alice", "alice-password")),
        )
        .await,
    )
    .await;
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("refresh_token").is_none());
    let issued_at = body["issued_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(issued_at).expect("issued_at is RFC 3339");
    let c = claims(token);
    assert_eq!(c["iss"], "tokend");
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], SERVICE);
    assert_eq!(
        c["access"],
        json!([{"type": "repository", "name": "alice/hello", "actions": ["pull", "push"]}])
    );
}

#[tokio::test]
async fn registry_token_has_the_claims_and_header_a_registry_checks() {
    let app = TestApp::spawn().await;
    let body = json_ok(
        get_token(
            &app,
            &[("service", SERVICE), ("scope", "repository:a/b:pull")],
            Some(("admin", ADMIN_PASSWORD)),
        )
        .await,
    )
    .await;
    let token = body["token"].as_str().unwrap();
    let c = claims(token);
    for claim in ["iss", "sub", "aud", "jti"] {
        assert!(c[claim].is_string(), "{claim} is missing: {c}");
    }
    for claim in ["exp", "nbf", "iat"] {
        assert!(c[claim].is_i64(), "{claim} is missing: {c}");
    }
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert!(c["nbf"].as_i64().unwrap() <= c["iat"].as_i64().unwrap());
    let h = header(token);
    assert_eq!(h["alg"], "ES256");
    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(h["kid"], jwks["keys"][0]["kid"]);
    // The signature checks out with tokend's own key.
    let verified: RegistryClaims = app
        .state
        .registry
        .keys()
        .verify(token, Some(SERVICE))
        .unwrap();
    assert_eq!(verified.sub, "admin");
}

#[tokio::test]
async fn anonymous_get_gets_a_token_with_an_empty_subject_and_no_access() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:alice/hello:pull"),
            ],
            None,
        )
        .await,
    )
    .await;
    let c = claims(body["token"].as_str().unwrap());
    assert_eq!(c["sub"], "");
    assert_eq!(c["access"], json!([]));
}

#[tokio::test]
async fn anonymous_callers_get_no_refresh_token_even_when_asking() {
    let app = TestApp::spawn().await;
    let body = json_ok(
        get_token(
            &app,
            &[("service", SERVICE), ("offline_token", "true")],
            None,
        )
        .await,
    )
    .await;
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_rule_can_grant_anonymous_pull() {
    let app = TestApp::spawn_with(|c| {
        c.registry.rules.insert(
            0,
            RegistryRule {
                account: "".into(),
                resource_type: "repository".into(),
                repository: "alice/hello".into(),
                actions: vec!["pull".into()],
            },
        )
    })
    .await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:alice/hello:pull,push"),
            ],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "alice/hello", "actions": ["pull"]}])
    );
}

#[tokio::test]
async fn bad_basic_credentials_get_401_with_a_basic_challenge() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    for creds in [("alice", "wrong"), ("nobody", "wrong")] {
        let resp = get_token(&app, &[("service", SERVICE)], Some(creds)).await;
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"tokend\"");
        assert_eq!(
            error_code(resp).await,
            (StatusCode::UNAUTHORIZED, "no_active_account".into())
        );
    }
}

#[tokio::test]
async fn an_authorization_header_that_is_not_basic_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = app
        .client
        .get(app.url("/token"))
        .query(&[("service", SERVICE)])
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (StatusCode::UNAUTHORIZED, "no_active_account".into())
    );
}

#[tokio::test]
async fn an_inactive_user_is_refused() {
    let app = TestApp::spawn().await;
    app.state
        .users
        .create(tokend::users::NewUser {
            username: "carol".into(),
            password: tokend::config::Secret::new("carol-password"),
            is_admin: false,
            is_active: false,
        })
        .await
        .unwrap();
    let resp = get_token(
        &app,
        &[("service", SERVICE)],
        Some(("carol", "carol-password")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_or_missing_service_is_a_bad_request() {
    let app = TestApp::spawn().await;
    for query in [
        &[("service", "elsewhere")][..],
        &[("scope", "repository:a/b:pull")][..],
    ] {
        let resp = get_token(&app, query, Some(("admin", ADMIN_PASSWORD))).await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
    }
}

#[tokio::test]
async fn tokend_answers_for_every_configured_service() {
    let app = TestApp::spawn_with(|c| c.registry_service = vec!["one".into(), "two".into()]).await;
    for service in ["one", "two"] {
        let body = json_ok(get_token(&app, &[("service", service)], None).await).await;
        assert_eq!(claims(body["token"].as_str().unwrap())["aud"], service);
    }
    let resp = get_token(&app, &[("service", SERVICE)], None).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_malformed_scope_is_a_bad_request() {
    let app = TestApp::spawn().await;
    for scope in [
        "repository:alice/hello",
        "repository:alice/Hello:pull",
        "nonsense",
    ] {
        let resp = get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:admin/ok:pull"),
                ("scope", scope),
            ],
            Some(("admin", ADMIN_PASSWORD)),
        )
        .await;
        assert_eq!(
            error_code(resp).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{scope}"
        );
    }
}

#[tokio::test]
async fn an_empty_scope_is_ignored() {
    let app = TestApp::spawn().await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", ""),
                ("scope", "repository:admin/x:pull"),
            ],
            Some(("admin", ADMIN_PASSWORD)),
        )
        .await,
    )
    .await;
    let access = &claims(body["token"].as_str().unwrap())["access"];
    assert_eq!(access.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn several_scopes_grant_only_what_the_rules_allow() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:alice/hello:pull,push"),
                ("scope", "repository:bob/app:pull"),
                ("scope", "registry:catalog:*"),
                ("scope", "repository:alice/team/tool:delete"),
            ],
            Some(("alice", "alice-password")),
        )
        .await,
    )
    .await;
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([
            {"type": "repository", "name": "alice/hello", "actions": ["pull", "push"]},
            {"type": "repository", "name": "alice/team/tool", "actions": ["delete"]},
        ])
    );
}

#[tokio::test]
async fn administrators_get_every_scope_they_ask_for() {
    let app = TestApp::spawn().await;
    let body = json_ok(
        get_token(
            &app,
            &[
                ("service", SERVICE),
                ("scope", "repository:localhost:5000/alice/hello:pull,push"),
                ("scope", "repository(plugin):vendor/plug:pull"),
                ("scope", "registry:catalog:*"),
            ],
            Some(("admin", ADMIN_PASSWORD)),
        )
        .await,
    )
    .await;
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([
            {"type": "repository", "name": "localhost:5000/alice/hello", "actions": ["pull", "push"]},
            {"type": "repository", "class": "plugin", "name": "vendor/plug", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );
}

#[tokio::test]
async fn an_account_other_than_the_credentials_is_a_bad_request() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let ok = get_token(
        &app,
        &[("service", SERVICE), ("account", "alice")],
        Some(("alice", "alice-password")),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let resp = get_token(
        &app,
        &[("service", SERVICE), ("account", "bob")],
        Some(("alice", "alice-password")),
    )
    .await;
    assert_eq!(
        error_code(resp).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn the_token_lifetime_is_configurable() {
    let app = TestApp::spawn_with(|c| {
        c.registry_token_lifetime = Dur(std::time::Duration::from_secs(90))
    })
    .await;
    let body = json_ok(get_token(&app, &[("service", SERVICE)], None).await).await;
    assert_eq!(body["expires_in"], 90);
    let c = claims(body["token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 90);
}

#[tokio::test]
async fn the_configured_issuer_signs_registry_tokens() {
    let app = TestApp::spawn_with(|c| c.issuer = Some("https://auth.example".into())).await;
    let body = json_ok(get_token(&app, &[("service", SERVICE)], None).await).await;
    assert_eq!(
        claims(body["token"].as_str().unwrap())["iss"],
        "https://auth.example"
    );
}

// --- The registry of issued tokens ----------------------------------------

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
    let r = row(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(r.token_type, "registry");
    assert_eq!(r.user_id, Some(user_id(&app, "alice").await));
    assert_eq!(r.parent_id, None);
    let lifetime = r.expires_at.unwrap() - r.issued_at;
    assert_eq!(lifetime.num_seconds(), 300);
}

#[tokio::test]
async fn anonymous_tokens_are_registered_without_a_user() {
    let app = TestApp::spawn().await;
    let body = json_ok(get_token(&app, &[("service", SERVICE)], None).await).await;
    let r = row(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(r.token_type, "registry");
    assert_eq!(r.user_id, None);
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
    let refresh_row = row(&app, refresh).await;
    let token_row = row(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(token_row.parent_id, Some(refresh_row.id));
    assert_eq!(refresh_row.user_id, Some(user_id(&app, "alice").await));
}

// --- POST: the oauth.md flow -----------------------------------------------

#[tokio::test]
async fn password_grant_answers_the_oauth2_fields() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let body = json_ok(
        post_token(
            &app,
            &[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "docker"),
                ("username", "alice"),
                ("password", "alice-password"),
                (
                    "scope",
                    "repository:alice/hello:pull,push repository:bob/app:pull",
                ),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(body["scope"], "repository:alice/hello:pull,push");
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].is_string());
    assert!(body.get("refresh_token").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["access"][0]["name"], "alice/hello");
    assert_eq!(
        row(&app, body["access_token"].as_str().unwrap())
            .await
            .token_type,
        "registry"
    );
}

#[tokio::test]
async fn password_grant_with_offline_access_returns_a_refresh_token() {
    let app = TestApp::spawn().await;
    let body = json_ok(
        post_token(
            &app,
            &[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "docker"),
                ("access_type", "offline"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await,
    )
    .await;
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(claims(refresh)["aud"], SERVICE);
    assert_eq!(body["scope"], "");
}

/// A refresh token of `service` for alice, from the password grant.
async fn offline_token(app: &TestApp, service: &str) -> String {
    let body = json_ok(
        post_token(
            app,
            &[
                ("grant_type", "password"),
                ("service", service),
                ("client_id", "docker"),
                ("access_type", "offline"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await,
    )
    .await;
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

async fn refresh_grant(app: &TestApp, refresh: &str, service: &str, scope: &str) -> Response {
    post_token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("service", service),
            ("client_id", "containers/image"),
            ("refresh_token", refresh),
            ("scope", scope),
        ],
    )
    .await
}

#[tokio::test]
async fn refresh_grant_issues_a_token_child_of_the_refresh_token() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    let body =
        json_ok(refresh_grant(&app, &refresh, SERVICE, "repository:alice/hello:pull").await).await;
    assert_eq!(body["scope"], "repository:alice/hello:pull");
    assert!(
        body.get("refresh_token").is_none(),
        "no rotation, no new refresh token"
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["sub"], "alice");
    let token_row = row(&app, token).await;
    assert_eq!(token_row.token_type, "registry");
    assert_eq!(token_row.parent_id, Some(row(&app, &refresh).await.id));
    assert_eq!(token_row.user_id, Some(user_id(&app, "alice").await));
}

#[tokio::test]
async fn a_refresh_token_works_for_its_own_service_only() {
    let app = TestApp::spawn_with(|c| c.registry_service = vec!["one".into(), "two".into()]).await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, "one").await;
    assert_eq!(
        refresh_grant(&app, &refresh, "one", "").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        oauth_error(refresh_grant(&app, &refresh, "two", "").await).await,
        (
            StatusCode::UNAUTHORIZED,
            "token_not_valid".into(),
            "invalid_grant".into()
        )
    );
}

#[tokio::test]
async fn a_registry_refresh_token_is_refused_by_the_api_refresh() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    assert_eq!(
        error_code(app.refresh(&refresh).await).await,
        (StatusCode::UNAUTHORIZED, "token_not_valid".into())
    );
}

#[tokio::test]
async fn an_api_refresh_token_is_refused_by_the_refresh_grant() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for token in [&refresh, &access] {
        assert_eq!(
            oauth_error(refresh_grant(&app, token, SERVICE, "").await).await,
            (
                StatusCode::UNAUTHORIZED,
                "token_not_valid".into(),
                "invalid_grant".into()
            )
        );
    }
}

#[tokio::test]
async fn a_garbage_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(
        oauth_error(refresh_grant(&app, "not-a-token", SERVICE, "").await).await,
        (
            StatusCode::UNAUTHORIZED,
            "token_not_valid".into(),
            "invalid_grant".into()
        )
    );
}

#[tokio::test]
async fn an_offline_refresh_token_is_never_rotated_and_keeps_working() {
    // docker and containers/image keep the refresh token of their login as
    // their identity token and present it again for every token they need.
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    for _ in 0..3 {
        let body = json_ok(refresh_grant(&app, &refresh, SERVICE, "").await).await;
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    let token_row = row(&app, &refresh).await;
    assert!(token_row.rotated_at.is_none());
    assert!(token_row.expired_at.is_none());
}

#[tokio::test]
async fn a_deleted_user_can_no_longer_refresh() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let refresh = offline_token(&app, SERVICE).await;
    app.state.users.delete("alice").await.unwrap();
    assert_eq!(
        refresh_grant(&app, &refresh, SERVICE, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_password_in_the_password_grant_is_an_invalid_grant() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("username", "admin"),
            ("password", "wrong"),
        ],
    )
    .await;
    assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"tokend\"");
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::UNAUTHORIZED,
            "no_active_account".into(),
            "invalid_grant".into()
        )
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("service", SERVICE),
            ("client_id", "x"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "unsupported_grant_type".into()
        )
    );
}

#[tokio::test]
async fn a_missing_field_is_an_invalid_request() {
    let app = TestApp::spawn().await;
    let full = [
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "docker"),
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
    ];
    for left_out in ["grant_type", "service", "client_id", "username", "password"] {
        let form: Vec<_> = full
            .iter()
            .copied()
            .filter(|(k, _)| *k != left_out)
            .collect();
        assert_eq!(
            oauth_error(post_token(&app, &form).await).await,
            (
                StatusCode::BAD_REQUEST,
                "invalid_request".into(),
                "invalid_request".into()
            ),
            "without {left_out}"
        );
    }
    let resp = post_token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("service", SERVICE),
            ("client_id", "docker"),
        ],
    )
    .await;
    assert_eq!(oauth_error(resp).await.2, "invalid_request");
}

#[tokio::test]
async fn an_unknown_service_in_the_form_is_an_invalid_request() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", "elsewhere"),
            ("client_id", "docker"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "invalid_request".into()
        )
    );
}

#[tokio::test]
async fn a_malformed_scope_in_the_form_is_an_invalid_scope() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[
            ("grant_type", "password"),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("scope", "repository:a/b:pull repository:"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "invalid_scope".into()
        )
    );
}

#[tokio::test]
async fn a_json_body_is_an_unsupported_media_type_with_an_oauth_error() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/token"))
        .json(&json!({"grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into(),
            "invalid_request".into()
        )
    );
}

#[tokio::test]
async fn a_repeated_form_field_is_an_invalid_request() {
    let app = TestApp::spawn().await;
    let resp = post_token(
        &app,
        &[("grant_type", "password"), ("grant_type", "password")],
    )
    .await;
    assert_eq!(
        oauth_error(resp).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request".into(),
            "invalid_request".into()
        )
    );
}

// --- API tokens and the login throttle ----------------------------------

async fn api_token(app: &TestApp, user: &str, password: &str) -> String {
    let (access, _) = app.pair(user, password).await;
    let resp = app
        .call(reqwest::Method::POST, "/api/v1/api-token", &access, None)
        .await;
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_api_token_is_a_basic_password_with_its_owners_username() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let token = api_token(&app, "alice", "alice-password").await;
    let query = [("service", SERVICE), ("scope", "repository:alice/app:pull")];
    let body = json_ok(get_token(&app, &query, Some(("alice", &token))).await).await;
    assert_eq!(claims(body["token"].as_str().unwrap())["sub"], "alice");
    let form = [
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "tests"),
        ("username", "alice"),
        ("password", token.as_str()),
    ];
    json_ok(post_token(&app, &form).await).await;
}

#[tokio::test]
async fn an_api_token_with_another_username_is_refused() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let token = api_token(&app, "alice", "alice-password").await;
    let query = [("service", SERVICE), ("scope", "repository:alice/app:pull")];
    let resp = get_token(&app, &query, Some(("bob", &token))).await;
    assert!(resp.headers().contains_key("www-authenticate"));
    let (status, code) = error_code(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "no_active_account")
    );
}

#[tokio::test]
async fn a_revoked_api_token_is_refused_as_a_basic_password() {
    let app = TestApp::spawn().await;
    with_alice_and_bob(&app).await;
    let token = api_token(&app, "alice", "alice-password").await;
    app.state.accounts.revoke_api_token("alice").await.unwrap();
    let query = [("service", SERVICE)];
    let resp = get_token(&app, &query, Some(("alice", &token))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn basic_auth_failures_count_toward_the_login_throttle() {
    let app = TestApp::spawn_with(|c| c.login_max_failures = 2).await;
    with_alice_and_bob(&app).await;
    let query = [("service", SERVICE)];
    for _ in 0..2 {
        let resp = get_token(&app, &query, Some(("alice", "wrong"))).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = get_token(&app, &query, Some(("alice", "alice-password"))).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        app.obtain("alice", "alice-password").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
