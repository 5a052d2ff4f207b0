//! The writer's batches: one commit for the jobs waiting, each job's
//! outcome its own, and a bounded queue.

use std::time::Duration;

use chrono::Utc;
use entity::tokens;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::{
    error::Error,
    store::{Device, Registration, TokenStore, UserStore, tokens::find_by_jti, users::new_user},
    store::{test_row as row, test_sqlite as sqlite},
};

fn only(rows: Vec<tokens::Model>) -> Registration {
    Registration { rows, device: None }
}

/// Waits until `jobs` wait in the writer's queue (behind the one it holds
/// while it waits for its turn): those run together, in one batch.
async fn queued(store: &TokenStore, jobs: usize) {
    let writer = store
        .writer
        .as_ref()
        .expect("SQLite in a file has a writer");
    while writer.waiting() < jobs {
        tokio::task::yield_now().await;
    }
}

/// One job that fails (after writing) and one whose row points to a user
/// that does not exist, in the same batch as jobs that succeed: the two
/// fail alone, nothing they wrote stays, and the others commit.
#[tokio::test]
async fn a_failing_job_fails_alone_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let store = TokenStore::new(db.clone());
    let now = Utc::now();
    let presented = row(None, now);
    let first = only(vec![presented.clone()]);
    store
        .write(move |txn| async move { txn.register(first).await })
        .await
        .unwrap();
    let batches_before = store.writer.as_ref().unwrap().batches();

    let turn = db.write_turn().await;
    let mut answers = Vec::new();
    // The job the writer takes first, then waits with for the turn.
    let good = row(None, now);
    let (s, g) = (store.clone(), only(vec![good.clone()]));
    answers.push(tokio::spawn(async move {
        s.write(move |txn| async move { txn.register(g).await.map(|_| ()) })
            .await
    }));
    while store.writer.as_ref().unwrap().waiting() > 0 {
        tokio::task::yield_now().await;
    }
    // Rotates a token, then refuses: the rotation must not stay.
    let (s, id) = (store.clone(), presented.id);
    answers.push(tokio::spawn(async move {
        s.write(move |txn| async move {
            assert!(txn.rotate(id, now).await?);
            Err::<(), _>(Error::TokenNotValid)
        })
        .await
    }));
    // A row whose user does not exist: the foreign key refuses it.
    let (s, orphan) = (store.clone(), only(vec![row(Some(Uuid::new_v4()), now)]));
    answers.push(tokio::spawn(async move {
        s.write(move |txn| async move {
            match txn.register(orphan).await? {
                true => Ok(()),
                false => Err(Error::NoActiveAccount),
            }
        })
        .await
    }));
    let later = row(None, now);
    let (s, l) = (store.clone(), only(vec![later.clone()]));
    answers.push(tokio::spawn(async move {
        s.write(move |txn| async move { txn.register(l).await.map(|_| ()) })
            .await
    }));
    queued(&store, 3).await;
    drop(turn);

    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(answer.await.unwrap());
    }
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[1], Err(Error::TokenNotValid)));
    assert!(matches!(outcomes[2], Err(Error::NoActiveAccount)));
    assert!(outcomes[3].is_ok(), "{:?}", outcomes[3]);
    assert_eq!(
        store.writer.as_ref().unwrap().batches() - batches_before,
        1,
        "the four jobs were not committed together"
    );
    for kept in [&good, &later] {
        assert!(find_by_jti(&db.read, kept.jti).await.unwrap().is_some());
    }
    let (presented, _) = find_by_jti(&db.read, presented.jti).await.unwrap().unwrap();
    assert_eq!(presented.rotated_at, None, "a failed job's write stayed");
}

/// When the queue is full for `database_timeout`, a write is refused as
/// unavailable (a 503) instead of joining an unbounded backlog; the jobs
/// already queued still commit.
#[tokio::test]
async fn a_full_queue_refuses_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let writer = super::SqliteWriter::with_capacity(
        db.sqlite_file().unwrap().to_owned(),
        Duration::from_millis(200),
        db.write_gate(),
        2,
    );
    let writer = std::sync::Arc::new(writer);
    let turn = db.write_turn().await;
    let now = Utc::now();
    let mut queued = Vec::new();
    let mut rows = Vec::new();
    // One the batch task holds while it waits for the turn, two in the queue.
    for _ in 0..3 {
        let (w, r) = (writer.clone(), row(None, now));
        rows.push(r.clone());
        queued.push(tokio::spawn(async move {
            w.write(move |txn| async move { txn.register(only(vec![r])).await })
                .await
        }));
        tokio::task::yield_now().await;
    }
    while writer.waiting() < 2 {
        tokio::task::yield_now().await;
    }
    let refused = writer
        .write(move |txn| async move { txn.register(only(vec![row(None, now)])).await })
        .await;
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
    drop(turn);
    for job in queued {
        assert!(job.await.unwrap().unwrap());
    }
    for r in rows {
        assert!(find_by_jti(&db.read, r.jti).await.unwrap().is_some());
    }
}

/// The task that runs the batches can end with jobs still queued: here the
/// runtime it runs on shuts down while it waits for the turn. The jobs
/// waiting then fail at once, instead of waiting for a task that is gone,
/// and the next job starts a task of its own, which commits it.
#[tokio::test]
async fn a_batch_runner_that_is_gone_leaves_no_write_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let writer = std::sync::Arc::new(super::SqliteWriter::start(
        db.sqlite_file().unwrap().to_owned(),
        Duration::from_secs(5),
        db.write_gate(),
    ));
    let now = Utc::now();
    let turn = db.write_turn().await;

    // Another runtime queues a job; the task it starts takes the job and
    // waits for the turn.
    let (taken, taken_rx) = tokio::sync::oneshot::channel();
    let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
    let w = writer.clone();
    let other = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let w2 = w.clone();
            tokio::spawn(async move {
                w2.write(move |txn| async move { txn.register(only(vec![row(None, now)])).await })
                    .await
            });
            // Taken: the lead is held and the queue is empty.
            while !(w.leading() && w.waiting() == 0) {
                tokio::task::yield_now().await;
            }
        });
        taken.send(()).unwrap();
        stop_rx.recv().unwrap();
        drop(runtime);
    });
    taken_rx.await.unwrap();

    // A job queued behind it, then that runtime gone.
    let w = writer.clone();
    let waiting = tokio::spawn(async move {
        w.write(move |txn| async move { txn.register(only(vec![row(None, now)])).await })
            .await
    });
    while writer.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("a queued write waited for a batch runner that is gone")
        .unwrap();
    assert!(matches!(answer, Err(Error::Unavailable(_))), "{answer:?}");
    other.join().unwrap();

    drop(turn);
    let next = row(None, now);
    let stored = next.clone();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        writer.write(move |txn| async move { txn.register(only(vec![stored])).await }),
    )
    .await
    .expect("the next write found no batch runner");
    assert!(answer.unwrap());
    assert!(find_by_jti(&db.read, next.jti).await.unwrap().is_some());
}

/// The writer stores values in sqlx's forms: the text of a row and its
/// device written by each is the same, so SQL comparisons and both readers
/// see them alike.
#[tokio::test]
async fn the_writer_stores_what_sea_orm_stores() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let store = TokenStore::new(db.clone());
    let now = Utc::now();
    let user = new_user("ann".into(), "ann".into(), "h".into(), false, true, now);
    UserStore::new(db.clone())
        .insert(user.clone())
        .await
        .unwrap();
    let by_writer = row(Some(user.id), now);
    let by_sea_orm = tokens::Model {
        id: Uuid::now_v7(),
        jti: Uuid::new_v4(),
        ..by_writer.clone()
    };
    let device = |agent: &str| Device {
        user_id: user.id,
        user_agent: agent.into(),
        client_address: "10.0.0.1".into(),
        seen_at: now,
    };
    let registration = Registration {
        rows: vec![by_writer.clone()],
        device: Some(device("writer")),
    };
    store
        .write(move |txn| async move { txn.register(registration).await })
        .await
        .unwrap();
    // The same registration through sea-orm (what PostgreSQL runs).
    let registration = Registration {
        rows: vec![by_sea_orm.clone()],
        device: Some(device("sea-orm")),
    };
    let sea = TokenStore::through_sea_orm(db.clone());
    sea.write(move |txn| async move { txn.register(registration).await })
        .await
        .unwrap();

    let text = |id: Uuid| {
        let db = db.clone();
        async move {
            let sql = "SELECT typeof(t.id) || typeof(t.jti) || typeof(t.user_id) || \
                 typeof(t.device_id), t.issued_at, t.expires_at, d.first_seen, d.last_seen \
                 FROM tokens t JOIN devices d ON d.id = t.device_id WHERE t.id = ?";
            let found = db
                .read
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    sql,
                    [id.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            (0..5)
                .map(|i| found.try_get_by_index::<String>(i).unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(text(by_writer.id).await, text(by_sea_orm.id).await);
    let (read_back, owner) = find_by_jti(&db.read, by_writer.jti).await.unwrap().unwrap();
    assert_eq!(owner.map(|u| u.id), Some(user.id));
    assert_eq!(
        tokens::Model {
            device_id: None,
            ..read_back
        },
        by_writer
    );
}

/// Every `CHECKPOINT_EVERY` commits the writer asks for a WAL checkpoint,
/// and another thread makes it: the writer's own autocheckpoint, which held
/// up the batch behind it for milliseconds, is only a backstop.
#[tokio::test]
async fn checkpoints_are_made_off_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir).await;
    let store = TokenStore::new(db.clone());
    let writer = store.writer.as_ref().unwrap();
    let now = Utc::now();
    // Each write awaited before the next: one commit each.
    for _ in 0..crate::store::sqlite_checkpoints::CHECKPOINT_EVERY {
        let r = only(vec![row(None, now)]);
        store
            .write(move |txn| async move { txn.register(r).await })
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while writer.checkpoints() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was made"
        );
        tokio::task::yield_now().await;
    }
}
