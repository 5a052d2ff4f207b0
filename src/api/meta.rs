//! Liveness, readiness and the public keys.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{health::NotReady, state::AppState};

/// Status of the service.
#[derive(Object)]
pub struct Status {
    /// `ok`.
    pub status: String,
}

/// A JWK set (RFC 7517).
#[derive(Object)]
pub struct JwkSet {
    /// The public signing keys, each with `kty`, `kid`, `alg`, `use: "sig"`
    /// and its public members (`crv`/`x`/`y` for EC and OKP, `n`/`e` for
    /// RSA), plus `x5c` when a certificate is configured. Never a private
    /// part or a secret: empty when only secrets are configured.
    pub keys: Vec<serde_json::Value>,
}

/// What readiness depends on, each `ok` or what is wrong with it.
#[derive(Object)]
pub struct Checks {
    /// `ok`, or `unreachable`: the database does not answer.
    pub database: String,
    /// `ok`, `pending`: the database lacks migrations of this build (run
    /// `tokend migrate`), or `unknown` when the database does not answer.
    pub migrations: String,
}

/// Readiness and what it depends on.
#[derive(Object)]
pub struct Readiness {
    /// `ok`.
    pub status: String,
    pub checks: Checks,
}

/// Not ready: the error body, and which dependency failed.
#[derive(Object)]
pub struct NotReadyBody {
    /// A human sentence naming the dependency that failed.
    pub detail: String,
    /// `unavailable`.
    pub code: String,
    pub checks: Checks,
}

#[derive(ApiResponse)]
pub enum ReadyAnswer {
    /// Ready: the database answers and has every migration.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready; `checks` says which dependency failed.
    #[oai(status = 503)]
    NotReady(Json<NotReadyBody>),
}

#[derive(ApiResponse)]
pub enum JwksAnswer {
    /// The public keys.
    #[oai(status = 200)]
    Ok(
        Json<JwkSet>,
        /// Verifiers may cache the set this long.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

pub struct MetaApi;

#[OpenApi(tag = "ApiTags::Meta")]
impl MetaApi {
    /// Liveness
    ///
    /// Answers while the process serves HTTP; does not touch the database.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// Answers 200 when the database answers and has every migration of
    /// this build; 503 otherwise, with `checks` saying which failed.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self, state: Data<&AppState>) -> ReadyAnswer {
        let checks = |database: &str, migrations: &str| Checks {
            database: database.into(),
            migrations: migrations.into(),
        };
        let (detail, checks) = match state.health.ready().await {
            Ok(()) => {
                return ReadyAnswer::Ready(Json(Readiness {
                    status: "ok".into(),
                    checks: checks("ok", "ok"),
                }));
            }
            Err(NotReady::DatabaseUnreachable(cause)) => {
                tracing::warn!(error = %cause, "not ready: the database is unreachable");
                (
                    "Not ready: the database is unreachable.".to_owned(),
                    checks("unreachable", "unknown"),
                )
            }
            Err(NotReady::MigrationsPending(n)) => (
                format!("Not ready: {n} database migrations are pending (run `tokend migrate`)."),
                checks("ok", "pending"),
            ),
        };
        ReadyAnswer::NotReady(Json(NotReadyBody {
            detail,
            code: "unavailable".into(),
            checks,
        }))
    }

    /// Public keys
    ///
    /// Every public key of the ring, with its `kid`, for offline
    /// verification: the signing key and the keys that still verify older
    /// tokens during a rotation.
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(&self, state: Data<&AppState>) -> JwksAnswer {
        let jwks = state.keys.jwks();
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        JwksAnswer::Ok(Json(JwkSet { keys }), "public, max-age=300".into())
    }
}
