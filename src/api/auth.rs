//! The security schemes: `Authorization: Bearer` checked by the validator
//! chain, which the app puts in every request's data.

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use crate::{
    auth::{AuthKind, Principal, ValidatorChain},
    error::{Error, Result},
};

/// `Authorization: Bearer <token>`: an access JWT or an API token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerAuth(pub Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let principal = validators(req)?.authenticate(&bearer.token).await?;
    super::middleware::note_user(req, principal.user.id);
    Ok(principal)
}

/// `Authorization: Bearer <access JWT>` only: for managing API tokens, which
/// an API token may not do.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_jwt")]
pub struct JwtAuth(pub Principal);

async fn check_jwt(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let principal = validators(req)?.authenticate(&bearer.token).await?;
    super::middleware::note_user(req, principal.user.id);
    if principal.kind != AuthKind::Jwt {
        return Err(Error::PermissionDenied.into());
    }
    Ok(principal)
}

fn validators(req: &Request) -> Result<&ValidatorChain> {
    req.data::<ValidatorChain>()
        .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("the validator chain is missing")))
}

impl BearerAuth {
    /// The caller, if they are an administrator.
    pub fn admin(self) -> Result<Principal> {
        if self.0.user.is_admin {
            Ok(self.0)
        } else {
            Err(Error::PermissionDenied)
        }
    }
}
