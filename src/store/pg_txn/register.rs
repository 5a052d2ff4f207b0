//! A registration on PostgreSQL: its device and rows in one statement.

use entity::tokens;
use sea_orm::sqlx::{self, Postgres, postgres::PgArguments, query::Query};
use uuid::Uuid;

use super::{LAST_SEEN_STEP, PgTxn, State};
use crate::{error::Result, store::Registration};

/// The rows of a registration, one array parameter per column.
macro_rules! unnest_rows {
    () => {
        "UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[], \
         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], \
         $11::uuid[]) AS r(id, jti, token_type, parent_id, root_id, user_id, issued_at, \
         expires_at, expired_at, rotated_at, device_id)"
    };
}

macro_rules! insert_tokens {
    () => {
        "INSERT INTO tokens (id, jti, token_type, parent_id, root_id, user_id, issued_at, \
         expires_at, expired_at, rotated_at, device_id) "
    };
}

pub(super) const WITHOUT_DEVICE: &str =
    concat!(insert_tokens!(), "SELECT r.* FROM ", unnest_rows!());
/// One row, or two (a rotation's), of a known device: their values as
/// parameters, which PostgreSQL plans and binds more cheaply than eleven
/// one-element arrays unnested.
const ONE_ROW: &str = concat!(
    insert_tokens!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);
const TWO_ROWS: &str = concat!(
    insert_tokens!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11), \
     ($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
);
// The device's row is written only when it is new or its
// `last_seen` is older than LAST_SEEN_STEP: a row written is locked
// until the commit, and every refresh from one device would queue
// behind the one before, WAL flush and all.
const WITH_DEVICE: &str = concat!(
    "WITH found AS (SELECT id FROM devices WHERE user_id = $13::uuid \
     AND user_agent = $14::text AND client_address = $15::text), \
     inserted AS (INSERT INTO devices \
     (id, user_id, user_agent, client_address, first_seen, last_seen) \
     SELECT $12::uuid, $13::uuid, $14::text, $15::text, $16::timestamptz, \
     $16::timestamptz WHERE NOT EXISTS (SELECT 1 FROM found) \
     ON CONFLICT (user_id, user_agent, client_address) \
     DO UPDATE SET last_seen = excluded.last_seen RETURNING id), \
     touched AS (UPDATE devices SET last_seen = $16::timestamptz \
     WHERE id IN (SELECT id FROM found) AND last_seen < $17::timestamptz), \
     device AS (SELECT id FROM found UNION ALL SELECT id FROM inserted) ",
    insert_tokens!(),
    "SELECT r.id, r.jti, r.token_type, r.parent_id, r.root_id, r.user_id, \
     r.issued_at, r.expires_at, r.expired_at, r.rotated_at, device.id FROM ",
    unnest_rows!(),
    " CROSS JOIN device"
);

impl PgTxn {
    /// As [`TokenTxn::register`](crate::store::TokenTxn::register): the
    /// device and the rows in one statement; `Ok(false)` when a row points
    /// to a user or parent that is gone.
    pub(in crate::store) async fn register(&self, registration: Registration) -> Result<bool> {
        let Registration {
            mut rows,
            mut device,
        } = registration;
        // From the device of the token the transaction opened, seen lately: the
        // statement that would not write its row anyway needs only its id.
        let mut state = self.0.lock().await;
        if let (Some(new), Some(known)) = (&device, &state.device)
            && known.user_id == Some(new.user_id)
            && known.user_agent == new.user_agent
            && known.client_address == new.client_address
            && known.last_seen >= new.seen_at - LAST_SEEN_STEP
        {
            for row in &mut rows {
                row.device_id = Some(known.id);
            }
            device = None;
        }
        if rows.is_empty() && device.is_none() {
            return Ok(true);
        }
        if device.is_none()
            && !state.wrote
            && let Some(registrations) = state.registrations.clone()
        {
            // Committed, or not, before the transaction ends: it must not
            // write after this, nor fail for anything but the registration.
            state.apart = true;
            return registrations.register(rows).await;
        }
        state.wrote = true;
        if device.is_none() && rows.len() <= 2 {
            let sql = if rows.len() == 1 { ONE_ROW } else { TWO_ROWS };
            let mut query = sqlx::query(sql);
            for row in rows {
                query = query
                    .bind(row.id)
                    .bind(row.jti)
                    .bind(row.token_type)
                    .bind(row.parent_id)
                    .bind(row.root_id)
                    .bind(row.user_id)
                    .bind(row.issued_at)
                    .bind(row.expires_at)
                    .bind(row.expired_at)
                    .bind(row.rotated_at)
                    .bind(row.device_id);
            }
            let done = query.execute(state.conn().await?).await;
            return outcome(&mut state, done);
        }
        let sql = if device.is_some() {
            WITH_DEVICE
        } else {
            WITHOUT_DEVICE
        };
        let mut query = rows_query(sql, &rows);
        if let Some(device) = device {
            query = query
                .bind(Uuid::now_v7())
                .bind(device.user_id)
                .bind(device.user_agent)
                .bind(device.client_address)
                .bind(device.seen_at)
                .bind(device.seen_at - LAST_SEEN_STEP);
        }
        let done = query.execute(state.conn().await?).await;
        outcome(&mut state, done)
    }
}

/// `sql` with the columns of `rows` bound as its first eleven parameters,
/// one array each, as [`unnest_rows`] reads them.
pub(super) fn rows_query(
    sql: &'static str,
    rows: &[tokens::Model],
) -> Query<'static, Postgres, PgArguments> {
    fn column<T>(rows: &[tokens::Model], f: impl Fn(&tokens::Model) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    sqlx::query(sql)
        .bind(column(rows, |r| r.id))
        .bind(column(rows, |r| r.jti))
        .bind(column(rows, |r| r.token_type.clone()))
        .bind(column(rows, |r| r.parent_id))
        .bind(column(rows, |r| r.root_id))
        .bind(column(rows, |r| r.user_id))
        .bind(column(rows, |r| r.issued_at))
        .bind(column(rows, |r| r.expires_at))
        .bind(column(rows, |r| r.expired_at))
        .bind(column(rows, |r| r.rotated_at))
        .bind(column(rows, |r| r.device_id))
}

/// A registration's answer: `Ok(false)` when a row points to a user or
/// parent that is gone.
fn outcome<T>(state: &mut State, done: Result<T, sqlx::Error>) -> Result<bool> {
    match done {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
        Err(e) => state.check(Err(e)),
    }
}
