//! Liveness, readiness and the public keys.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    error::{Errors, statuses},
};
use crate::state::AppState;

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
    /// Answers 200 when the database answers, 503 otherwise.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self, state: Data<&AppState>) -> Result<Json<Status>, Errors<statuses::Ready>> {
        state.health.ready().await?;
        Ok(Json(Status {
            status: "ok".into(),
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
