//! Disk faults on SQLite: a full disk (a small tmpfs filled up) and a
//! read-only database (the files made immutable with `chattr +i`, which
//! stops even root and even through open descriptors). tokend answers the
//! writes with 503 `unavailable`, keeps serving what needs no write, and
//! recovers once the disk is back.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use reqwest::StatusCode;
use serde_json::Value;

use common::process::{Api, Launch, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase, error_code, on_postgres};

/// A tmpfs mounted on a temporary folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when this machine does not let the test mount one.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros into `path` until the disk is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    // Fill the last partial chunk too.
    while file.write_all(&[0u8; 512]).is_ok() {}
    let _ = file.sync_all();
}

/// What a write under a disk fault answered: a clean 503, or tokens that
/// must then really be in the registry.
async fn write_under_fault(api: &Api, what: &str, refresh: &str) -> Option<String> {
    let resp = match what {
        "obtain" => api.obtain("admin", ADMIN_PASSWORD).await,
        _ => api.refresh(refresh).await,
    }
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    if resp.status() == StatusCode::OK {
        let body: Value = resp.json().await.expect("json");
        return Some(body["access"].as_str().expect("access").to_owned());
    }
    assert_eq!(
        error_code(resp).await,
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_owned()),
        "{what}"
    );
    None
}

/// Reads and `/health` need no write: they keep answering.
async fn assert_reads_work(api: &Api, access: &str, refresh: &str) {
    assert_eq!(
        api.get("/health").await.expect("health").status(),
        StatusCode::OK
    );
    assert_eq!(api.me(access).await.expect("me").status(), StatusCode::OK);
    assert_eq!(
        api.verify(refresh).await.expect("verify").status(),
        StatusCode::OK
    );
}

/// Once the disk is back, writes work again without a restart, and what
/// they hand out is registered. Returns the access tokens handed out.
async fn assert_recovered(api: &Api, refresh: &str) -> Vec<String> {
    let resp = api.refresh(refresh).await.expect("refresh");
    assert_eq!(resp.status(), StatusCode::OK, "refresh after recovery");
    let body: Value = resp.json().await.expect("json");
    let refreshed = body["access"].as_str().expect("access").to_owned();
    let (obtained, _) = api.pair("admin", ADMIN_PASSWORD).await;
    for access in [&refreshed, &obtained] {
        assert_eq!(
            api.me(access).await.expect("me").status(),
            StatusCode::OK,
            "a token handed out after recovery works"
        );
    }
    vec![refreshed, obtained]
}

/// After a restart, every token handed out still works: it was on disk.
async fn assert_persisted(launch: &Launch, handed_out: &[String]) {
    let server = launch.start().await;
    for access in handed_out {
        assert_eq!(
            server.me(access).await.expect("me").status(),
            StatusCode::OK,
            "a token handed out is in the registry after a restart"
        );
    }
    server.assert_no_panic();
}

#[tokio::test]
async fn full_disk_answers_503_and_recovers_when_space_returns() {
    if on_postgres() {
        return; // about the SQLite file
    }
    let _guard = exclusive().await;
    let Some(disk) = Tmpfs::mount("8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here, so a full disk cannot be produced");
        return;
    };
    let db = TestDatabase::fresh_in(Some(disk.path())).await;
    let mut launch = Launch::new(&db);
    launch.set("TOKEND_DATABASE_TIMEOUT", "1s");
    let server = launch.start().await;
    let (access, refresh) = server.pair("admin", ADMIN_PASSWORD).await;
    let filler = disk.path().join("filler");

    fill(&filler);
    // A write that fits in space SQLite already holds may still succeed; the
    // rest must fail cleanly, and whatever was handed out must be real.
    let mut handed_out = Vec::new();
    let mut refused = 0;
    for what in ["obtain", "refresh", "obtain", "refresh", "obtain"] {
        match write_under_fault(&server, what, &refresh).await {
            Some(access) => handed_out.push(access),
            None => refused += 1,
        }
    }
    assert!(refused > 0, "the full disk refused no write");
    assert_reads_work(&server, &access, &refresh).await;

    std::fs::remove_file(&filler).expect("free the disk");
    handed_out.extend(assert_recovered(&server, &refresh).await);
    server.assert_no_panic();
    drop(server);
    assert_persisted(&launch, &handed_out).await;
}

/// Immutable files, made mutable again on drop so the folder can go.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: Vec<PathBuf>) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .args(&paths)
            .status()
            .is_ok_and(|s| s.success());
        let guard = Immutable(paths);
        ok.then_some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

#[tokio::test]
async fn read_only_database_answers_503_and_recovers_when_writable() {
    if on_postgres() {
        return; // about the SQLite file
    }
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let mut launch = Launch::new(&db);
    launch.set("TOKEND_DATABASE_TIMEOUT", "1s");
    let server = launch.start().await;
    let (access, refresh) = server.pair("admin", ADMIN_PASSWORD).await;
    let dir = db.data_dir.path();
    // Not the -shm file: SQLite writes it through a shared mapping, and an
    // immutable mapping kills the process with SIGBUS, which no program can
    // answer. A read-only database and WAL is the fault tokend must survive.
    let files: Vec<PathBuf> = ["tokend.db", "tokend.db-wal"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .chain([dir.to_owned()])
        .collect();

    let Some(read_only) = Immutable::set(files) else {
        eprintln!(
            "SKIPPED: chattr +i is not supported here, so a read-only disk cannot be produced"
        );
        return;
    };
    for what in ["obtain", "refresh", "obtain", "refresh"] {
        let handed_out = write_under_fault(&server, what, &refresh).await;
        assert!(handed_out.is_none(), "{what} succeeded on a read-only disk");
    }
    assert_reads_work(&server, &access, &refresh).await;

    drop(read_only);
    let handed_out = assert_recovered(&server, &refresh).await;
    server.assert_no_panic();
    drop(server);
    assert_persisted(&launch, &handed_out).await;
}
