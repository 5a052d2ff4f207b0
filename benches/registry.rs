//! The registry's database work on SQLite: registering a pair, checking a
//! token, and expiring a whole tree with one UPDATE on `root_id`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use entity::users;
use tokend::{AppState, Config, config::Secret, registry::pipeline::ClientInfo};

/// A prepared instance on a fresh SQLite file, and a user of it.
struct Fixture {
    rt: tokio::runtime::Runtime,
    state: AppState,
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
    let (state, _) = rt
        .block_on(AppState::prepare(config, &[]))
        .expect("prepare");
    let user = rt
        .block_on(state.users.find("admin"))
        .expect("find admin")
        .expect("admin exists");
    Fixture {
        rt,
        state,
        user,
        _dir: dir,
    }
}

fn registry(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("registry");

    group.bench_function("insert_pair_rows", |b| {
        b.iter(|| {
            f.rt.block_on(async {
                use sea_orm::{EntityTrait, TransactionTrait};
                let rows = tokend::bench::pair_rows(f.user.id, chrono::Utc::now(), false, false);
                let txn = f.state.db.write.begin().await.expect("begin");
                entity::tokens::Entity::insert_many(rows)
                    .exec_without_returning(&txn)
                    .await
                    .expect("insert");
                txn.commit().await.expect("commit");
            })
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
            f.rt.block_on(f.state.registry.check(black_box(&pair.access.token), None))
                .expect("check")
        })
    });

    group.sample_size(20);
    group.bench_function("expire_tree_of_1000", |b| {
        b.iter_batched(
            || {
                f.rt.block_on(tokend::bench::insert_tree(&f.state.db, f.user.id, 1000))
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
