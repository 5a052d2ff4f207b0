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

use crate::m20261204_000011_login_admit_function::{CREATE as ADMIT_BEFORE, on_postgres};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// An attempt is `failed` when settled or stale, `pending` while its check
/// runs; a NULL key counts nothing.
const CREATE_ATTEMPTS: &str = r#"
CREATE FUNCTION tokend_login_attempts(
    name_key text, address_key text, since timestamptz, stale_before timestamptz)
RETURNS TABLE (
    name_total bigint, name_pending bigint, name_oldest_failed timestamptz,
    address_total bigint, address_pending bigint, address_oldest_failed timestamptz)
LANGUAGE sql STABLE
AS $$
SELECT
    COUNT(*) FILTER (WHERE username = name_key),
    COUNT(*) FILTER (WHERE username = name_key AND pending AND failed_at > stale_before),
    MIN(failed_at) FILTER (WHERE username = name_key AND NOT (pending AND failed_at > stale_before)),
    COUNT(*) FILTER (WHERE client_address = address_key),
    COUNT(*) FILTER (WHERE client_address = address_key AND pending AND failed_at > stale_before),
    MIN(failed_at) FILTER (WHERE client_address = address_key AND NOT (pending AND failed_at > stale_before))
    FROM login_failures
    WHERE (username = name_key OR client_address = address_key) AND failed_at > since
$$
"#;

/// The admission of migration 000011, counting through the function.
const ADMIT: &str = r#"
CREATE OR REPLACE FUNCTION tokend_login_admit(
    by_name bigint, by_address bigint,
    new_username text, new_address text,
    since timestamptz, stale_before timestamptz,
    attempt uuid, attempted_at timestamptz)
RETURNS TABLE (
    name_total bigint, name_pending bigint, name_oldest_failed timestamptz,
    address_total bigint, address_pending bigint, address_oldest_failed timestamptz)
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
"#;

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
