//! `GET /token`: the token.md flow.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokend::{
    config::{ContainerRule, HumanDuration},
    jwt::ContainerClaims,
};

use common::{ADMIN_PASSWORD, TestApp, claims, error_code, header};

use super::{SERVICE, get_token, json_ok, with_alice_and_bob};

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
    let verified: ContainerClaims = app.state.keys.verify(token, Some(SERVICE)).unwrap();
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
        c.container.rules.insert(
            0,
            ContainerRule {
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
            password: tokend::secret::Secret::new("carol-password"),
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
    let app =
        TestApp::spawn_with(|c| c.container_services = vec!["one".into(), "two".into()]).await;
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
        c.container_token_lifetime = HumanDuration(std::time::Duration::from_secs(90))
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
