//! `GET /api/v1/keys`: the signing key ring, for administrators; what
//! `tokend keys list` prints, never a key itself.

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{Errors, statuses},
};
use crate::{jwt::alg_name, state::AppState};

/// One key of the ring.
#[derive(Object)]
pub struct KeyOut {
    /// Its `kid`, as tokens carry it in their header.
    pub kid: String,
    /// Its algorithm (`ES256`, `RS256`, `EdDSA`, `HS256`, …).
    pub alg: String,
    /// Whether it signs new tokens; the others only verify.
    pub signing: bool,
}

pub struct KeysApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Administration")]
impl KeysApi {
    /// List the signing keys
    ///
    /// The key ring in its order: kid, algorithm, and which one signs.
    #[oai(path = "/keys", method = "get")]
    async fn list_keys(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Vec<KeyOut>>, Errors<statuses::Admin>> {
        auth.admin()?;
        let signer = &state.keys.signing_key().kid;
        let keys = state.keys.keys().iter().map(|key| KeyOut {
            kid: key.kid.clone(),
            alg: alg_name(key.alg).to_owned(),
            signing: &key.kid == signer,
        });
        Ok(Json(keys.collect()))
    }
}
