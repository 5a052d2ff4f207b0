//! PostgreSQL: the registrations of refreshes, in groups. Each refresh
//! wrote its row and committed on its own connection: a statement and a
//! commit (a WAL flush) per refresh, each a round trip to a PostgreSQL
//! process on the same cores. Here the registrations waiting when the
//! writer is free go as one statement, committed by itself, on a
//! connection the writer holds for itself.
//!
//! Only a transaction that [`open`](super::open) began, and that has
//! written nothing, registers here: it holds the shared locks of its tree
//! and user while it waits, so an expiry of either waits for the group's
//! commit and then expires the new rows too, as it would have if the
//! transaction had written them itself.
//!
//! A registration that fails must not fail its neighbours: when the group's
//! statement is refused (a row whose parent or user is gone), each
//! registration of the group is written again alone, and only that one is
//! refused.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use entity::tokens;
use sea_orm::{
    DbErr,
    error::ConnAcquireErr,
    sqlx::{self, postgres::PgConnection},
};
use tokio::sync::{mpsc, oneshot};

use super::register::{WITHOUT_DEVICE, rows_query};
use crate::{
    db::pg_conns::{PgConns, sqlx_error, still_usable},
    error::{Error, Result},
};

/// Registrations waiting at most; more wait for room, within
/// `database_timeout`.
const QUEUE_CAPACITY: usize = 1024;

/// Registrations of one statement at most.
const MAX_GROUP: usize = 256;

struct Submitted {
    rows: Vec<tokens::Model>,
    reply: oneshot::Sender<Result<bool>>,
}

/// The way to the writer; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct Registrations {
    queue: mpsc::Sender<Submitted>,
    /// Statements sent so far, groups and registrations written again
    /// alone (read by the tests).
    #[cfg(test)]
    pub(in crate::store) statements: Arc<AtomicU64>,
}

impl std::fmt::Debug for Registrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrations").finish_non_exhaustive()
    }
}

impl Registrations {
    /// Starts the writer on the current runtime.
    pub fn start(conns: Arc<PgConns>) -> Self {
        let (queue, submitted) = mpsc::channel(QUEUE_CAPACITY);
        let statements = Arc::default();
        tokio::spawn(serve(conns, submitted, Arc::clone(&statements)));
        Registrations {
            queue,
            #[cfg(test)]
            statements,
        }
    }

    /// Writes `rows` and commits them, with the registrations waiting
    /// beside them: `Ok(false)` when a row points to a user or parent that
    /// is gone. The caller bounds the wait (`database_timeout`).
    pub async fn register(&self, rows: Vec<tokens::Model>) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Submitted { rows, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The writer gone or the connections closed: as a closed pool answers.
fn stopped() -> Error {
    Error::from(closed())
}

fn closed() -> DbErr {
    DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)
}

/// The writer: takes every registration waiting, writes them in one
/// statement, answers each.
async fn serve(
    conns: Arc<PgConns>,
    mut submitted: mpsc::Receiver<Submitted>,
    statements: Arc<AtomicU64>,
) {
    let mut held: Option<PgConnection> = None;
    while let Some(first) = submitted.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match submitted.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        if conns.is_closed() {
            held = None;
            for each in group {
                let _ = each.reply.send(Err(stopped()));
            }
            continue;
        }
        let conn = held.take();
        // Past the deadline the connection is dropped with the statement:
        // nobody knows whether it committed, and the callers have gone.
        let written = conns
            .within(write_group(&conns, conn, &group, &statements))
            .await;
        match written {
            Ok((conn, outcomes)) => {
                held = conn;
                for (each, outcome) in group.into_iter().zip(outcomes) {
                    let _ = each.reply.send(outcome);
                }
            }
            Err(e) => {
                for each in group {
                    let _ = each.reply.send(Err(Error::from(e.clone())));
                }
            }
        }
    }
}

/// Writes the group's rows in one statement, or, when a row is refused,
/// each registration alone; gives back the connection while it is sound.
async fn write_group(
    conns: &PgConns,
    conn: Option<PgConnection>,
    group: &[Submitted],
    statements: &AtomicU64,
) -> std::result::Result<(Option<PgConnection>, Vec<Result<bool>>), DbErr> {
    let mut conn = match conn {
        Some(conn) => conn,
        None => conns.connect().await?,
    };
    let all: Vec<tokens::Model> = group.iter().flat_map(|s| s.rows.iter().cloned()).collect();
    statements.fetch_add(1, Ordering::Relaxed);
    match insert(&mut conn, &all).await {
        Ok(()) => return Ok((Some(conn), group.iter().map(|_| Ok(true)).collect())),
        Err(Refused::Row) if group.len() > 1 => {}
        Err(Refused::Row) => return Ok((Some(conn), vec![Ok(false)])),
        Err(Refused::Other(e)) => {
            let conn = still_usable(&e).then_some(conn);
            return Ok((
                conn,
                group.iter().map(|_| Err(Error::from(e.clone()))).collect(),
            ));
        }
    }
    let mut outcomes = Vec::with_capacity(group.len());
    for each in group {
        statements.fetch_add(1, Ordering::Relaxed);
        match insert(&mut conn, &each.rows).await {
            Ok(()) => outcomes.push(Ok(true)),
            Err(Refused::Row) => outcomes.push(Ok(false)),
            Err(Refused::Other(e)) if still_usable(&e) => outcomes.push(Err(Error::from(e))),
            // The connection is gone: this one and the rest fail with it.
            Err(Refused::Other(e)) => {
                outcomes.resize_with(group.len(), || Err(Error::from(e.clone())));
                return Ok((None, outcomes));
            }
        }
    }
    Ok((Some(conn), outcomes))
}

enum Refused {
    /// A row points to a user or parent that is gone.
    Row,
    Other(DbErr),
}

/// Inserts `rows` in one statement, its own transaction.
async fn insert(
    conn: &mut PgConnection,
    rows: &[tokens::Model],
) -> std::result::Result<(), Refused> {
    match rows_query(WITHOUT_DEVICE, rows).execute(conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(Refused::Row),
        Err(e) => Err(Refused::Other(sqlx_error(e))),
    }
}
