//! Database faults on PostgreSQL: the server stops or becomes unreachable
//! (through a forwarder the test cuts), tokend answers 503 within
//! `database_timeout`, keeps answering `/health`, and recovers on its own.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use reqwest::{Response, StatusCode};
use serde_json::Value;

use common::process::{Api, Launch, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase, error_code, pg_url_with_database};

use crate::proxy::{Mode, Proxy};

const DATABASE_TIMEOUT: Duration = Duration::from_secs(1);

/// A request fails at its first database call, which waits at most
/// `database_timeout` for a connection; the rest is slack for a debug build on
/// a machine shared with other work. A hang would blow far past it.
fn answer_limit() -> Duration {
    DATABASE_TIMEOUT * 2 + Duration::from_secs(3)
}

/// The host and port of a `postgres://user@host:port/db` URL.
async fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    tokio::net::lookup_host(host_port)
        .await
        .expect("resolve the PostgreSQL host")
        .next()
        .expect("an address for the PostgreSQL host")
}

/// Sends a request and checks that it is answered within the limit.
async fn timed(
    what: &str,
    request: impl std::future::Future<Output = reqwest::Result<Response>>,
) -> Response {
    let started = Instant::now();
    let resp = request.await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let took = started.elapsed();
    assert!(
        took <= answer_limit(),
        "{what} took {took:?}, more than {:?}",
        answer_limit()
    );
    resp
}

async fn assert_unavailable(api: &Api, access: &str, refresh: &str) {
    let health = timed("/health", api.get("/health")).await;
    assert_eq!(health.status(), StatusCode::OK, "/health needs no database");
    let (ready, obtain, refreshed, verify, expire, me) = tokio::join!(
        timed("/ready", api.get("/ready")),
        timed("obtain", api.obtain("admin", ADMIN_PASSWORD)),
        timed("refresh", api.refresh(refresh)),
        timed("verify", api.verify(access)),
        timed("expire", api.expire(access, false)),
        timed("me", api.me(access)),
    );
    let calls = [
        ("/ready", ready),
        ("obtain", obtain),
        ("refresh", refreshed),
        ("verify", verify),
        ("expire", expire),
        ("me", me),
    ];
    for (what, resp) in calls {
        assert_eq!(
            error_code(resp).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_owned()),
            "{what} while the database is away"
        );
    }
}

/// Waits until `/ready` answers 200 again, at most 30 s.
async fn wait_recovered(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = api.get("/ready").await
            && resp.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "no recovery in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_in_time_and_recovers_without_restart() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let Some(pg) = db.pg() else {
        return; // SQLite has no server to lose: see disk.rs for its faults
    };
    let proxy = Proxy::start(upstream(&pg.server_url).await).await;
    let via_proxy = pg_url_with_database(
        &pg.server_url.replacen(
            &upstream_authority(&pg.server_url),
            &proxy.addr.to_string(),
            1,
        ),
        &pg.name,
    );
    let mut launch = Launch::new(&db);
    launch
        .set("TOKEND_DATABASE_URL", &via_proxy)
        .set("TOKEND_DATABASE_TIMEOUT", "1s")
        .set("TOKEND_ROTATE_REFRESH_TOKENS", "true");
    let server = launch.start().await;
    let (access, mut refresh) = server.pair("admin", ADMIN_PASSWORD).await;

    for mode in [Mode::Stopped, Mode::Unreachable, Mode::Stopped] {
        proxy.set(mode);
        assert_unavailable(&server, &access, &refresh).await;

        proxy.set(Mode::Up);
        wait_recovered(&server).await;
        assert_eq!(
            server.me(&access).await.expect("me").status(),
            StatusCode::OK,
            "after {mode:?}"
        );
        let resp = server.refresh(&refresh).await.expect("refresh");
        assert_eq!(resp.status(), StatusCode::OK, "after {mode:?}");
        let body: Value = resp.json().await.expect("json");
        refresh = body["refresh"].as_str().expect("refresh").to_owned();
        server.pair("admin", ADMIN_PASSWORD).await;
    }
    server.assert_no_panic();
}

/// The `host:port` part of a URL as written.
fn upstream_authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_owned()
}
