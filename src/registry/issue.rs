//! Issuing: a token pair for a login, and container registry tokens (with
//! an offline refresh token when asked, or as the child of one).

use std::time::Duration;

use entity::{tokens, users};

use super::{
    IssuedToken, Registry, ValidToken, check::matches_registry, count_issued, pipeline::ClientInfo,
};
use crate::{
    error::{Error, Result},
    jwt::{ContainerAccess, ContainerClaims, TokenType},
    registry::pipeline::RegistrationContext,
    store::Registration,
};

/// What a login hands out.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh: IssuedToken,
}

/// What a container registry token says, decided by the container token
/// server: for which service, granting what, signed as whom, for how long.
#[derive(Debug, Clone)]
pub struct ContainerToken {
    /// The `service`: the token's `aud`.
    pub service: String,
    pub access: Vec<ContainerAccess>,
    pub issuer: String,
    pub lifetime: Duration,
}

/// A container registry token, and the offline refresh token issued with it.
#[derive(Debug, Clone)]
pub struct ContainerIssued {
    pub token: IssuedToken,
    pub refresh: Option<IssuedToken>,
}

impl Registry {
    /// Issues a refresh/access pair to an authenticated user.
    pub async fn obtain(&self, user: &users::Model, client: ClientInfo) -> Result<TokenPair> {
        let now = self.now();
        let refresh = self.new_row(TokenType::Refresh, now, None);
        let access = self.new_row(TokenType::Access, now, None);
        let ctx = RegistrationContext::new(
            vec![refresh.clone(), access.clone()],
            None,
            Some(user.id),
            client,
            now,
        );
        let registration = self.pipeline.run(ctx).await?;
        self.register_new(registration).await?;
        count_issued(TokenType::Access, 1);
        count_issued(TokenType::Refresh, 1);
        let audience = self.settings.audience.as_deref();
        Ok(TokenPair {
            access: self.sign_for(&access, user, audience)?,
            refresh: self.sign_for(&refresh, user, audience)?,
        })
    }

    /// Issues a container registry token to `user` (`None`: an anonymous
    /// caller, whose token is signed but not registered). With `offline` and
    /// a user, a refresh token bound to the token's service comes first and
    /// is its parent.
    pub async fn issue_container(
        &self,
        user: Option<&users::Model>,
        token: &ContainerToken,
        offline: bool,
        client: ClientInfo,
    ) -> Result<ContainerIssued> {
        let now = self.now();
        let Some(user) = user else {
            // An anonymous token grants what the rules give everyone, and
            // nobody could revoke it: it is not registered.
            let container = self.new_row(TokenType::Container, now, Some(token.lifetime));
            count_issued(TokenType::Container, 1);
            return Ok(ContainerIssued {
                token: self.sign_container(&container, None, token)?,
                refresh: None,
            });
        };
        let refresh = offline.then(|| self.new_row(TokenType::Refresh, now, None));
        let container = self.new_row(TokenType::Container, now, Some(token.lifetime));
        let rows = refresh.iter().cloned().chain([container.clone()]).collect();
        let ctx = RegistrationContext::new(rows, None, Some(user.id), client, now);
        let registration = self.pipeline.run(ctx).await?;
        self.register_new(registration).await?;
        count_issued(TokenType::Container, 1);
        if offline {
            count_issued(TokenType::Refresh, 1);
        }
        let refresh = refresh
            .map(|row| self.sign_for(&row, user, Some(&token.service)))
            .transpose()?;
        Ok(ContainerIssued {
            token: self.sign_container(&container, Some(user), token)?,
            refresh,
        })
    }

    /// Issues a container registry token as the child of an offline refresh
    /// token found valid by
    /// [`check_offline_refresh`](Registry::check_offline_refresh), for its
    /// user. Refused when the refresh token or its user changed since: the
    /// grant was decided for them as they were.
    pub async fn issue_container_child(
        &self,
        parent: &ValidToken,
        token: &ContainerToken,
        client: ClientInfo,
    ) -> Result<IssuedToken> {
        let now = self.now();
        let container = self.new_row(TokenType::Container, now, Some(token.lifetime));
        let ctx = RegistrationContext::new(
            vec![container.clone()],
            Some(parent.row.clone()),
            None,
            client,
            now,
        );
        let registration = self.pipeline.run(ctx).await?;
        let (claims, root_id, granted) = (
            parent.claims.clone(),
            parent.row.root_id,
            parent.user.clone(),
        );
        self.store
            .write(move |txn| async move {
                // Tree first, then user: every path takes them in this order.
                // Shared, as a refresh takes them: it only adds a token.
                txn.lock_shared(&[root_id, granted.id]).await?;
                let (row, user) = txn
                    .find_by_jti(claims.jti)
                    .await?
                    .ok_or(Error::TokenNotValid)?;
                let user = matches_registry(&claims, &row, user, now)?;
                if user.username != granted.username || user.is_admin != granted.is_admin {
                    return Err(Error::TokenNotValid);
                }
                if !txn.register(registration).await? {
                    return Err(Error::TokenNotValid);
                }
                Ok(())
            })
            .await?;
        count_issued(TokenType::Container, 1);
        self.sign_container(&container, Some(&parent.user), token)
    }

    /// Writes the registration of tokens issued to a user who logged in:
    /// refused when the user was deleted meanwhile.
    async fn register_new(&self, registration: Registration) -> Result<()> {
        match self.store.register_alone(registration).await? {
            true => Ok(()),
            false => Err(Error::NoActiveAccount),
        }
    }

    fn sign_container(
        &self,
        row: &tokens::Model,
        user: Option<&users::Model>,
        token: &ContainerToken,
    ) -> Result<IssuedToken> {
        let iat = row.issued_at.timestamp();
        let claims = ContainerClaims {
            iss: token.issuer.clone(),
            sub: user.map(|u| u.username.clone()).unwrap_or_default(),
            aud: token.service.clone(),
            iat,
            nbf: iat,
            exp: iat + token.lifetime.as_secs() as i64,
            jti: row.jti,
            access: token.access.clone(),
        };
        // Registry 3.x also accepts the certificate chain in the header.
        let text = self
            .keys
            .sign_with_x5c(TokenType::Container.jwt_typ(), &claims)?;
        Ok(super::issued(row, text))
    }
}
