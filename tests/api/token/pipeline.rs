//! Registration steps a library user adds, and what a step that fails or
//! hangs leaves behind.

use std::{
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::poll;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokend::registry::pipeline::{ClientInfo, RegistrationContext, RegistrationStep};

use common::{ADMIN_PASSWORD, TestApp, error_code};

struct Counting(Arc<AtomicUsize>);

#[async_trait]
impl RegistrationStep for Counting {
    fn name(&self) -> &'static str {
        "count"
    }
    async fn run(&self, ctx: &mut RegistrationContext) -> tokend::error::Result<()> {
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
    async fn run(&self, _ctx: &mut RegistrationContext) -> tokend::error::Result<()> {
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
    async fn run(&self, ctx: &mut RegistrationContext) -> tokend::error::Result<()> {
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
            c.request_timeout = tokend::config::HumanDuration(std::time::Duration::from_secs(1));
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
        resp.headers()["retry-after"],
        "1",
        "a 503 says when to retry"
    );
    assert_eq!(
        error_code(resp).await,
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
    // The abandoned obtain holds no connection (steps run before the
    // write, and on SQLite the writer is the only one): the next obtain
    // works, and only its two tokens are registered.
    let (access, _) = app.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
    let count = app.count_tokens().await;
    assert_eq!(count, 2, "nothing of the abandoned obtain is registered");
}

/// A database that cannot be reached is a 503 that says when to try again
/// (as the registry's write queue, full for `database_timeout`, is). The
/// pool closed is sea-orm's: on SQLite in a file a login and the registry
/// no longer go through it, listing the users still does.
#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.close_database().await;
    let resp = app.get_with("/api/v1/users", &admin).await;
    assert_eq!(
        resp.headers()["retry-after"],
        "1",
        "a 503 says when to retry"
    );
    assert_eq!(
        error_code(resp).await,
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
    );
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
    // A step that fails is a bug, not the database being away.
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "internal_error");
    assert!(body.get("access").is_none());
    let count = app.count_tokens().await;
    assert_eq!(count, 0, "nothing registered");
    let devices = app.count_devices().await;
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
    assert!(app.row(&access).await.device_id.is_none());
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);
}

/// Records, for each refresh, when the presented token was rotated as the
/// steps see it. Never waits, so it may run inside the write.
struct SeesParent(Arc<Mutex<Vec<Option<DateTime<Utc>>>>>);

#[async_trait]
impl RegistrationStep for SeesParent {
    fn name(&self) -> &'static str {
        "sees_parent"
    }
    fn waits(&self) -> bool {
        false
    }
    async fn run(&self, ctx: &mut RegistrationContext) -> tokend::error::Result<()> {
        if let Some(parent) = &ctx.parent {
            self.0.lock().unwrap().push(parent.rotated_at);
        }
        Ok(())
    }
}

/// Two refreshes of one token, both asked before either is written. On
/// SQLite the writer runs one write at a time and reads the presented token
/// in it, so the second refresh's steps see the token as the first left
/// it: rotated. (Read before the write, both would see it unrotated.) On
/// both databases the second is a retry within the grace and gets the
/// first's successor.
#[tokio::test]
async fn a_refresh_whose_steps_never_wait_runs_them_on_the_token_as_its_write_reads_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = TestApp::spawn_with_steps(
        |c| {
            c.registration_pipeline = names("sees_parent");
            c.rotate_refresh_tokens = true;
            c.refresh_reuse_grace = tokend::config::HumanDuration(Duration::from_secs(60));
        },
        &[Arc::new(SeesParent(seen.clone()))],
    )
    .await;
    let sqlite = app.config().database_url.is_none();
    let (_, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    seen.lock().unwrap().clear();

    let registry = &app.state.registry;
    let mut first = pin!(registry.refresh(&refresh, ClientInfo::default()));
    let mut second = pin!(registry.refresh(&refresh, ClientInfo::default()));
    // The test's runtime has one thread: the SQLite writer's batch cannot
    // run before both have queued their jobs and wait.
    let (polled_first, polled_second) = (poll!(first.as_mut()), poll!(second.as_mut()));
    if sqlite {
        assert!(polled_first.is_pending() && polled_second.is_pending());
    }
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.refresh.unwrap().jti,
        second.refresh.unwrap().jti,
        "the second refresh is the first's retry"
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].is_none(), "the first refresh saw the token active");
    if sqlite {
        assert!(
            seen[1].is_some(),
            "the second refresh's steps saw the token as its write read it, rotated"
        );
    }
}
