use super::*;

#[test]
fn the_wait_is_rounded_up_to_whole_seconds() {
    let now = Utc::now();
    let ms = chrono::Duration::milliseconds;
    assert_eq!(seconds_until(now, now + ms(1)), 1);
    assert_eq!(seconds_until(now, now + ms(1000)), 1);
    assert_eq!(seconds_until(now, now + ms(1001)), 2);
    assert_eq!(seconds_until(now, now + ms(899_400)), 900);
    assert_eq!(seconds_until(now, now - ms(5)), 1);
}

/// A login that waits for a check of its username to end gets the
/// place that check frees, though another login comes just as it ends.
#[tokio::test]
async fn a_login_that_waits_is_not_overtaken_by_one_that_comes_after_it() {
    use futures_util::FutureExt;

    let dir = tempfile::tempdir().unwrap();
    let db = crate::store::test_sqlite(&dir).await;
    let threads = crate::store::TokenStore::new(db.clone()).sqlite_threads();
    let limits = Limits {
        per_username: 1,
        per_address: 0,
        window: Duration::from_secs(900),
    };
    let throttle = Throttle::new(
        LoginFailureStore::new(db, threads),
        limits,
        crate::clock::system(),
    );
    let first = throttle.begin("ann", "10.0.0.1").await.unwrap();
    let waiter = tokio::spawn({
        let throttle = throttle.clone();
        async move { throttle.begin("ann", "10.0.0.2").await }
    });
    while !throttle.waiting.queue("ann").taken() {
        tokio::task::yield_now().await;
    }
    throttle.succeeded(first).await.unwrap();
    // Arrives before the woken login has looked again.
    let mut late = std::pin::pin!(throttle.begin("ann", "10.0.0.3"));
    assert!((&mut late).now_or_never().is_none(), "the limit is one");
    let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the login that waited got in")
        .unwrap()
        .unwrap();
    throttle.succeeded(waited).await.unwrap();
    throttle.succeeded(late.await.unwrap()).await.unwrap();
}

#[test]
fn a_key_is_what_the_table_can_hold() {
    assert_eq!(key("a\0b", 150), "a\u{fffd}b");
    assert_eq!(key(&"x".repeat(70), 64).len(), 64);
}
