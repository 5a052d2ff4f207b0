//! Prometheus metrics: their names, what they mean, and one function per
//! event, called where the event happens. Every label value is one of a
//! few fixed words (an outcome, a kind, a route template): never a
//! username, a token, an address or anything else a client chooses.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex, PoisonError},
    time::Duration,
};

use ::metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const HTTP_REQUESTS: &str = "tokend_http_requests_total";
const HTTP_DURATION: &str = "tokend_http_request_duration_seconds";
const TOKENS_ISSUED: &str = "tokend_tokens_issued_total";
const REFRESHES: &str = "tokend_refreshes_total";
const TOKENS_EXPIRED: &str = "tokend_tokens_expired_total";
const LOGINS: &str = "tokend_logins_total";
const THROTTLED: &str = "tokend_login_throttled_total";
const API_TOKEN_AUTH: &str = "tokend_api_token_authentications_total";
const REGISTRY_TOKENS: &str = "tokend_registry_token_requests_total";
const HASHES_WAITING: &str = "tokend_password_hashes_waiting";
const HASH_WAIT: &str = "tokend_password_hash_wait_seconds";
const HASH_DURATION: &str = "tokend_password_hash_duration_seconds";
const DB_CONNECTIONS: &str = "tokend_db_pool_connections";
const DB_ERRORS: &str = "tokend_db_errors_total";
const REGISTRY_COMMITS: &str = "tokend_registry_commits_total";
const REGISTRY_WRITES: &str = "tokend_registry_writes_total";
const REGISTRY_WAITING: &str = "tokend_registry_writes_waiting";
const ARCHIVE_RUNS: &str = "tokend_archive_runs_total";
const ARCHIVE_ROWS: &str = "tokend_archive_rows_total";
const BUILD_INFO: &str = "tokend_build_info";

/// Histogram buckets, in seconds: from a cached verify (well under a
/// millisecond) to a request that hit `request_timeout`.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The installed recorder: what `/metrics` renders. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    process: Arc<metrics_process::Collector>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The one recorder of the process, once installed.
static INSTALLED: Mutex<Option<Metrics>> = Mutex::new(None);

impl Metrics {
    /// Installs the process's recorder (or returns the one installed
    /// before): from now on every event below is counted.
    pub fn install(version: &'static str) -> anyhow::Result<Metrics> {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(metrics) = &*installed {
            return Ok(metrics.clone());
        }
        let handle = PrometheusBuilder::new()
            .set_buckets(BUCKETS)?
            .install_recorder()?;
        describe();
        let process = metrics_process::Collector::default();
        process.describe();
        gauge!(BUILD_INFO, "version" => version).set(1.0);
        let metrics = Metrics {
            handle,
            process: Arc::new(process),
        };
        *installed = Some(metrics.clone());
        Ok(metrics)
    }

    /// Every metric in the Prometheus text format, the process's own
    /// figures read now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle.render()
    }

    /// Folds the histograms' recent samples into their buckets; run it
    /// every few seconds, or memory grows between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route template."
    );
    describe_counter!(
        TOKENS_ISSUED,
        "Tokens issued, by kind (access, refresh, registry)."
    );
    describe_counter!(
        REFRESHES,
        "Refreshes, by outcome (ok, reuse_detected, reuse_in_grace, expired, invalid, error)."
    );
    describe_counter!(
        TOKENS_EXPIRED,
        "Active tokens expired, by reason (request, tree, user, password_change, reuse, refresh)."
    );
    describe_counter!(
        LOGINS,
        "Password and Basic sign-ins, by outcome (ok, failed, throttled, error)."
    );
    describe_counter!(
        THROTTLED,
        "Sign-ins refused by the login throttle, by scope (username, address)."
    );
    describe_counter!(
        API_TOKEN_AUTH,
        "Authentications with a personal API token, by outcome (ok, invalid, error)."
    );
    describe_counter!(
        REGISTRY_TOKENS,
        "Container registry token requests (/token), by grant and outcome."
    );
    describe_gauge!(
        HASHES_WAITING,
        "Password hashes waiting for a hashing thread."
    );
    describe_histogram!(
        HASH_WAIT,
        Unit::Seconds,
        "Time a password hash waited for a hashing thread."
    );
    describe_histogram!(
        HASH_DURATION,
        Unit::Seconds,
        "Time an argon2id hash or verification took, by operation (hash, verify)."
    );
    describe_gauge!(
        DB_CONNECTIONS,
        "Database pool connections, by pool (read, write) and state (in_use, idle)."
    );
    describe_counter!(DB_ERRORS, "Database errors, by kind (unavailable, other).");
    describe_counter!(
        REGISTRY_COMMITS,
        "SQLite: batches of registry writes committed (or failed), by outcome (ok, failed)."
    );
    describe_counter!(
        REGISTRY_WRITES,
        "SQLite: registry write jobs run in those batches, by outcome of their batch."
    );
    describe_gauge!(
        REGISTRY_WAITING,
        "SQLite: registry write jobs waiting in the writer's queue, as last seen."
    );
    describe_counter!(ARCHIVE_RUNS, "Archive runs that completed.");
    describe_counter!(ARCHIVE_ROWS, "Dead tokens removed by archive runs.");
    describe_gauge!(BUILD_INFO, "Always 1; the version of tokend in a label.");
}

/// An HTTP request answered.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let (duration, requests) = http_series(method, route, status);
    duration.record(took.as_secs_f64());
    requests.increment(1);
}

/// The HTTP series' handles, by route template, then method and status:
/// made once each, since building a labelled key on every request cost
/// the server more than a cached `/api/v1/me` does.
type HttpSeries = HashMap<Box<str>, Vec<(&'static str, u16, Histogram, Counter)>>;

static HTTP_SERIES: LazyLock<Mutex<HttpSeries>> = LazyLock::new(Mutex::default);

fn http_series(method: &str, route: &str, status: u16) -> (Histogram, Counter) {
    // A client may send any method: only the standard ones are labels.
    let method = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other");
    let mut series = HTTP_SERIES.lock().unwrap_or_else(PoisonError::into_inner);
    let known = series.get(route).and_then(|by_route| {
        by_route
            .iter()
            .find(|(m, s, _, _)| *m == method && *s == status)
            .map(|(_, _, h, c)| (h.clone(), c.clone()))
    });
    if let Some(handles) = known {
        return handles;
    }
    let route = route.to_owned();
    let duration = histogram!(HTTP_DURATION, "method" => method, "route" => route.clone());
    let requests = counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    );
    series.entry(route.into_boxed_str()).or_default().push((
        method,
        status,
        duration.clone(),
        requests.clone(),
    ));
    (duration, requests)
}

/// `n` tokens of `kind` (`access`, `refresh`, `registry`) issued.
pub fn tokens_issued(kind: &'static str, n: u64) {
    counter!(TOKENS_ISSUED, "kind" => kind).increment(n);
}

/// A refresh ended with `outcome`.
pub fn refresh(outcome: &'static str) {
    counter!(REFRESHES, "outcome" => outcome).increment(1);
}

/// `n` active tokens expired for `reason`.
pub fn tokens_expired(reason: &'static str, n: u64) {
    if n > 0 {
        counter!(TOKENS_EXPIRED, "reason" => reason).increment(n);
    }
}

/// A sign-in ended with `outcome`.
pub fn login(outcome: &'static str) {
    counter!(LOGINS, "outcome" => outcome).increment(1);
}

/// A sign-in refused by the throttle of `scope` (`username`, `address`).
pub fn throttled(scope: &'static str) {
    counter!(THROTTLED, "scope" => scope).increment(1);
}

/// An API token authentication ended with `outcome`.
pub fn api_token_authentication(outcome: &'static str) {
    counter!(API_TOKEN_AUTH, "outcome" => outcome).increment(1);
}

/// A `/token` request of `grant` (`anonymous`, `basic`, `password`,
/// `refresh_token`, `unsupported`) ended with `outcome` (`ok` or an error
/// code).
pub fn registry_token_request(grant: &'static str, outcome: &'static str) {
    counter!(REGISTRY_TOKENS, "grant" => grant, "outcome" => outcome).increment(1);
}

/// A password hash was queued for a hashing thread.
pub fn hash_queued() {
    gauge!(HASHES_WAITING).increment(1.0);
}

/// A hashing thread took a queued hash after it `waited`.
pub fn hash_started(waited: Duration) {
    gauge!(HASHES_WAITING).decrement(1.0);
    histogram!(HASH_WAIT).record(waited.as_secs_f64());
}

/// A hash `operation` (`hash`, `verify`) took `took`.
pub fn hash_finished(operation: &'static str, took: Duration) {
    histogram!(HASH_DURATION, "operation" => operation).record(took.as_secs_f64());
}

/// The connections of the database pool `pool` (`read`, `write`) now.
pub fn db_pool(pool: &'static str, in_use: u64, idle: u64) {
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "in_use").set(in_use as f64);
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "idle").set(idle as f64);
}

/// A database error of `kind` (`unavailable`, `other`).
pub fn db_error(kind: &'static str) {
    counter!(DB_ERRORS, "kind" => kind).increment(1);
}

/// The SQLite writer committed (or failed) a batch of `jobs` jobs.
pub fn registry_batch(jobs: usize, committed: bool) {
    let outcome = if committed { "ok" } else { "failed" };
    counter!(REGISTRY_COMMITS, "outcome" => outcome).increment(1);
    counter!(REGISTRY_WRITES, "outcome" => outcome).increment(jobs as u64);
}

/// Jobs in the SQLite writer's queue, seen by one that just joined it.
pub fn registry_writes_waiting(jobs: usize) {
    gauge!(REGISTRY_WAITING).set(jobs as f64);
}

/// An archive run removed `rows` dead tokens.
pub fn archive_run(rows: u64) {
    counter!(ARCHIVE_RUNS).increment(1);
    counter!(ARCHIVE_ROWS).increment(rows);
}
