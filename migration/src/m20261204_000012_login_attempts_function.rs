//! `tokend_login_attempts`: the count of a username's and an address's
//! login attempts, written once. The server's pre-count calls it, and so
//! does `tokend_login_admit` after its locks; the six columns were written
//! twice before, in the server and in the admission. A `LANGUAGE sql`
//! function of one `SELECT`, `STABLE`: PostgreSQL inlines it into the
//! calling statement (the plan is the plain statement's), and it reads
//! with that statement's snapshot, so the admission's count still sees
//! every admission committed while it waited for the locks. PostgreSQL
//! only, as the admission.

use sea_orm_migration::prelude::*;

use crate::m20261204_000011_login_admit_function::{
    CREATE as ADMIT_BEFORE, admit_signature, attempts_columns, attempts_count, on_postgres,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The count of migration 000011's admission, as a function of its own.
const CREATE_ATTEMPTS: &str = concat!(
    "
CREATE FUNCTION tokend_login_attempts(
    name_key text, address_key text, since timestamptz, stale_before timestamptz)
",
    attempts_columns!(),
    "
LANGUAGE sql STABLE
AS $$
",
    attempts_count!(),
    "
$$
"
);

/// The admission of migration 000011, counting through the function.
const ADMIT: &str = concat!(
    "
CREATE OR REPLACE FUNCTION ",
    admit_signature!(),
    "
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(by_name), pg_advisory_xact_lock(by_address);
    RETURN QUERY SELECT * FROM tokend_login_attempts(
        NULLIF(new_username, ''), NULLIF(new_address, ''), since, stale_before);
    INSERT INTO login_failures (id, username, client_address, failed_at, pending)
        VALUES (attempt, new_username, new_address, attempted_at, true);
END
$$
"
);

const DROP_ATTEMPTS: &str =
    "DROP FUNCTION tokend_login_attempts(text, text, timestamptz, timestamptz)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, CREATE_ATTEMPTS).await?;
        on_postgres(manager, ADMIT).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let admit_before =
            ADMIT_BEFORE.replacen("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1);
        on_postgres(manager, &admit_before).await?;
        on_postgres(manager, DROP_ATTEMPTS).await
    }
}
