//! Several `tokend serve` processes on one PostgreSQL database, as a
//! deployment behind a load balancer runs them (issue 18.5 and 18.7):
//! started together on an empty database they all come up, and what one
//! revokes or rotates the others see at once.
//!
//! PostgreSQL only: replicas share a PostgreSQL database, never a SQLite
//! file. CI runs this binary on PostgreSQL too.

use std::sync::Arc;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use common::process::{Launch, Server, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase, on_postgres};

fn skipped() -> bool {
    if on_postgres() {
        return false;
    }
    eprintln!("skipped: replicas share a PostgreSQL database (set TOKEND_TEST_DATABASE_URL)");
    true
}

/// A launch on `db` for replicas: one signing key, made beforehand, that
/// every replica is given (as the README's recipe says).
fn replicas(db: &TestDatabase) -> Launch {
    let mut launch = Launch::new(db);
    let key = db.data_dir.path().join("shared-key.pem");
    let (status, output) = launch.run(
        &[
            "keys",
            "generate",
            "--alg",
            "ES256",
            "--out",
            &key.display().to_string(),
        ],
        "",
    );
    assert!(status.success(), "{output}");
    launch.set("TOKEND_KEYS", key.display());
    launch
}

/// A replicas' launch with rotation on and no reuse grace.
fn rotating(db: &TestDatabase) -> Launch {
    let mut launch = replicas(db);
    launch
        .set("TOKEND_ROTATE_REFRESH_TOKENS", "true")
        .set("TOKEND_REFRESH_REUSE_GRACE", "0s");
    launch
}

/// Starts `n` servers, each with a data folder of its own, at the same
/// moment (each process is started before any is waited for), then waits
/// until every one is ready.
async fn start_together(launch: &Launch, n: usize) -> Vec<Server> {
    let launches: Vec<Launch> = (0..n)
        .map(|i| {
            let mut own = launch.clone();
            let data_dir = launch
                .env
                .iter()
                .find(|(k, _)| k == "TOKEND_DATA_DIR")
                .map(|(_, v)| format!("{v}/replica-{i}"))
                .expect("a data folder");
            own.set("TOKEND_DATA_DIR", data_dir);
            own
        })
        .collect();
    let spawns = launches.iter().map(|l| l.spawn(&["serve"]));
    let mut servers = futures_util::future::join_all(spawns).await;
    for server in &mut servers {
        server.wait_ready().await;
    }
    servers
}

#[tokio::test]
async fn three_replicas_started_at_once_on_an_empty_database_all_come_up_and_serve() {
    if skipped() {
        return;
    }
    let _guard = exclusive().await;
    // A database of its own, with no schema yet.
    let db = TestDatabase::fresh().await;
    let servers = start_together(&replicas(&db), 3).await;
    for server in &servers {
        let (access, _) = server.pair("admin", ADMIN_PASSWORD).await;
        let me: Value = server.me(&access).await.unwrap().json().await.unwrap();
        assert_eq!(me["username"], "admin");
        server.assert_no_panic();
    }
    // One administrator, made once.
    let conn = db.connect().await;
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1);
}

#[tokio::test]
async fn a_migrate_then_replicas_started_at_once_all_come_up() {
    if skipped() {
        return;
    }
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let launch = replicas(&db);
    let (status, output) = launch.run(&["migrate"], "");
    assert!(status.success(), "{output}");
    // The schema exists: now they race on the first administrator alone.
    let servers = start_together(&launch, 3).await;
    for server in &servers {
        server.pair("admin", ADMIN_PASSWORD).await;
    }
}

#[tokio::test]
async fn a_token_revoked_on_one_replica_is_refused_on_the_other() {
    if skipped() {
        return;
    }
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let servers = start_together(&rotating(&db), 2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (access, refresh) = a.pair("admin", ADMIN_PASSWORD).await;
    assert_eq!(b.me(&access).await.unwrap().status(), StatusCode::OK);
    assert_eq!(b.verify(&refresh).await.unwrap().status(), StatusCode::OK);

    // Log out on a: the whole tree.
    let resp = a.expire(&refresh, true).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // b holds nothing in memory that would let them through.
    assert_eq!(
        b.me(&access).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.verify(&access).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.refresh(&refresh).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn twenty_rotating_refreshes_split_across_two_replicas_exactly_one_succeeds() {
    if skipped() {
        return;
    }
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let servers = start_together(&rotating(&db), 2).await;
    let (_, refresh) = servers[0].pair("admin", ADMIN_PASSWORD).await;
    const N: usize = 20;
    let barrier = Arc::new(Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let api = servers[i % 2].api();
            let (barrier, refresh) = (barrier.clone(), refresh.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = api
                    .post_json("/api/v1/token/refresh", json!({"refresh": refresh}))
                    .await
                    .expect("refresh request");
                resp.status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((ok, refused), (1, N - 1), "{statuses:?}");
}
