//! simplejwt's routes (issue 18.6): a frontend written for
//! djangorestframework-simplejwt changes only its base URL.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, TestApp};

async fn body(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(got, status, "{body}");
    body
}

/// A `multipart/form-data` body of text fields, as a browser's FormData.
async fn post_multipart(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Response {
    const BOUNDARY: &str = "----tokendTestBoundary7MA4YWxkTrZu0gW";
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    text.push_str(&format!("--{BOUNDARY}--\r\n"));
    app.client
        .post(app.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(text)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn simplejwt_routes_answer_simplejwt_5_shapes() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let pair = body(
        app.post_json(
            "/api/token/",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let keys: Vec<&String> = pair.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access", "refresh"], "exactly simplejwt's pair");
    let access = pair["access"].as_str().unwrap();
    let refresh = pair["refresh"].as_str().unwrap();

    let verified = body(
        app.post_json("/api/token/verify/", json!({"token": access}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(verified, json!({}));

    // Rotation on: a new access and a new refresh token, nothing else.
    let refreshed = body(
        app.post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
        StatusCode::OK,
    )
    .await;
    let keys: Vec<&String> = refreshed.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    let new_refresh = refreshed["refresh"].as_str().unwrap();
    let new_access = refreshed["access"].as_str().unwrap();

    // Blacklist: {} and the whole tree is gone.
    let blacklisted = body(
        app.post_json("/api/token/blacklist/", json!({"refresh": new_refresh}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(blacklisted, json!({}));
    assert_eq!(app.me(new_access).await.status(), StatusCode::UNAUTHORIZED);
    let refused = body(
        app.post_json("/api/token/refresh/", json!({"refresh": new_refresh}))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        refused,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
    );
}

#[tokio::test]
async fn without_rotation_refresh_answers_only_access() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let refreshed = body(
        app.post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
        StatusCode::OK,
    )
    .await;
    let keys: Vec<&String> = refreshed.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access"]);
}

#[tokio::test]
async fn simplejwt_routes_take_form_and_multipart_bodies() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/token/"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    let pair = body(resp, StatusCode::OK).await;
    let refresh = pair["refresh"].as_str().unwrap();

    let pair = body(
        post_multipart(
            &app,
            "/api/token/",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(pair["access"].is_string());
    let verified = body(
        post_multipart(&app, "/api/token/verify/", &[("token", refresh)]).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(verified, json!({}));
    let missing = body(
        post_multipart(&app, "/api/token/", &[("username", "admin")]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(missing, json!({"password": ["This field is required."]}));
    // Any other body is 415, in tokend's shape.
    let resp = app
        .client
        .post(app.url("/api/token/"))
        .header("content-type", "text/plain")
        .body("admin")
        .send()
        .await
        .unwrap();
    let refused = body(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!(refused["code"], "unsupported_media_type");
}

#[tokio::test]
async fn simplejwt_routes_answer_drf_field_errors() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"username": "admin"}),
            json!({"password": ["This field is required."]}),
        ),
        (
            json!({}),
            json!({"username": ["This field is required."], "password": ["This field is required."]}),
        ),
        (
            json!({"username": "", "password": null}),
            json!({"username": ["This field may not be blank."], "password": ["This field may not be null."]}),
        ),
        (
            json!(["admin"]),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ),
    ];
    for (sent, want) in cases {
        let got = body(
            app.post_json("/api/token/", sent.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(got, want, "for {sent}");
    }
    let got = body(
        app.post_json("/api/token/refresh/", json!({})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"refresh": ["This field is required."]}));
    // tokend's own routes keep {"detail","code"}.
    let own = body(
        app.post_json("/api/v1/token/obtain", json!({"username": "admin"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(own["code"], "invalid_request");
}

#[tokio::test]
async fn simplejwt_errors_are_detail_and_code() {
    let app = TestApp::spawn().await;
    let wrong = body(
        app.post_json(
            "/api/token/",
            json!({"username": "admin", "password": "wrong"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong["code"], "no_active_account");
    assert_eq!(
        wrong["detail"],
        "No active account found with the given credentials"
    );
    let bad = body(
        app.post_json("/api/token/verify/", json!({"token": "nope"}))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        bad,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
    );
    // Blacklist takes refresh tokens only, as simplejwt's RefreshToken does.
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let wrong_type = body(
        app.post_json("/api/token/blacklist/", json!({"refresh": access}))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong_type["code"], "token_not_valid");
    assert_eq!(app.verify(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn simplejwt_routes_are_gone_when_turned_off() {
    let app = TestApp::spawn_with(|c| c.simplejwt_routes = false).await;
    for path in [
        "/api/token/",
        "/api/token/refresh/",
        "/api/token/verify/",
        "/api/token/blacklist/",
    ] {
        let resp = app
            .post_json(
                path,
                json!({"username": "admin", "password": ADMIN_PASSWORD}),
            )
            .await;
        let got = body(resp, StatusCode::NOT_FOUND).await;
        assert_eq!(got["code"], "not_found", "{path}");
    }
    // tokend's own routes are unaffected.
    app.pair("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn expire_reads_form_booleans_as_django_does() {
    let app = TestApp::spawn().await;
    for (text, tree) in [
        ("true", true),
        ("True", true),
        ("1", true),
        ("false", false),
        ("False", false),
        ("0", false),
    ] {
        let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
        let resp = app
            .client
            .post(app.url("/api/v1/token/expire"))
            .form(&[("token", refresh.as_str()), ("affect_tree", text)])
            .send()
            .await
            .unwrap();
        body(resp, StatusCode::OK).await;
        // With the tree, the access token minted beside the refresh token goes too.
        let want = if tree {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(app.me(&access).await.status(), want, "affect_tree={text}");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/token/expire"))
        .form(&[("token", "x"), ("affect_tree", "yes")])
        .send()
        .await
        .unwrap();
    let refused = body(resp, StatusCode::BAD_REQUEST).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("not a boolean"),
        "{refused}"
    );
}

#[tokio::test]
async fn own_routes_name_a_missing_or_mistyped_field_in_plain_words() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"username": "admin"}),
            "The field `password` is required.",
        ),
        (
            json!({"username": "admin", "password": null}),
            "The field `password` must be a string, not null.",
        ),
        (
            json!({"username": 7, "password": "x"}),
            "The field `username` must be a string, not a number.",
        ),
    ];
    for (sent, want) in cases {
        let got = body(
            app.post_json("/api/v1/token/obtain", sent.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(got["detail"], want, "for {sent}");
        assert_eq!(got["code"], "invalid_request");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .form(&[("username", "admin")])
        .send()
        .await
        .unwrap();
    let got = body(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(got["detail"], "The field `password` is required.");
    let got = body(
        app.post_json(
            "/api/v1/token/expire",
            json!({"token": "x", "affect_tree": "yes"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got["detail"],
        "The field `affect_tree` must be true or false, not a string."
    );
}

/// DRF's `CharField` reads a number as its text, so a client of simplejwt
/// may send `{"username": 1234}`; the spec must say so, or a client (and
/// schemathesis) learns a contract the route does not keep.
#[tokio::test]
async fn simplejwt_reads_numbers_as_text_and_its_spec_says_so() {
    let app = TestApp::spawn().await;
    app.create_user("4815162342", "1618033988749", false).await;
    let pair = body(
        app.post_json(
            "/api/token/",
            json!({"username": 4815162342u64, "password": 1618033988749u64}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(pair["access"].is_string(), "{pair}");
    let refused = body(
        app.post_json("/api/token/", json!({"username": true, "password": "x"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(refused, json!({"username": ["Not a valid string."]}));

    let spec: Value = app.get_json("/openapi.json").await;
    let schemas = &spec["components"]["schemas"];
    for (route, schema, fields) in [
        (
            "/api/token/",
            "SimpleCredentials",
            &["username", "password"][..],
        ),
        ("/api/token/refresh/", "SimpleRefresh", &["refresh"]),
        ("/api/token/verify/", "SimpleVerify", &["token"]),
        ("/api/token/blacklist/", "SimpleRefresh", &["refresh"]),
    ] {
        let body = &spec["paths"][route]["post"]["requestBody"]["content"]["application/json"];
        assert_eq!(
            body["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{route}"
        );
        for field in fields {
            let kinds: Vec<&Value> = schemas[schema]["properties"][field]["anyOf"]
                .as_array()
                .unwrap_or_else(|| panic!("{schema}.{field} is string or number"))
                .iter()
                .map(|branch| &branch["type"])
                .collect();
            assert_eq!(kinds, ["string", "number"], "{schema}.{field}");
        }
    }
    // tokend's own obtain takes strings only, and says so.
    assert_eq!(
        schemas["Credentials"]["properties"]["username"]["type"],
        "string"
    );
    assert_eq!(
        app.post_json(
            "/api/v1/token/obtain",
            json!({"username": 4815162342u64, "password": "1618033988749"})
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
}
