use chrono::{Duration, Utc};
use entity::tokens;
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait};
use serde_json::{Value, json};
use tokend::config::{HumanDuration, Lifetime};

use common::{ADMIN_PASSWORD, TestApp};

async fn archive(app: &TestApp, admin: &str, body: Value) -> u64 {
    let resp = app
        .call(Method::POST, "/api/v1/registry/archive", admin, Some(body))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["archived"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn archive_removes_expired_tokens_and_leaves_active_ones() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await; // a pair that stays active
    let (a1, _) = app.pair("admin", ADMIN_PASSWORD).await;
    let (a2, _) = app.pair("admin", ADMIN_PASSWORD).await;
    app.expire(&a1, true).await; // two dead tokens
    app.expire(&a2, false).await; // one dead token
    assert_eq!(app.count_tokens().await, 6);
    assert_eq!(archive(&app, &admin, json!({})).await, 3);
    assert_eq!(app.count_tokens().await, 3);
    assert_eq!(app.me(&admin).await.status(), StatusCode::OK);
    // Nothing left to archive.
    assert_eq!(archive(&app, &admin, json!({})).await, 0);
}

#[tokio::test]
async fn archive_honours_the_cutoff() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (a1, _) = app.pair("admin", ADMIN_PASSWORD).await;
    app.expire(&a1, false).await;
    let before = (Utc::now() - Duration::hours(1)).to_rfc3339();
    assert_eq!(
        archive(&app, &admin, json!({"expired_before": before})).await,
        0
    );
    // A cutoff in the future is capped at now: active tokens are never archived.
    let future = (Utc::now() + Duration::days(3650)).to_rfc3339();
    assert_eq!(
        archive(&app, &admin, json!({"expired_before": future})).await,
        1
    );
    assert_eq!(app.me(&admin).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn naturally_expired_tokens_are_archived() {
    let app = TestApp::spawn_with(|c| c.access_token_lifetime = Lifetime::secs(1)).await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let fresh = body["access"].as_str().unwrap().to_owned();
    assert_eq!(archive(&app, &fresh, json!({})).await, 1);
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rotated_refresh_token_stays_until_its_natural_expiry_so_reuse_is_caught() {
    let app = TestApp::spawn_with(crate::token::rotating_without_grace).await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let new_access = body["access"].as_str().unwrap().to_owned();
    let admin = app.admin_token().await;
    archive(&app, &admin, json!({})).await;
    // The rotated token is still there: presenting it is still theft.
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me(&new_access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_child_keeps_working_after_its_parent_is_archived() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    let child = body["access"].as_str().unwrap().to_owned();
    // Expire only the refresh token (the parent), then archive it.
    let resp = app.expire(&refresh, false).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 1}));
    let admin = app.admin_token().await;
    assert_eq!(archive(&app, &admin, json!({})).await, 1);
    assert_eq!(app.me(&child).await.status(), StatusCode::OK);
    let orphans = app
        .count_tokens_where(
            Condition::all()
                .add(tokens::Column::ParentId.is_null())
                .add(tokens::Column::TokenType.eq("access")),
        )
        .await;
    assert_eq!(
        orphans, 2,
        "the children lost their parent link, not their life"
    );
}

#[tokio::test]
async fn archive_works_through_more_than_one_batch() {
    let app = TestApp::spawn().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let user_id = app.user_id("admin").await;
    // 2 500 dead rows, inserted directly.
    let now = Utc::now();
    let rows: Vec<tokens::ActiveModel> = (0..2500)
        .map(|_| {
            let id = uuid::Uuid::now_v7();
            tokens::ActiveModel {
                id: sea_orm::Set(id),
                jti: sea_orm::Set(uuid::Uuid::new_v4()),
                token_type: sea_orm::Set("access".into()),
                parent_id: sea_orm::Set(None),
                root_id: sea_orm::Set(id),
                user_id: sea_orm::Set(Some(user_id)),
                issued_at: sea_orm::Set(now - Duration::days(2)),
                expires_at: sea_orm::Set(Some(now - Duration::days(1))),
                expired_at: sea_orm::Set(None),
                rotated_at: sea_orm::Set(None),
                device_id: sea_orm::Set(None),
            }
        })
        .collect();
    app.insert_rows(rows).await;
    assert_eq!(
        app.state.registry.archive(Some(Utc::now())).await.unwrap(),
        2500
    );
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    assert_eq!(app.verify(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn scheduled_archive_runs_by_itself() {
    let app = TestApp::spawn_with(|c| {
        c.archive_interval = Some(HumanDuration(std::time::Duration::from_secs(1)))
    })
    .await;
    let (a1, _) = app.pair("admin", ADMIN_PASSWORD).await;
    app.expire(&a1, false).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.count_tokens().await == 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled archive never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(app.count_tokens().await, 1);
}

#[tokio::test]
async fn tokens_that_never_expire_die_only_by_being_expired() {
    let app = TestApp::spawn_with(|c| {
        c.access_token_lifetime = Lifetime::NEVER;
        c.refresh_token_lifetime = Lifetime::NEVER;
        c.rotate_refresh_tokens = true;
    })
    .await;
    let admin = app.admin_token().await;
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let page: Value = app
        .get_with("/api/v1/tokens?state=all", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["expires_at"].is_null())
    );
    // Archive leaves them alone, the rotated one included (its reuse is caught forever).
    let body: Value = app.refresh(&refresh).await.json().await.unwrap();
    assert!(body.get("expires_in").is_none() && body.get("refresh_expires_in").is_none());
    assert_eq!(archive(&app, &admin, json!({})).await, 0);
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    // Expiring them by user kills them.
    let resp = app
        .call(
            Method::POST,
            "/api/v1/users/admin/tokens/expire",
            &admin,
            None,
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 5}));
    assert_eq!(app.me(&access).await.status(), StatusCode::UNAUTHORIZED);
    let admin = app.admin_token().await;
    assert_eq!(archive(&app, &admin, json!({})).await, 5);
}

/// A token is issued with no `expired_at`, so only the tokens expired by
/// force belong in the index the archive reads for them: every issue would
/// otherwise add an entry, and a page to its commit.
#[tokio::test]
async fn the_index_of_forced_expiries_leaves_out_tokens_never_expired() {
    let app = TestApp::spawn().await;
    let db = app.db().await;
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT indexdef AS definition FROM pg_indexes WHERE indexname = 'tokens_expired_at'"
        }
        _ => "SELECT sql AS definition FROM sqlite_master WHERE name = 'tokens_expired_at'",
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap()
        .expect("the index exists");
    let definition: String = row.try_get("", "definition").unwrap();
    let normalised = definition.replace(['"', '(', ')'], "").to_lowercase();
    assert!(
        normalised.contains("where expired_at is not null"),
        "{definition}"
    );
}
