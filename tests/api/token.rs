use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::{devices, tokens};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokend::config::Lifetime;

use crate::helpers::{ADMIN_PASSWORD, TestApp, claims, error_code, header, row};

async fn assert_refused(app: &TestApp, access: &str) {
    let (status, code) = error_code(app.me(access).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
}

#[tokio::test]
async fn obtain_returns_a_pair_with_simplejwt_fields_and_claims() {
    let app = TestApp::spawn().await;
    let resp = app.obtain("admin", ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["refresh_expires_in"], 86400);
    let access = claims(body["access"].as_str().unwrap());
    let refresh = claims(body["refresh"].as_str().unwrap());
    assert_eq!(access["token_type"], "access");
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["username"], "admin");
    assert_eq!(access["sub"], access["user_id"]);
    assert!(access["jti"].is_string() && access["iat"].is_i64());
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        300
    );
    assert_ne!(access["jti"], refresh["jti"]);
    let h = header(body["access"].as_str().unwrap());
    assert_eq!(h["alg"], "ES256");
    assert!(h["kid"].is_string());
}

#[tokio::test]
async fn obtain_accepts_form_encoded_credentials() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let wrong = app.obtain("admin", "not-the-password").await;
    let wrong_status = wrong.status();
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = app.obtain("nobody", "not-the-password").await;
    assert_eq!(unknown.status(), wrong_status);
    assert_eq!(unknown.json::<Value>().await.unwrap(), wrong_body);
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_body["code"], "no_active_account");
}

#[tokio::test]
async fn access_token_authenticates_me() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = app.me(&access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["auth"], "jwt");
}

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
async fn refresh_without_rotation_keeps_the_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    for _ in 0..2 {
        let resp = app.refresh(&refresh).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("refresh").is_none());
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 300);
        let access = body["access"].as_str().unwrap();
        assert_eq!(app.me(access).await.status(), StatusCode::OK);
        assert_eq!(
            row(&app, access).await.parent_id,
            Some(row(&app, &refresh).await.id)
        );
    }
}

#[tokio::test]
async fn refresh_with_rotation_hands_out_a_new_pair_and_uses_up_the_old() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let resp = app.refresh(&refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let new_refresh = body["refresh"].as_str().unwrap();
    let new_access = body["access"].as_str().unwrap();
    assert_eq!(body["refresh_expires_in"], 86400);
    let old_row = row(&app, &refresh).await;
    let new_refresh_row = row(&app, new_refresh).await;
    assert!(old_row.rotated_at.is_some());
    assert_eq!(new_refresh_row.parent_id, Some(old_row.id));
    assert_eq!(
        row(&app, new_access).await.parent_id,
        Some(new_refresh_row.id)
    );
    assert_eq!(app.me(new_access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(new_refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reused_rotated_refresh_token_expires_the_whole_tree() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (first_access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let new_refresh = body["refresh"].as_str().unwrap().to_owned();
    let new_access = body["access"].as_str().unwrap().to_owned();

    let (status, code) = error_code(app.refresh(&refresh).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );

    assert_refused(&app, &first_access).await;
    assert_refused(&app, &new_access).await;
    assert_eq!(
        app.refresh(&new_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn reuse_within_the_grace_period_only_fails() {
    let app = TestApp::spawn_with(|c| {
        c.rotate_refresh_tokens = true;
        c.refresh_reuse_grace = tokend::config::Dur(std::time::Duration::from_secs(60));
    })
    .await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let new_access = body["access"].as_str().unwrap();
    assert_eq!(app.me(new_access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn verify_and_expire_of_a_used_up_token_change_nothing() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let new_access = body["access"].as_str().unwrap();
    assert_eq!(
        app.verify(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.expire(&refresh, true).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(new_access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_succeed_exactly_once() {
    let app = Arc::new(TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await);
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let attempts = 24;
    let barrier = Arc::new(tokio::sync::Barrier::new(attempts));
    let mut tasks = Vec::new();
    for _ in 0..attempts {
        let (app, barrier, refresh) = (app.clone(), barrier.clone(), refresh.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.refresh(&refresh).await.status()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
            "unexpected {status}"
        );
        ok += usize::from(status == StatusCode::OK);
    }
    assert_eq!(ok, 1, "exactly one refresh wins");
    let successors = tokens::Entity::find()
        .filter(tokens::Column::ParentId.eq(row(&app, &refresh).await.id))
        .filter(tokens::Column::TokenType.eq("refresh"))
        .all(&app.state.db.read)
        .await
        .unwrap();
    assert_eq!(
        successors.len(),
        1,
        "one successor refresh token: {successors:#?}"
    );
}

#[tokio::test]
async fn expire_on_refresh_expires_the_rest_of_the_tree() {
    let app = TestApp::spawn_with(|c| c.expire_on_refresh = true).await;
    let (access1, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let access2 = body["access"].as_str().unwrap();
    assert_refused(&app, &access1).await;
    assert_eq!(app.me(access2).await.status(), StatusCode::OK);
    assert_eq!(app.verify(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn never_lifetimes_issue_tokens_without_expiry() {
    let app = TestApp::spawn_with(|c| {
        c.access_token_lifetime = Lifetime::NEVER;
        c.refresh_token_lifetime = Lifetime::NEVER;
    })
    .await;
    let resp = app.obtain("admin", ADMIN_PASSWORD).await;
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("expires_in").is_none());
    assert!(body.get("refresh_expires_in").is_none());
    let access = body["access"].as_str().unwrap();
    assert!(claims(access).get("exp").is_none());
    assert!(row(&app, access).await.expires_at.is_none());
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    assert_eq!(app.expire(access, false).await.status(), StatusCode::OK);
    assert_refused(&app, access).await;
}

#[tokio::test]
async fn every_issued_token_is_registered_with_user_and_device() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/v1/token/obtain"))
        .header("user-agent", "tokend-tests/1.0")
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let access = body["access"].as_str().unwrap();
    let refresh = body["refresh"].as_str().unwrap();
    let a = row(&app, access).await;
    let r = row(&app, refresh).await;
    assert_eq!(a.token_type, "access");
    assert_eq!(r.token_type, "refresh");
    assert_eq!(a.parent_id, Some(r.id));
    assert_eq!(r.parent_id, None);
    let user_id: uuid::Uuid = claims(access)["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(a.user_id, Some(user_id));
    assert!(a.expires_at.is_some() && a.expired_at.is_none());
    let device = devices::Entity::find_by_id(a.device_id.expect("device"))
        .one(&app.state.db.read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.user_agent, "tokend-tests/1.0");
    assert_eq!(device.client_address, "127.0.0.1");
}

#[tokio::test]
async fn registry_row_must_agree_with_the_token_type() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let mut r: tokens::ActiveModel = row(&app, &access).await.into();
    r.token_type = Set("refresh".into());
    r.update(&app.state.db.write).await.unwrap();
    assert_refused(&app, &access).await;
}

#[tokio::test]
async fn unknown_jti_is_refused() {
    let app = TestApp::spawn().await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    tokens::Entity::delete_many()
        .filter(tokens::Column::Id.eq(row(&app, &access).await.id))
        .exec(&app.state.db.write)
        .await
        .unwrap();
    assert_refused(&app, &access).await;
}

#[tokio::test]
async fn inactive_user_cannot_obtain_and_their_tokens_stop_working() {
    let app = TestApp::spawn().await;
    app.create_user("carol", "carol-password", false).await;
    let (access, refresh) = app.pair("carol", "carol-password").await;
    let user = app.state.users.find("carol").await.unwrap().unwrap();
    let mut active: entity::users::ActiveModel = user.into();
    active.is_active = Set(false);
    active.update(&app.state.db.write).await.unwrap();
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
    app.state.users.delete("dave").await.unwrap();
    app.create_user("dave", "dave-password", false).await;
    assert_refused(&app, &access).await;
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hs256_with_a_secret_signs_and_verifies() {
    let app = TestApp::spawn_with(|c| {
        c.algorithm = "HS256".into();
        c.secret = Some(tokend::config::Secret::new(
            "0123456789abcdef0123456789abcdef",
        ));
    })
    .await;
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(header(&access)["alg"], "HS256");
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
}

mod pipeline {
    use super::*;
    use async_trait::async_trait;
    use sea_orm::DatabaseTransaction;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokend::registry::pipeline::{RegistrationContext, RegistrationStep};

    struct Counting(Arc<AtomicUsize>);

    #[async_trait]
    impl RegistrationStep for Counting {
        fn name(&self) -> &'static str {
            "count"
        }
        async fn run(
            &self,
            ctx: &mut RegistrationContext,
            _txn: &DatabaseTransaction,
        ) -> tokend::error::Result<()> {
            self.0.fetch_add(ctx.tokens.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    struct Failing;

    #[async_trait]
    impl RegistrationStep for Failing {
        fn name(&self) -> &'static str {
            "fail"
        }
        async fn run(
            &self,
            _ctx: &mut RegistrationContext,
            _txn: &DatabaseTransaction,
        ) -> tokend::error::Result<()> {
            Err(tokend::error::Error::Unexpected(anyhow::anyhow!(
                "refused by test step"
            )))
        }
    }

    /// Never finishes for a client that says `User-Agent: hang`: a query
    /// caught by a network that went silent, inside the registration.
    struct Hanging;

    #[async_trait]
    impl RegistrationStep for Hanging {
        fn name(&self) -> &'static str {
            "hang"
        }
        async fn run(
            &self,
            ctx: &mut RegistrationContext,
            _txn: &DatabaseTransaction,
        ) -> tokend::error::Result<()> {
            if ctx.client.user_agent.as_deref() == Some("hang") {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_request_past_request_timeout_is_a_503_and_frees_its_connection() {
        let app = TestApp::spawn_with_steps(
            |c| {
                c.registration_pipeline = names("hang");
                c.request_timeout = tokend::config::Dur(std::time::Duration::from_secs(1));
            },
            &[Arc::new(Hanging)],
        )
        .await;
        let resp = app
            .client
            .post(app.url("/api/v1/token/obtain"))
            .header("user-agent", "hang")
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(resp).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
        );
        // The abandoned transaction was rolled back and its connection (on
        // SQLite, the only writer) is free: the next obtain works, and only
        // its two tokens are registered.
        let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
        assert_eq!(app.me(&access).await.status(), StatusCode::OK);
        let count = tokens::Entity::find()
            .all(&app.state.db.read)
            .await
            .unwrap()
            .len();
        assert_eq!(count, 2, "nothing of the abandoned obtain is registered");
    }

    fn names(extra: &str) -> Vec<String> {
        ["register_pairs", "connect_user", "connect_device", extra]
            .map(String::from)
            .to_vec()
    }

    #[tokio::test]
    async fn a_library_step_runs_for_every_issue() {
        let count = Arc::new(AtomicUsize::new(0));
        let app = TestApp::spawn_with_steps(
            |c| c.registration_pipeline = names("count"),
            &[Arc::new(Counting(count.clone()))],
        )
        .await;
        let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
        assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_registration_hands_out_nothing() {
        let app = TestApp::spawn_with_steps(
            |c| c.registration_pipeline = names("fail"),
            &[Arc::new(Failing)],
        )
        .await;
        let resp = app.obtain("admin", ADMIN_PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("access").is_none());
        let count = tokens::Entity::find()
            .all(&app.state.db.read)
            .await
            .unwrap()
            .len();
        assert_eq!(count, 0, "nothing registered");
        let devices = devices::Entity::find()
            .all(&app.state.db.read)
            .await
            .unwrap()
            .len();
        assert_eq!(devices, 0, "the device write was rolled back too");
    }

    #[tokio::test]
    async fn without_connect_device_tokens_have_no_device() {
        let app = TestApp::spawn_with(|c| {
            c.registration_pipeline = ["register_pairs", "connect_user"]
                .map(String::from)
                .to_vec()
        })
        .await;
        let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
        assert!(row(&app, &access).await.device_id.is_none());
        assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    }
}

/// The look-up every authenticated call makes runs on the calling thread on
/// SQLite (`inline_read`): it must find exactly what sea-orm finds, for a
/// token with a user and for one without (an anonymous registry token).
#[tokio::test]
async fn the_inline_token_look_up_finds_what_sea_orm_finds() {
    let app = TestApp::spawn().await;
    let Some(inline) = app.state.db.inline.clone() else {
        // PostgreSQL: every read goes through sea-orm.
        assert!(app.state.config.database_url().starts_with("postgres"));
        return;
    };
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
    let anonymous = app
        .client
        .get(app.url("/token?service=tokend"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&access, &refresh, &anonymous] {
        let jti: uuid::Uuid = claims(token)["jti"].as_str().unwrap().parse().unwrap();
        let (row, user) = tokens::Entity::find()
            .filter(tokens::Column::Jti.eq(jti))
            .find_also_related(entity::users::Entity)
            .one(&app.state.db.read)
            .await
            .unwrap()
            .unwrap();
        match inline.token_by_jti(jti).unwrap() {
            tokend::inline_read::Found::Row(inline_row, inline_user) => {
                assert_eq!(inline_row, row);
                assert_eq!(inline_user, user);
            }
            _ => panic!("the inline look-up did not find {jti}"),
        }
    }
    assert!(matches!(
        inline.token_by_jti(uuid::Uuid::new_v4()).unwrap(),
        tokend::inline_read::Found::Nothing
    ));
}
