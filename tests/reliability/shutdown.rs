//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests
//! finish within `shutdown_grace`, closes the pool and exits 0.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use common::process::{Launch, Server, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase};

/// Sends the head of an obtain with `Expect: 100-continue` and waits for the
/// `100 Continue`: from then on the request is in the handler, waiting for
/// its body. Returns the connection and the body still to send.
async fn obtain_in_flight(server: &Server) -> (TcpStream, String) {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut conn = TcpStream::connect(&addr).await.expect("connect");
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let head = format!(
        "POST /api/v1/token/obtain HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("send head");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.expect("read 100 Continue");
        assert!(n > 0, "connection closed before 100 Continue");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 100"),
        "expected 100 Continue, got {}",
        String::from_utf8_lossy(&seen)
    );
    (conn, body)
}

/// Connects until the port refuses, at most 10 s.
async fn wait_until_refused(server: &Server) {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Status and JSON body of a complete HTTP/1.1 answer read off `conn`.
async fn read_answer(conn: &mut TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, serde_json::from_str(body).expect("a JSON body"))
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let mut launch = Launch::new(&db);
    launch.set("TOKEND_SHUTDOWN_GRACE", "30s");
    let mut server = launch.start().await;
    let (mut conn, body) = obtain_in_flight(&server).await;

    server.terminate();
    wait_until_refused(&server).await;
    conn.write_all(body.as_bytes()).await.expect("send body");
    let (status, answer) = read_answer(&mut conn).await;

    assert_eq!(
        status, 200,
        "the in-flight obtain gets its answer: {answer}"
    );
    let access = answer["access"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let exit = server.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "{}", server.output());
    server.assert_no_panic();

    // What the client was handed was committed before the pool closed.
    let server = launch.start().await;
    assert_eq!(
        server.me(&access).await.expect("me").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn shutdown_grace_bounds_the_wait_for_a_stuck_request() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let mut launch = Launch::new(&db);
    launch.set("TOKEND_SHUTDOWN_GRACE", "1s");
    let mut server = launch.start().await;
    // A client that sends its head and never its body.
    let (mut conn, _never_sent) = obtain_in_flight(&server).await;

    server.terminate();

    // Far longer than the grace, so that only a missed grace fails this.
    let exit = server.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "{}", server.output());
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    server.assert_no_panic();
}
