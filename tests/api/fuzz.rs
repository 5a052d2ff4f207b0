//! Property tests of the token parser and validator chain: arbitrary bytes,
//! token-shaped garbage and mutated real tokens must never panic and never
//! be accepted; only the genuine tokens are.
//!
//! Case counts: `TOKEND_FUZZ_CASES` (default 3000 per property), so that CI
//! stays bounded; each run prints how many executions it made.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use tokend::{jwt::Claims, registry::pipeline::ClientInfo};

use common::{ADMIN_PASSWORD, TestApp};

fn cases() -> u32 {
    std::env::var("TOKEND_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3000)
}

/// Every way into the chain refuses `token`, without panicking.
async fn refused(app: &TestApp, token: &str) -> Result<(), TestCaseError> {
    let state = &app.state;
    prop_assert!(
        state.keys.verify::<Claims>(token, None).is_err(),
        "signature and claims accepted"
    );
    prop_assert!(
        state.validators.authenticate(token).await.is_err(),
        "accepted as a bearer token"
    );
    prop_assert!(
        state.registry.check(token, None).await.is_err(),
        "accepted by verify"
    );
    prop_assert!(
        state
            .registry
            .refresh(token, ClientInfo::default())
            .await
            .is_err(),
        "accepted by refresh"
    );
    Ok(())
}

/// Runs `property` over `strategy` on the blocking side of the runtime and
/// returns how many cases ran.
fn run<S: Strategy>(
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> usize {
    let count = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |value| {
                count.fetch_add(1, Ordering::Relaxed);
                property(value)
            })
            .unwrap_or_else(|e| panic!("{e}"));
    });
    count.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bytes_are_never_accepted() {
    let app = Arc::new(TestApp::spawn().await);
    let rt = tokio::runtime::Handle::current();

    let ran = run(prop::collection::vec(any::<u8>(), 0..2048), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        rt.block_on(refused(&app, &text))
    });

    eprintln!("fuzz: {ran} arbitrary byte strings refused");
}

/// Three base64url segments of arbitrary JSON-ish or binary content: gets
/// past the shape check into header and claim parsing.
fn token_shaped() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        prop::sample::select(vec![
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"JWT","kid":"x"}"#,
            r#"{"alg":"ES256","kid":""}"#,
            r#"{"token_type":"access","jti":"00000000-0000-0000-0000-000000000000","iat":0,"sub":"","user_id":"00000000-0000-0000-0000-000000000000","username":"admin"}"#,
            r#"{"alg":"ES256","kid":[1,2,3]}"#,
            "[]",
            "null",
        ])
        .prop_map(|j| URL_SAFE_NO_PAD.encode(j)),
        "[A-Za-z0-9_-]{0,100}",
    ];
    (segment.clone(), segment.clone(), segment).prop_map(|(h, p, s)| format!("{h}.{p}.{s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_shaped_garbage_is_never_accepted() {
    let app = Arc::new(TestApp::spawn().await);
    let rt = tokio::runtime::Handle::current();

    let ran = run(token_shaped(), |token| rt.block_on(refused(&app, &token)));

    eprintln!("fuzz: {ran} token-shaped strings refused");
}

/// One change to a real token.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Replace {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    SwapSegments {
        a: usize,
        b: usize,
    },
    /// Re-encode the header with another `alg` (algorithm confusion).
    Alg(&'static str),
    /// Re-encode the claims with one changed, keeping the signature.
    Claim(&'static str, serde_json::Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Replace { at, byte }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::SwapSegments { a, b }),
        prop::sample::select(vec!["none", "HS256", "ES384", "RS256", "EdDSA", "es256"])
            .prop_map(Mutation::Alg),
        prop::sample::select(vec![
            ("token_type", serde_json::json!("access")),
            ("token_type", serde_json::json!("refresh")),
            ("exp", serde_json::json!(i64::MAX)),
            ("username", serde_json::json!("someone-else")),
            (
                "jti",
                serde_json::json!("00000000-0000-0000-0000-000000000000")
            ),
        ])
        .prop_map(|(k, v)| Mutation::Claim(k, v)),
    ]
}

fn reencode(segment: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut json: serde_json::Value = URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    change(&mut json);
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// `token` changed by `mutation`; mutations chain, so the input may already
/// be short or have lost its dots.
fn apply(token: &str, mutation: &Mutation) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let n = bytes.len().max(1);
    if bytes.is_empty() {
        bytes.push(b'.');
    }
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let segments = parts.len();
    match mutation {
        Mutation::FlipBit { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::Replace { at, byte } => bytes[at % n] = *byte,
        Mutation::Insert { at, bytes: more } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, more.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let at = at % n;
            bytes.drain(at..(at + len).min(bytes.len()));
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::SwapSegments { a, b } => {
            parts.swap(a % segments, b % segments);
            return parts.join(".");
        }
        Mutation::Alg(_) | Mutation::Claim(..) if segments < 2 => return token.to_owned(),
        Mutation::Alg(alg) => {
            parts[0] = reencode(&parts[0], |h| h["alg"] = (*alg).into());
            return parts.join(".");
        }
        Mutation::Claim(key, value) => {
            parts[1] = reencode(&parts[1], |c| c[*key] = value.clone());
            return parts.join(".");
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_real_tokens_are_never_accepted_and_the_real_ones_are() {
    let app = Arc::new(TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await);
    let (access, refresh) = app.pair("admin", ADMIN_PASSWORD).await;
    let genuine = [access.clone(), refresh.clone()];
    let rt = tokio::runtime::Handle::current();

    let ran = run(
        (0usize..2, prop::collection::vec(mutation(), 1..4)),
        |(which, mutations)| {
            let original = &genuine[which];
            let token = mutations.iter().fold(original.clone(), |t, m| apply(&t, m));
            if &token == original {
                return Ok(()); // a mutation that undid itself
            }
            rt.block_on(refused(&app, &token))
        },
    );

    let state = &app.state;
    assert!(state.validators.authenticate(&access).await.is_ok());
    assert!(state.registry.check(&refresh, None).await.is_ok());
    assert!(
        state
            .registry
            .refresh(&refresh, ClientInfo::default())
            .await
            .is_ok()
    );
    eprintln!("fuzz: {ran} mutated tokens refused, the genuine pair accepted");
}
