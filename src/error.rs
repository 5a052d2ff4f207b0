//! The service's one error type, split into what a caller can act on and the
//! rest. `crate::api::error` maps it to HTTP.

use sea_orm::DbErr;

use crate::telemetry;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the sentence says how.
    #[error("{0}")]
    InvalidRequest(String),
    /// Bad credentials or an inactive user: one answer for both.
    #[error("No active account found with the given credentials")]
    NoActiveAccount,
    /// Malformed, badly signed, expired, revoked, rotated, wrong type, unknown.
    #[error("Token is invalid or expired")]
    TokenNotValid,
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    /// An OAuth client's credentials are missing, unknown or wrong.
    #[error("Client authentication failed: send a registered client's id and secret.")]
    InvalidClient,
    /// A token tokend cannot revoke (an anonymous container registry
    /// token, which is not registered).
    #[error("This kind of token cannot be revoked.")]
    UnsupportedTokenType,
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("Request was throttled. Expected available in {retry_after} seconds.")]
    Throttled { retry_after: u64 },
    /// The database could not be reached in time.
    #[error("The service is unavailable, try again later.")]
    Unavailable(#[source] DbErr),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    /// The machine-readable `code` of the wire format.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::NoActiveAccount => "no_active_account",
            Error::TokenNotValid => "token_not_valid",
            Error::NotAuthenticated => "not_authenticated",
            Error::InvalidClient => "invalid_client",
            Error::UnsupportedTokenType => "unsupported_token_type",
            Error::PermissionDenied => "permission_denied",
            Error::NotFound => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Throttled { .. } => "throttled",
            Error::Unavailable(_) => "unavailable",
            Error::Unexpected(_) => "internal_error",
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            telemetry::metrics::db_error("unavailable");
            Error::Unavailable(err)
        } else {
            telemetry::metrics::db_error("other");
            Error::Unexpected(anyhow::Error::new(err))
        }
    }
}

/// Errors that mean "the database is not there right now" rather than a bug:
/// no connection in time, a refused or dropped connection, a read-only or full disk.
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, error::ConnAcquireErr};
    let runtime = match err {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed) => {
            return true;
        }
        DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e) => e,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    use sea_orm::sqlx::Error as Sqlx;
    match &**sqlx {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => {
            // SQLite: busy, locked, read-only, I/O error, full, cannot open.
            // PostgreSQL: class 08 (connection), 57P0x (shutdown), 53
            // (resources), 57014 (a statement past `statement_timeout`).
            let code = db.code().unwrap_or_default();
            matches!(
                &*code,
                "5" | "6" | "8" | "10" | "13" | "14" | "1032" | "264" | "778"
            ) || code == "57014"
                || code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
        }
        _ => false,
    }
}
