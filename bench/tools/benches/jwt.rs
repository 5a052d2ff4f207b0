//! Signing and verifying one access token with each algorithm, and the
//! validator chain turning away a token that is not its own.
//!
//! An algorithm is one line in `ALGORITHMS`: its name and how it changes
//! the settings.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use tokend::{
    Config, Extras,
    clock::system,
    jwt::{Claims, Generate, KeyRing, KeySettings, TokenType},
    secret::Secret,
    startup::Prepared,
};

type Configure = fn(&mut KeySettings);

const ALGORITHMS: &[(&str, Configure)] = &[
    ("ES256", |k| k.algorithm = "ES256".into()),
    ("ES384", |k| k.algorithm = "ES384".into()),
    ("RS256", |k| k.algorithm = "RS256".into()),
    ("EdDSA", |k| k.algorithm = "EdDSA".into()),
    ("HS256", |k| {
        k.algorithm = "HS256".into();
        k.secret = Some(Secret::new("bench-secret-of-at-least-32-bytes!!"));
    }),
];

/// A key ring of its own in `dir`, changed by `configure`.
fn ring(dir: &std::path::Path, configure: Configure) -> KeyRing {
    let mut settings = KeySettings {
        data_dir: dir.to_owned(),
        algorithm: "ES256".into(),
        ..KeySettings::default()
    };
    configure(&mut settings);
    KeyRing::load(&settings, Generate::IfMissing, system()).expect("key ring")
}

fn claims() -> Claims {
    let user_id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now().timestamp();
    Claims {
        token_type: TokenType::Access,
        jti: uuid::Uuid::new_v4(),
        iat: now,
        exp: Some(now + 3600),
        sub: user_id.to_string(),
        user_id,
        username: "bench".into(),
        client_id: "tokend".into(),
        iss: None,
        aud: None,
    }
}

fn sign_and_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt");
    for (name, configure) in ALGORITHMS {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = ring(dir.path(), *configure);
        let claims = claims();
        let token = keys.sign_claims(&claims).expect("sign");
        group.bench_function(format!("sign/{name}"), |b| {
            b.iter(|| keys.sign_claims(black_box(&claims)).expect("sign"))
        });
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| {
                keys.verify::<Claims>(black_box(&token), None)
                    .expect("verify")
            })
        });
    }
    group.finish();
}

fn foreign_tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: dir.path().to_owned(),
        admin_password: Some(Secret::new("bench-admin-password")),
        ..Config::default()
    };
    let Prepared { state, .. } = rt
        .block_on(tokend::startup::prepare(&config, &Extras::default()))
        .expect("prepare");
    // Signed by a key this instance does not have (an unknown `kid`).
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = ring(other_dir.path(), |_| {});
    let foreign_jwt = other.sign_claims(&claims()).expect("sign");
    let cases = [
        (
            "validators/not_a_jwt",
            "tkd_0123456789abcdef0123456789abcdef".to_owned(),
        ),
        ("validators/jwt_of_unknown_key", foreign_jwt),
    ];
    let mut group = c.benchmark_group("auth");
    for (name, token) in cases {
        group.bench_function(name, |b| {
            // Both are refused before any I/O: the future is ready at once.
            b.iter(|| {
                let result = state
                    .validators
                    .authenticate(black_box(&token))
                    .now_or_never();
                assert!(matches!(result, Some(Err(_))));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sign_and_verify, foreign_tokens);
criterion_main!(benches);
