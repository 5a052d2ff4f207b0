//! Refreshing: a refresh token traded for a new access token, and with
//! rotation for a new refresh token too. A used-up refresh token presented
//! again is theft, and its whole tree is expired, unless it comes within the
//! reuse grace: then it is a client retrying a refresh whose answer it lost,
//! and it gets the same successor again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{tokens, users};
use uuid::Uuid;

use super::{IssuedToken, Registry, check::matches_registry, count_issued, pipeline::ClientInfo};
use crate::{
    error::{Error, Result},
    jwt::TokenType,
    registry::pipeline::{Pipeline, RegistrationContext},
    store::{
        TokenTxn, TreeLock,
        tokens::{Registration, is_active},
    },
    telemetry::{self, AUDIT},
};

/// What a refresh hands out: a refresh token only with rotation.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access: IssuedToken,
    pub refresh: Option<IssuedToken>,
}

/// What to make of a used-up refresh token presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Within the grace after its rotation: a client retrying a refresh
    /// whose answer it lost; it gets the rotation's refresh token again.
    InGrace,
    /// Theft: its whole tree is expired.
    Theft,
}

/// The verdict on a refresh token rotated at `rotated_at` and presented
/// again at `now`. A zero grace forgives nothing.
pub fn reuse_verdict(rotated_at: DateTime<Utc>, now: DateTime<Utc>, grace: Duration) -> Reuse {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    if !grace.is_zero() && now - rotated_at <= grace {
        Reuse::InGrace
    } else {
        Reuse::Theft
    }
}

/// Why a refresh failed: a reuse, or any other error.
enum RefreshError {
    Reused(Reuse),
    Other(Error),
}

impl From<Error> for RefreshError {
    fn from(e: Error) -> Self {
        RefreshError::Other(e)
    }
}

/// How the write of a refresh ended.
enum Outcome {
    /// Registered, for this user; the other tokens of the tree expired.
    Issued(users::Model, u64),
    /// A retry within the grace: the refresh token the rotation handed out,
    /// handed out again, with a new access token under it.
    Resumed {
        successor: tokens::Model,
        user: users::Model,
    },
    /// A reuse: refused. When it is theft the tree is expired next, in a
    /// transaction of its own that waits for every refresh of the tree.
    Reused(Reuse),
}

/// What a refresh writes, and which of its rows is the access token.
struct Prepared {
    registration: Registration,
    access_id: Uuid,
}

impl Registry {
    /// Trades a refresh token for a new access token (and, with rotation, a
    /// new refresh token).
    pub async fn refresh(&self, token: &str, client: ClientInfo) -> Result<Refreshed> {
        let result = self.refresh_counted(token, client).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(RefreshError::Reused(Reuse::Theft)) => "reuse_detected",
            Err(RefreshError::Reused(Reuse::InGrace)) => "reuse_in_grace",
            Err(RefreshError::Other(Error::TokenNotValid)) => {
                let audience = self.settings.audience.as_deref();
                if self.keys.out_of_time(token, audience) {
                    "expired"
                } else {
                    "invalid"
                }
            }
            Err(RefreshError::Other(_)) => "error",
        };
        telemetry::metrics::refresh(outcome);
        result.map_err(|e| match e {
            RefreshError::Reused(_) => Error::TokenNotValid,
            RefreshError::Other(e) => e,
        })
    }

    async fn refresh_counted(
        &self,
        token: &str,
        client: ClientInfo,
    ) -> std::result::Result<Refreshed, RefreshError> {
        let audience = self.settings.audience.as_deref();
        // Checked before anything is written for it.
        let claims = self.refresh_claims(token, audience)?;
        let expire_on_refresh = self.settings.expire_on_refresh;
        // Where the pipeline never waits, the write's transaction begins
        // with this look-up, under the locks the job takes (on PostgreSQL),
        // or the job makes it (on SQLite in a file).
        let lock = match (self.pipeline.waits(), expire_on_refresh) {
            (true, _) => None,
            (false, true) => Some(TreeLock::Exclusive),
            (false, false) => Some(TreeLock::Shared),
        };
        let opened = self.store.open(claims.jti, lock).await?;
        let now = self.now();
        let rotate = self.settings.rotate_refresh_tokens;
        let refresh = rotate.then(|| self.new_row(TokenType::Refresh, now, None));
        let access = self.new_row(TokenType::Access, now, None);
        let issuing = Issuing {
            rows: refresh.iter().cloned().chain([access.clone()]).collect(),
            access_id: access.id,
            client,
            now,
            pipeline: self.pipeline.clone(),
        };
        // The pipeline runs on the presented token as read: here when
        // `open` read it, in the job when the job reads it.
        let pending = match opened.read_in_write() {
            true => Pending::InWrite(issuing),
            false => {
                let (presented, _) = opened.found().cloned().ok_or(Error::TokenNotValid)?;
                let tree = Tree::of(&presented);
                Pending::Prepared(tree, issuing.prepare(presented).await?)
            }
        };

        let grace = self.settings.refresh_reuse_grace;
        let jti = claims.jti;
        let (outcome, tree) = opened
            .write(&self.store, move |txn| async move {
                // Tree first, then user: every path takes them in this
                // order. Shared: refreshes of one tree run side by side,
                // and an expiry of the tree or the user waits for them
                // all. Exclusive when this refresh expires the rest of its
                // tree. Read in the write, the transaction runs alone:
                // nothing to lock.
                if let Pending::Prepared(tree, _) = &pending {
                    let keys = tree.keys();
                    if expire_on_refresh {
                        txn.lock(&keys).await?;
                    } else {
                        txn.lock_shared(&keys).await?;
                    }
                }
                let (row, user) = txn.find_by_jti(jti).await?.ok_or(Error::TokenNotValid)?;
                let prepared = match pending {
                    Pending::Prepared(_, prepared) => prepared,
                    Pending::InWrite(issuing) => issuing.prepare(row.clone()).await?,
                };
                let tree = Tree::of(&row);
                if let Some(rotated_at) = row.rotated_at {
                    let outcome = on_reuse(&txn, &row, rotated_at, now, grace, prepared).await?;
                    return Ok((outcome, tree));
                }
                let user = matches_registry(&claims, &row, user, now)?;
                if rotate && !txn.rotate(row.id, now).await? {
                    // Rotated (or expired) between our read and our write:
                    // read what happened.
                    let (row, _) = txn.find_by_jti(jti).await?.ok_or(Error::TokenNotValid)?;
                    let rotated_at = row.rotated_at.ok_or(Error::TokenNotValid)?;
                    let outcome = on_reuse(&txn, &row, rotated_at, now, grace, prepared).await?;
                    return Ok((outcome, tree));
                }
                let others = if expire_on_refresh {
                    txn.expire_tree_except(row.root_id, row.id, now).await?
                } else {
                    0
                };
                register(&txn, prepared.registration).await?;
                Ok((Outcome::Issued(user, others), tree))
            })
            .await?;
        match outcome {
            Outcome::Issued(user, others) => {
                telemetry::metrics::tokens_expired("refresh", others);
                count_issued(TokenType::Access, 1);
                if refresh.is_some() {
                    count_issued(TokenType::Refresh, 1);
                }
                Ok(Refreshed {
                    access: self.sign_for(&access, &user, audience)?,
                    refresh: refresh
                        .map(|row| self.sign_for(&row, &user, audience))
                        .transpose()?,
                })
            }
            Outcome::Resumed { successor, user } => {
                tracing::info!(
                    token_id = %tree.presented_id,
                    successor_id = %successor.id,
                    "a rotated refresh token came back within the reuse grace; \
                     its successor is handed out again"
                );
                count_issued(TokenType::Access, 1);
                Ok(Refreshed {
                    access: self.sign_for(&access, &user, audience)?,
                    refresh: Some(self.sign_for(&successor, &user, audience)?),
                })
            }
            Outcome::Reused(verdict) => {
                if verdict == Reuse::Theft {
                    // Under the tree's exclusive lock: no refresh of the tree
                    // is between its look-up and its commit.
                    let expired = self.store.expire_tree(tree.root_id, now).await?;
                    telemetry::metrics::tokens_expired("reuse", expired);
                    tracing::warn!(
                        target: AUDIT,
                        event = "refresh_reuse_detected",
                        tree = %tree.root_id,
                        token_id = %tree.presented_id,
                        user_id = tree.owner.map(tracing::field::display),
                        expired,
                        "a rotated refresh token was presented again; its tree is expired"
                    );
                }
                Err(RefreshError::Reused(verdict))
            }
        }
    }
}

/// The presented token's place: its tree and its user, which a token keeps
/// for its life.
#[derive(Debug, Clone, Copy)]
struct Tree {
    presented_id: Uuid,
    root_id: Uuid,
    owner: Option<Uuid>,
}

impl Tree {
    fn of(row: &tokens::Model) -> Self {
        Tree {
            presented_id: row.id,
            root_id: row.root_id,
            owner: row.user_id,
        }
    }

    /// What a refresh locks, in the order every path takes them.
    fn keys(&self) -> Vec<Uuid> {
        std::iter::once(self.root_id).chain(self.owner).collect()
    }
}

/// A refresh's registration: made before the write, or left to the write
/// with what it is made of.
enum Pending {
    Prepared(Tree, Prepared),
    InWrite(Issuing),
}

/// The tokens a refresh issues, before the pipeline has linked them to the
/// presented token.
struct Issuing {
    rows: Vec<tokens::Model>,
    access_id: Uuid,
    client: ClientInfo,
    now: DateTime<Utc>,
    pipeline: Pipeline,
}

impl Issuing {
    /// The registration of these tokens under `presented`, as the
    /// pipeline makes it.
    async fn prepare(self, presented: tokens::Model) -> Result<Prepared> {
        let ctx = RegistrationContext::new(self.rows, Some(presented), None, self.client, self.now);
        Ok(Prepared {
            registration: self.pipeline.run(ctx).await?,
            access_id: self.access_id,
        })
    }
}

/// A used-up refresh token came back: theft is refused (and its tree
/// expired after this transaction); within the grace the client resumes
/// its chain.
async fn on_reuse(
    txn: &TokenTxn,
    row: &tokens::Model,
    rotated_at: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
    prepared: Prepared,
) -> Result<Outcome> {
    match reuse_verdict(rotated_at, now, grace) {
        Reuse::Theft => Ok(Outcome::Reused(Reuse::Theft)),
        Reuse::InGrace => resume(txn, row, now, prepared).await,
    }
}

/// Within the grace: the refresh token the rotation of `row` handed out,
/// with the access token being issued registered under it, as the first
/// answer had it. Nothing is handed out when the chain has moved on (the
/// successor was rotated in turn or expired, or its user deactivated).
async fn resume(
    txn: &TokenTxn,
    row: &tokens::Model,
    now: DateTime<Utc>,
    prepared: Prepared,
) -> Result<Outcome> {
    let refused = Outcome::Reused(Reuse::InGrace);
    let Some((successor, user)) = txn
        .child_of_type(row.id, TokenType::Refresh.as_str())
        .await?
    else {
        return Ok(refused);
    };
    let Some(user) = user.filter(|u| u.is_active) else {
        return Ok(refused);
    };
    if !is_active(&successor, now) {
        return Ok(refused);
    }
    let Prepared {
        mut registration,
        access_id,
    } = prepared;
    registration.rows.retain(|r| r.id == access_id);
    for access in &mut registration.rows {
        access.parent_id = Some(successor.id);
        access.root_id = successor.root_id;
    }
    register(txn, registration).await?;
    Ok(Outcome::Resumed { successor, user })
}

/// Writes a refresh's registration; the presented token or its user is
/// gone when it cannot be.
async fn register(txn: &TokenTxn, registration: Registration) -> Result<()> {
    if txn.register(registration).await? {
        Ok(())
    } else {
        Err(Error::TokenNotValid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn a_reuse_within_the_grace_is_forgiven_and_after_it_is_theft() {
        let clock = ManualClock::new(Utc::now());
        let rotated_at = clock.now();
        let grace = Duration::from_secs(10);
        clock.advance(chrono::Duration::seconds(10));
        assert_eq!(
            reuse_verdict(rotated_at, clock.now(), grace),
            Reuse::InGrace
        );
        clock.advance(chrono::Duration::milliseconds(1));
        assert_eq!(reuse_verdict(rotated_at, clock.now(), grace), Reuse::Theft);
    }

    #[test]
    fn without_a_grace_every_reuse_is_theft() {
        let clock = ManualClock::new(Utc::now());
        let rotated_at = clock.now();
        assert_eq!(
            reuse_verdict(rotated_at, clock.now(), Duration::ZERO),
            Reuse::Theft
        );
    }
}
