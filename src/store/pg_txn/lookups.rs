//! PostgreSQL: the look-up of a token by its `jti`, which every
//! authenticated call makes, in groups. One look-up per round trip cost
//! each call a switch to a PostgreSQL process and back on the same cores;
//! here the look-ups waiting when a reader is free go as one statement
//! (`WHERE t.jti = ANY($1)`), and each caller gets its own row.
//!
//! A look-up joins only a statement not yet sent, so the statement's
//! snapshot is taken after the caller asked: it sees every expiry committed
//! before the call, as a look-up of its own would.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use entity::{tokens, users};
use sea_orm::{
    DbErr,
    error::ConnAcquireErr,
    sqlx::{self, postgres::PgRow},
};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::{Found, decode_row};
use crate::{
    db::pg_conns::{PgConns, sqlx_error},
    error::{Error, Result},
};

/// Statements in flight at once: one per core of the machine this was
/// measured on; a third waits anyway.
const READERS: usize = 2;

/// Look-ups waiting at most; more wait for room, within `database_timeout`.
const QUEUE_CAPACITY: usize = 1024;

/// `jti`s of one statement at most.
const MAX_GROUP: usize = 256;

struct Ask {
    jti: Uuid,
    reply: oneshot::Sender<Result<Found>>,
}

/// The way to the readers; they stop when the last clone is dropped.
#[derive(Clone)]
pub struct Lookups {
    queue: mpsc::Sender<Ask>,
    conns: Arc<PgConns>,
    /// Statements sent so far (read by the tests).
    #[cfg(test)]
    pub(in crate::store) groups: Arc<AtomicU64>,
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups").finish_non_exhaustive()
    }
}

impl Lookups {
    /// Starts the readers on the current runtime.
    pub fn start(conns: Arc<PgConns>) -> Self {
        let (queue, asks) = mpsc::channel(QUEUE_CAPACITY);
        let asks = Arc::new(Mutex::new(asks));
        let groups = Arc::default();
        for _ in 0..READERS {
            tokio::spawn(serve(
                Arc::clone(&conns),
                Arc::clone(&asks),
                Arc::clone(&groups),
            ));
        }
        Lookups {
            queue,
            conns,
            #[cfg(test)]
            groups,
        }
    }

    /// The row of `jti`, with its user, as the next statement sent reads it;
    /// within `database_timeout`.
    pub async fn find(&self, jti: Uuid) -> Result<Found> {
        self.conns
            .within(async {
                let (reply, answer) = oneshot::channel();
                // Readers gone: as a closed pool would answer.
                let stopped =
                    || Error::from(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed));
                self.queue
                    .send(Ask { jti, reply })
                    .await
                    .map_err(|_| stopped())?;
                answer.await.unwrap_or_else(|_| Err(stopped()))
            })
            .await
    }
}

/// A reader: takes every look-up waiting, reads their rows in one
/// statement, answers each.
async fn serve(conns: Arc<PgConns>, asks: Arc<Mutex<mpsc::Receiver<Ask>>>, groups: Arc<AtomicU64>) {
    loop {
        let group = {
            let mut asks = asks.lock().await;
            let Some(first) = asks.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match asks.try_recv() {
                    Ok(ask) => group.push(ask),
                    Err(_) => break,
                }
            }
            group
        };
        let jtis: Vec<Uuid> = group.iter().map(|ask| ask.jti).collect();
        groups.fetch_add(1, Ordering::Relaxed);
        match conns.within(read(&conns, &jtis)).await {
            Ok(found) => {
                // Calls with one token ask for the same `jti`: each gets the row.
                for ask in group {
                    let _ = ask.reply.send(Ok(found.get(&ask.jti).cloned()));
                }
            }
            Err(e) => {
                // Every look-up of the group fails as the statement did, each
                // sorted (unavailable or not) and counted as one of its own.
                for ask in group {
                    let _ = ask.reply.send(Err(Error::from(e.clone())));
                }
            }
        }
    }
}

/// The rows of `jtis`, with their users, by `jti`.
async fn read(
    conns: &Arc<PgConns>,
    jtis: &[Uuid],
) -> std::result::Result<HashMap<Uuid, (tokens::Model, Option<users::Model>)>, DbErr> {
    const SQL: &str = pg_token_query!("WHERE t.jti = ANY($1)");
    let mut lent = conns.lend().await?;
    let rows: std::result::Result<Vec<PgRow>, DbErr> = sqlx::query(SQL)
        .bind(jtis)
        .fetch_all(lent.conn())
        .await
        .map_err(sqlx_error);
    lent.give_back_unless_broken(rows)?
        .into_iter()
        .map(|row| {
            let (token, user) = decode_row(&sea_orm::QueryResult::from(row))?;
            Ok((token.jti, (token, user)))
        })
        .collect()
}
