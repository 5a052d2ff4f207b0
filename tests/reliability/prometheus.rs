//! The metrics proven with the real tools (issue 15, point 5), Debian's
//! `prometheus` package: `promtool check metrics` passes on a scrape taken
//! after a walk-through, and a real Prometheus server, scraping tokend's
//! `metrics_bind` with its `metrics_token`, answers a PromQL query with the
//! refreshes and the reuse the walk-through caused. `.ci/run` installs the
//! package and sets `CI_REQUIRE_PROMETHEUS=1`: then a missing tool fails.

use std::{
    io::Write,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use common::TestDatabase;
use common::process::exclusive;

use crate::observability::{METRICS_TOKEN, launch, scrape, walk_through};

/// The tool on the PATH; `None` (the test skips) unless CI requires it.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = std::env::var("CI_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CI_REQUIRE_PROMETHEUS=1 but `{name}` is not installed (apt-get install prometheus)"
        );
        eprintln!("skipped: `{name}` is not installed (Debian's prometheus package)");
    }
    found
}

/// A free port on the loopback, for Prometheus to listen on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The Prometheus server, killed when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of a PromQL query's one series, once Prometheus has one.
async fn query(base: &str, promql: &str, log: &std::path::Path) -> String {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", promql)])
            .send()
            .await;
        if let Ok(resp) = answer
            && let Ok(body) = resp.json::<Value>().await
            && let Some(value) = body["data"]["result"][0]["value"][1].as_str()
        {
            return value.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus had no `{promql}` in 90 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn promtool_accepts_the_scrape_and_prometheus_counts_the_refreshes_and_the_reuse() {
    let (Some(promtool), Some(prometheus)) = (tool("promtool"), tool("prometheus")) else {
        return;
    };
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let server = launch(&db).start().await;
    let walk = walk_through(&server.api()).await;

    let scraped = scrape(&server).await;
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(scraped.as_bytes())
        .expect("write the scrape");
    let out = check.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{scraped}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let metrics_port = server.logged_port("metrics listening").expect("port");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: tokend\n    authorization:\n      \
             credentials: {METRICS_TOKEN}\n    static_configs:\n      \
             - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .expect("write the config");
    let port = free_port();
    let log = dir.path().join("prometheus.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let _prometheus = Prometheus(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start prometheus"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let refreshes = query(
        &base,
        r#"sum(tokend_refreshes_total{job="tokend",outcome="ok"})"#,
        &log,
    )
    .await;
    assert_eq!(refreshes, walk.refreshes.to_string());
    let reuses = query(
        &base,
        r#"sum(tokend_refreshes_total{job="tokend",outcome="reuse_detected"})"#,
        &log,
    )
    .await;
    assert_eq!(reuses, walk.reuses.to_string());
    let up = query(&base, r#"up{job="tokend"}"#, &log).await;
    assert_eq!(up, "1", "Prometheus scraped tokend with its token");
}
