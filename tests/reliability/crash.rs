//! Crash safety: SIGKILL under load, restart, and every token a client
//! received is in the registry and behaves as the registry says; a chain
//! whose last answer died with the server retries it within the reuse grace
//! and goes on.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use entity::tokens;
use futures_util::{StreamExt, stream};
use rand::Rng;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use common::process::{Api, Launch, Server, exclusive};
use common::{ADMIN_PASSWORD, TestDatabase, jti};

/// Concurrent clients during the load.
const CLIENTS: usize = 16;
/// Refreshes a client makes on one chain before it obtains a new pair.
const REFRESHES_PER_CHAIN: usize = 40;

/// Long enough for a kill, a restart and the check of every token in a
/// debug build: the retries come within it.
const REUSE_GRACE: &str = "120s";

/// What one client was handed: a pair, then each rotation's pair, in order.
#[derive(Debug, Default, Clone)]
struct Chain {
    refresh: Vec<String>,
    access: Vec<String>,
}

impl Chain {
    fn head(&self) -> &str {
        self.refresh.last().expect("a chain starts with a pair")
    }
}

/// Every chain handed out, and the chain each client is working on.
#[derive(Default)]
struct Received {
    chains: Vec<Chain>,
    current: [Option<usize>; CLIENTS],
}

type Shared = Arc<Mutex<Received>>;

fn kills() -> usize {
    std::env::var("TOKEND_RELIABILITY_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(4)
}

#[tokio::test]
async fn tokens_survive_sigkill_under_load_and_behave_as_the_registry_says() {
    let _guard = exclusive().await;
    let db = TestDatabase::fresh().await;
    let mut launch = Launch::new(&db);
    launch.set("TOKEND_ROTATE_REFRESH_TOKENS", "true");
    launch.set("TOKEND_REFRESH_REUSE_GRACE", REUSE_GRACE);
    let received: Shared = Arc::default();
    let mut rng = rand::thread_rng();

    // A kill during the very first start: migrations and the first admin
    // may be half done, and the next start must finish them on its own.
    let startup_kill = Duration::from_millis(rng.gen_range(0..400));
    let mut server = launch.spawn(&["serve"]).await;
    tokio::time::sleep(startup_kill).await;
    server.kill();
    let mut server = launch.start().await;

    // Each client starts with a pair (argon2 in a debug build is slow: the
    // first obtains are not part of the timed load).
    let warm_up: Vec<_> = (0..CLIENTS)
        .map(|slot| tokio::spawn(start_chain(server.api(), received.clone(), slot)))
        .collect();
    for w in warm_up {
        assert!(w.await.expect("warm-up task"), "warm-up obtain");
    }

    let mut figures = vec![format!(
        "kill 0 during the first start, after {} ms",
        startup_kill.as_millis()
    )];
    for round in 1..=kills() {
        let kill_after = Duration::from_millis(rng.gen_range(200..2500));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|slot| tokio::spawn(client(server.api(), received.clone(), slot)))
            .collect();
        tokio::time::sleep(kill_after).await;
        server.kill();
        for c in clients {
            c.await.expect("client task");
        }
        server.assert_no_panic();
        // What the registry says is read once the dead server's sessions
        // have ended: a backend may commit what it was sent after its
        // client died.
        let (left, waited) = dead_server_sessions_end(&db).await;

        server = launch.start().await;
        let checked = check(&server, &db, &received).await;
        figures.push(format!(
            "kill {round} under load after {} ms ({left} sessions of it still open, \
             all ended within {} ms): {} tokens checked, \
             {} issues committed whose answer died, \
             {} chains retried their lost refresh and went on",
            kill_after.as_millis(),
            waited.as_millis(),
            checked.tokens,
            checked.undelivered,
            checked.retried
        ));
    }
    server.assert_no_panic();
    eprintln!(
        "crash safety on {}:\n  {}",
        if db.pg().is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        figures.join("\n  ")
    );
}

/// On PostgreSQL, waits until every session of the killed server has
/// ended: a backend whose client died may still be running what the client
/// sent before it died, up to its `COMMIT`. Returns how many sessions were
/// left at first, and how long they took to end.
async fn dead_server_sessions_end(db: &TestDatabase) -> (i64, Duration) {
    use sea_orm::{ConnectionTrait, Statement};
    if db.pg().is_none() {
        return (0, Duration::ZERO);
    }
    let conn = db.connect().await;
    let started = std::time::Instant::now();
    let count = || async {
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ))
            .await
            .expect("count sessions")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("n")
    };
    let left = count().await;
    let mut now = left;
    while now > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{now} sessions of a dead server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        now = count().await;
    }
    conn.close().await.ok();
    (left, started.elapsed())
}

/// Obtains a pair and makes it the slot's chain; false when the server is gone.
async fn start_chain(server: Api, received: Shared, slot: usize) -> bool {
    let Ok(resp) = server.obtain("admin", ADMIN_PASSWORD).await else {
        return false;
    };
    assert_eq!(resp.status(), StatusCode::OK, "obtain under load");
    let Ok(body) = resp.json::<Value>().await else {
        return false;
    };
    let mut received = received.lock().expect("received");
    received.chains.push(Chain {
        refresh: vec![text(&body["refresh"])],
        access: vec![text(&body["access"])],
    });
    received.current[slot] = Some(received.chains.len() - 1);
    true
}

/// Refreshes its chain again and again, now and then starting a new one,
/// and records everything it receives; stops when the server is gone.
async fn client(server: Api, received: Shared, slot: usize) {
    loop {
        let work = {
            let r = received.lock().expect("received");
            r.current[slot]
                .filter(|&i| r.chains[i].refresh.len() <= REFRESHES_PER_CHAIN)
                .map(|i| (i, r.chains[i].head().to_owned()))
        };
        let Some((index, head)) = work else {
            if start_chain(server.clone(), received.clone(), slot).await {
                continue;
            }
            return;
        };
        let Ok(resp) = server.refresh(&head).await else {
            return;
        };
        assert_eq!(resp.status(), StatusCode::OK, "refresh under load");
        let Ok(body) = resp.json::<Value>().await else {
            return;
        };
        let mut r = received.lock().expect("received");
        r.chains[index].refresh.push(text(&body["refresh"]));
        r.chains[index].access.push(text(&body["access"]));
    }
}

fn text(v: &Value) -> String {
    v.as_str().expect("a token string").to_owned()
}

struct Checked {
    tokens: usize,
    undelivered: usize,
    /// Chains whose head had been rotated by a refresh whose answer died.
    retried: usize,
}

/// Every token received is registered, the registry has no half-registered
/// issue, and the server treats each token as its row says.
async fn check(server: &Server, db: &TestDatabase, received: &Shared) -> Checked {
    let conn = db.connect().await;
    let rows: HashMap<uuid::Uuid, tokens::Model> = tokens::Entity::find()
        .all(&conn)
        .await
        .expect("read the registry")
        .into_iter()
        .map(|r| (r.jti, r))
        .collect();
    assert_registry_is_whole(&rows);

    let snapshot: Vec<Chain> = received.lock().expect("received").chains.clone();
    let now = Utc::now();
    let mut expectations = Vec::new();
    for chain in &snapshot {
        for token in chain.refresh.iter().chain(&chain.access) {
            let row = rows
                .get(&jti(token))
                .unwrap_or_else(|| panic!("a delivered token is not in the registry"));
            assert!(row.user_id.is_some() && row.device_id.is_some(), "{row:?}");
            expectations.push((token.clone(), tokend::store::tokens::is_active(row, now)));
        }
    }
    let tokens = expectations.len();
    // verify is registry-aware and changes nothing; access tokens also get /me.
    let results: Vec<_> = stream::iter(expectations)
        .map(|(token, active)| async move {
            let verify = server.verify(&token).await.expect("verify").status();
            let me = if jti_type(&token) == "access" {
                Some(server.me(&token).await.expect("me").status())
            } else {
                None
            };
            (token, active, verify, me)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (token, active, verify, me) in results {
        let want = if active {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        if verify != want {
            // What the registry says now, beside what it said before.
            let now_row = tokens::Entity::find()
                .filter(tokens::Column::Jti.eq(jti(&token)))
                .one(&conn)
                .await;
            panic!(
                "verify of a {} token: {verify}, where its row said {want}\n\
                 row read before: {:?}\nrow now: {now_row:?}",
                jti_type(&token),
                rows.get(&jti(&token)),
            );
        }
        if let Some(me) = me {
            assert_eq!(me, want, "/me with an access token");
        }
    }

    // The head of every chain refreshes. A head used up by a rotation whose
    // answer died with the server is a retry within the grace: it gets the
    // successor the registry holds for it, and the chain goes on.
    let mut retried = 0;
    for (i, chain) in snapshot.iter().enumerate() {
        let row = &rows[&jti(chain.head())];
        assert!(row.expired_at.is_none(), "nothing expired a head: {row:?}");
        let resp = server.refresh(chain.head()).await.expect("refresh");
        assert_eq!(resp.status(), StatusCode::OK, "every chain goes on");
        let body: Value = resp.json().await.expect("json");
        let refresh = text(&body["refresh"]);
        if row.rotated_at.is_some() {
            let successor = rows
                .values()
                .find(|r| r.parent_id == Some(row.id) && r.token_type == "refresh")
                .expect("a rotated head has its successor");
            assert_eq!(
                jti(&refresh),
                successor.jti,
                "the retry gets the lost answer's successor"
            );
            retried += 1;
        }
        let mut r = received.lock().expect("received");
        r.chains[i].refresh.push(refresh);
        r.chains[i].access.push(text(&body["access"]));
    }

    conn.close().await.ok();
    let delivered: usize = snapshot.iter().map(|c| c.refresh.len()).sum();
    let registered = rows.values().filter(|r| r.token_type == "refresh").count();
    Checked {
        tokens,
        undelivered: registered.saturating_sub(delivered),
        retried,
    }
}

fn jti_type(token: &str) -> String {
    common::claims(token)["token_type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every issue wrote its whole pair: each refresh token has an access child
/// (more when a retry within the grace came for it), a rotated one exactly
/// one refresh successor, an active one none; every access token hangs off
/// a refresh token; every root exists.
fn assert_registry_is_whole(rows: &HashMap<uuid::Uuid, tokens::Model>) {
    let by_id: HashMap<uuid::Uuid, &tokens::Model> = rows.values().map(|r| (r.id, r)).collect();
    let mut access_children: HashMap<uuid::Uuid, usize> = HashMap::new();
    let mut refresh_children: HashMap<uuid::Uuid, usize> = HashMap::new();
    for row in by_id.values() {
        assert!(by_id.contains_key(&row.root_id), "missing root: {row:?}");
        assert!(row.user_id.is_some() && row.device_id.is_some(), "{row:?}");
        match (row.token_type.as_str(), row.parent_id) {
            ("access", Some(parent)) => {
                assert_eq!(by_id[&parent].token_type, "refresh", "{row:?}");
                *access_children.entry(parent).or_default() += 1;
            }
            ("access", None) => panic!("an access token without its refresh token: {row:?}"),
            ("refresh", Some(parent)) => *refresh_children.entry(parent).or_default() += 1,
            ("refresh", None) => {}
            (other, _) => panic!("unexpected token type {other}"),
        }
    }
    for row in by_id.values().filter(|r| r.token_type == "refresh") {
        assert!(
            access_children.get(&row.id).copied().unwrap_or(0) >= 1,
            "a refresh token without its access token: {row:?}"
        );
        let successors = refresh_children.get(&row.id).copied().unwrap_or(0);
        let want = usize::from(row.rotated_at.is_some());
        assert_eq!(successors, want, "successors of {row:?}");
    }
}
