//! Point 5: registered OAuth clients, by the CLI and the admin API, and
//! their authentication to introspection and revocation.

use reqwest::{Method, StatusCode, header::WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::{ADMIN_PASSWORD, Sandbox, TestApp, error_code};

use super::{Client, add_client, oauth_error, with_basic, with_post};

#[tokio::test]
async fn a_client_introspects_by_basic_and_by_post() {
    let app = TestApp::spawn().await;
    let client = add_client(&app, "api", true, false).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    for resp in [
        with_basic(&app, "introspect", &client, &access).await,
        with_post(&app, "introspect", &client, &access).await,
    ] {
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["username"], "admin");
    }
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client_with_a_basic_challenge() {
    let app = TestApp::spawn().await;
    let client = add_client(&app, "api", true, true).await;
    let wrong = Client {
        id: client.id.clone(),
        secret: format!("{}x", client.secret),
    };
    let unknown = Client {
        id: "tkc_nobody".into(),
        secret: client.secret.clone(),
    };
    for endpoint in ["introspect", "revoke"] {
        for who in [&wrong, &unknown] {
            let resp = with_basic(&app, endpoint, who, "t").await;
            assert_eq!(
                resp.headers()[WWW_AUTHENTICATE].to_str().unwrap(),
                "Basic realm=\"tokend\""
            );
            let answer = oauth_error(resp).await;
            assert_eq!(
                answer,
                (401, "invalid_client".into(), "invalid_client".into())
            );
            let answer = oauth_error(with_post(&app, endpoint, who, "t").await).await;
            assert_eq!(
                answer,
                (401, "invalid_client".into(), "invalid_client".into())
            );
        }
    }
    // No credentials at all: introspection needs some.
    let resp = app
        .client
        .post(app.url("/api/v1/oauth/introspect"))
        .form(&[("token", "t")])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(resp).await.2, "invalid_client");
}

#[tokio::test]
async fn a_client_needs_the_permission_for_what_it_asks() {
    let app = TestApp::spawn().await;
    let none = add_client(&app, "nothing", false, false).await;
    for endpoint in ["introspect", "revoke"] {
        let answer = oauth_error(with_basic(&app, endpoint, &none, "t").await).await;
        assert_eq!(answer.0, 403, "{endpoint}");
        assert_eq!(answer.2, "unauthorized_client");
    }
    let revoker = add_client(&app, "revoker", false, true).await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = with_post(&app, "revoke", &revoker, &access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn credentials_sent_two_ways_are_an_invalid_request() {
    let app = TestApp::spawn().await;
    let client = add_client(&app, "api", true, false).await;
    let resp = app
        .client
        .post(app.url("/api/v1/oauth/introspect"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("token", "t"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(resp).await,
        (400, "invalid_request".into(), "invalid_request".into())
    );
}

#[tokio::test]
async fn a_text_body_to_revoke_is_told_to_send_a_form() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/v1/oauth/revoke"))
        .header("content-type", "text/plain")
        .body("token=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["code"], "unsupported_media_type");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("application/x-www-form-urlencoded"),
        "{body}"
    );
}

#[tokio::test]
async fn administrators_list_and_delete_clients_whose_secret_is_kept_as_a_digest() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let client = add_client(&app, "api", true, false).await;
    let list: Value = app
        .call(Method::GET, "/api/v1/clients", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "api");
    assert_eq!(list[0]["client_id"], client.id.as_str());
    assert_eq!(list[0]["introspect"], true);
    assert!(!list.to_string().contains(&client.secret));
    let rows = app.state.clients.list().await.unwrap();
    let digest: String = Sha256::digest(client.secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(rows[0].secret_digest, digest);

    let again = app
        .call(
            Method::POST,
            "/api/v1/clients",
            &admin,
            Some(json!({"name": "api"})),
        )
        .await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::CONFLICT, "conflict".into())
    );

    let resp = app
        .call(Method::DELETE, "/api/v1/clients/api", &admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let answer = oauth_error(with_basic(&app, "introspect", &client, "t").await).await;
    assert_eq!(answer.0, 401);
    let resp = app
        .call(Method::DELETE, "/api/v1/clients/api", &admin, None)
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_administrators_manage_clients() {
    let app = TestApp::spawn().await;
    app.create_user("ann", "ann-password", false).await;
    let (ann, _) = app.pair("ann", "ann-password").await;
    let resp = app
        .call(
            Method::POST,
            "/api/v1/clients",
            &ann,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app.call(Method::GET, "/api/v1/clients", &ann, None).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_cli_adds_lists_and_deletes_clients() {
    let sandbox = Sandbox::new().await;
    let env = [("TOKEND_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let (code, stdout, stderr) = sandbox.run(&["client", "add", "api", "--introspect"], &env, "");
    assert_eq!(code, 0, "{stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let client = Client {
        id: field("client_id"),
        secret: field("client_secret"),
    };
    let (code, list, _) = sandbox.run(&["client", "list"], &env, "");
    assert_eq!(code, 0);
    assert!(
        list.contains(&client.id) && list.contains("introspect"),
        "{list}"
    );
    assert!(!list.contains(&client.secret));

    let (server, base, _) = sandbox.serve(&env);
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/api/v1/token/obtain"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body: Value = http
        .post(format!("{base}/api/v1/oauth/introspect"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("token", token["access"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true, "{body}");
    drop(server);

    let (code, _, stderr) = sandbox.run(&["client", "delete", "api"], &env, "");
    assert_eq!(code, 0, "{stderr}");
    let (_, list, _) = sandbox.run(&["client", "list"], &env, "");
    assert!(!list.contains(&client.id));
}
