//! The registry's database work on SQLite: registering a pair, checking a
//! token, and expiring a whole tree with one UPDATE on `root_id`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use entity::users;
use tokend::{
    AppState, Config, Extras, db::Db, registry::pipeline::ClientInfo, secret::Secret,
    startup::Prepared, store::TokenStore,
};

/// A prepared instance on a fresh SQLite file, and a user of it.
struct Fixture {
    rt: tokio::runtime::Runtime,
    state: AppState,
    db: Db,
    user: users::Model,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: dir.path().to_owned(),
        admin_password: Some(Secret::new("bench-admin-password")),
        ..Config::default()
    };
    let Prepared { state, db, .. } = rt
        .block_on(tokend::startup::prepare(&config, &Extras::default()))
        .expect("prepare");
    let user = rt
        .block_on(state.users.find("admin"))
        .expect("find admin")
        .expect("admin exists");
    Fixture {
        rt,
        state,
        db,
        user,
        _dir: dir,
    }
}

fn registry(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("registry");

    let store = TokenStore::new(f.db.clone());
    group.bench_function("insert_pair_rows", |b| {
        b.iter(|| {
            let rows = tokend_bench::pair_rows(f.user.id, chrono::Utc::now(), false, false);
            f.rt.block_on(store.insert_bulk(rows.to_vec()))
                .expect("insert")
        })
    });

    group.bench_function("obtain_pair (sign two, register)", |b| {
        b.iter(|| {
            f.rt.block_on(f.state.registry.obtain(&f.user, ClientInfo::default()))
                .expect("obtain")
        })
    });

    let pair =
        f.rt.block_on(f.state.registry.obtain(&f.user, ClientInfo::default()))
            .expect("obtain");
    group.bench_function("check_access_token", |b| {
        b.iter(|| {
            f.rt.block_on(f.state.registry.check(black_box(&pair.access.text), None))
                .expect("check")
        })
    });

    group.sample_size(20);
    group.bench_function("expire_tree_of_1000", |b| {
        b.iter_batched(
            || {
                f.rt.block_on(tokend_bench::insert_tree(&f.db, f.user.id, 1000))
                    .expect("insert tree")
            },
            |root| {
                let expired =
                    f.rt.block_on(f.state.registry.expire_row(&root, true))
                        .expect("expire tree");
                assert_eq!(expired, 1000);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, registry);
criterion_main!(benches);
