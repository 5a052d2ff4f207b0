//! `tokend_login_admit`: a login's admission on PostgreSQL in one round
//! trip. The username's and the address's locks, then the count of their
//! attempts (a statement of its own, so its snapshot is taken after the
//! locks are granted and sees every admission committed meanwhile), then
//! the attempt's row, pending, in one call whose implicit transaction
//! ends with it. The caller decides from the counts (of the attempts
//! before this one) and deletes the row when it refuses. Sent apart
//! (`BEGIN` with the locks, the count, the row, `COMMIT`) these were four
//! round trips to a PostgreSQL process on the cores hashing passwords.
//! A single plain statement cannot do it: its one snapshot would be taken
//! before its locks. SQLite has no such functions and needs none (its
//! writer admits a login in one job).

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The six counts' columns.
macro_rules! attempts_columns {
    () => {
        "RETURNS TABLE (
    name_total bigint, name_pending bigint, name_oldest_failed timestamptz,
    address_total bigint, address_pending bigint, address_oldest_failed timestamptz)"
    };
}
pub(crate) use attempts_columns;

/// The admission's name, arguments and columns (migration 000012 gives it
/// another body under the same).
macro_rules! admit_signature {
    () => {
        concat!(
            "tokend_login_admit(
    by_name bigint, by_address bigint,
    new_username text, new_address text,
    since timestamptz, stale_before timestamptz,
    attempt uuid, attempted_at timestamptz)
",
            attempts_columns!()
        )
    };
}
pub(crate) use admit_signature;

/// A username's (`name_key`) and an address's (`address_key`) attempts
/// since `since`, pending ones stale before `stale_before` counted as
/// failed; a NULL key counts nothing.
macro_rules! attempts_count {
    () => {
        "SELECT
        COUNT(*) FILTER (WHERE username = name_key),
        COUNT(*) FILTER (WHERE username = name_key AND pending AND failed_at > stale_before),
        MIN(failed_at) FILTER (WHERE username = name_key AND NOT (pending AND failed_at > stale_before)),
        COUNT(*) FILTER (WHERE client_address = address_key),
        COUNT(*) FILTER (WHERE client_address = address_key AND pending AND failed_at > stale_before),
        MIN(failed_at) FILTER (WHERE client_address = address_key AND NOT (pending AND failed_at > stale_before))
        FROM login_failures
        WHERE (username = name_key OR client_address = address_key) AND failed_at > since"
    };
}
pub(crate) use attempts_count;

/// An empty username or address counts nothing (`NULLIF`), as the server
/// binds it as NULL.
pub(crate) const CREATE: &str = concat!(
    "\nCREATE FUNCTION ",
    admit_signature!(),
    "
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    name_key text := NULLIF(new_username, '');
    address_key text := NULLIF(new_address, '');
BEGIN
    PERFORM pg_advisory_xact_lock(by_name), pg_advisory_xact_lock(by_address);
    RETURN QUERY ",
    attempts_count!(),
    ";
    INSERT INTO login_failures (id, username, client_address, failed_at, pending)
        VALUES (attempt, new_username, new_address, attempted_at, true);
END
$$
"
);

const DROP: &str = "DROP FUNCTION tokend_login_admit(bigint, bigint, text, text, \
     timestamptz, timestamptz, uuid, timestamptz)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, CREATE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, DROP).await
    }
}

pub(crate) async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}
