//! The registration pipeline: the steps that record issued tokens, run in the
//! same transaction as the issue. Steps are chosen by name in the settings;
//! a library user can add their own by implementing [`RegistrationStep`].

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{devices, tokens};
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait, SqlErr, sea_query::OnConflict};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    jwt::TokenType,
};

/// Who asked for the tokens.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

/// A token being issued, before it is registered.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: Uuid,
    pub jti: Uuid,
    pub token_type: TokenType,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewToken {
    /// A fresh id and jti for a token of `kind` issued `now` that lives
    /// `lifetime` (`None`: no expiry).
    pub fn new(kind: TokenType, now: DateTime<Utc>, lifetime: Option<std::time::Duration>) -> Self {
        NewToken {
            id: Uuid::now_v7(),
            jti: Uuid::new_v4(),
            token_type: kind,
            issued_at: now,
            expires_at: lifetime
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .and_then(|d| now.checked_add_signed(d)),
        }
    }
}

/// What the steps share: the tokens being issued, the token they come from,
/// and the rows that will be written when every step has run.
#[derive(Debug)]
pub struct RegistrationContext {
    pub tokens: Vec<NewToken>,
    /// The refresh token presented, on a refresh.
    pub parent: Option<tokens::Model>,
    pub user_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub client: ClientInfo,
    pub now: DateTime<Utc>,
    /// Filled by `register_pairs`, written after the last step.
    pub rows: Vec<tokens::ActiveModel>,
}

impl RegistrationContext {
    /// The context of issuing `tokens` (to `user_id`, or from `parent` on a
    /// refresh), before any step has run.
    pub fn new(
        tokens: Vec<NewToken>,
        parent: Option<tokens::Model>,
        user_id: Option<Uuid>,
        client: ClientInfo,
        now: DateTime<Utc>,
    ) -> Self {
        RegistrationContext {
            tokens,
            parent,
            user_id,
            device_id: None,
            client,
            now,
            rows: Vec::new(),
        }
    }
}

/// One step of the pipeline.
#[async_trait]
pub trait RegistrationStep: Send + Sync {
    /// The name the settings use for it.
    fn name(&self) -> &'static str;
    async fn run(&self, ctx: &mut RegistrationContext, txn: &DatabaseTransaction) -> Result<()>;
}

/// The configured steps, in order.
#[derive(Clone)]
pub struct Pipeline {
    steps: Vec<Arc<dyn RegistrationStep>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.steps.iter().map(|s| s.name()))
            .finish()
    }
}

/// Steps every pipeline must have: without them no token would validate.
const REQUIRED: [&str; 2] = ["register_pairs", "connect_user"];

impl Pipeline {
    /// Checks a list of names before anything is built.
    pub fn check_names(names: &[String]) -> Result<(), String> {
        for required in REQUIRED {
            if !names.iter().any(|n| n == required) {
                return Err(format!("must include `{required}`"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for name in names {
            if !seen.insert(name) {
                return Err(format!("`{name}` is listed twice"));
            }
        }
        Ok(())
    }

    /// Builds the pipeline from names, looking them up among the built-in
    /// steps and `extra` ones.
    pub fn build(names: &[String], extra: &[Arc<dyn RegistrationStep>]) -> Result<Self, String> {
        Self::check_names(names)?;
        let mut known: HashMap<&str, Arc<dyn RegistrationStep>> = HashMap::new();
        for step in [
            Arc::new(RegisterPairs) as Arc<dyn RegistrationStep>,
            Arc::new(ConnectUser),
            Arc::new(ConnectDevice),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        {
            known.insert(step.name(), step);
        }
        let steps = names
            .iter()
            .map(|name| {
                known
                    .get(name.as_str())
                    .cloned()
                    .ok_or_else(|| format!("unknown step `{name}`"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { steps })
    }

    /// Runs every step, then writes the rows, all in `txn`.
    pub async fn run(&self, mut ctx: RegistrationContext, txn: &DatabaseTransaction) -> Result<()> {
        for step in &self.steps {
            step.run(&mut ctx, txn).await?;
        }
        let mut rows = std::mem::take(&mut ctx.rows);
        for row in &mut rows {
            row.user_id = Set(ctx.user_id);
            row.device_id = Set(ctx.device_id);
        }
        if !rows.is_empty() {
            let inserted = tokens::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await;
            match inserted {
                // The user (or the presented token) was deleted while we
                // issued: on PostgreSQL the delete can commit in between. What
                // the client held is gone, which is its error, not ours.
                Err(e) if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) => {
                    return Err(if ctx.parent.is_some() {
                        Error::TokenNotValid
                    } else {
                        Error::NoActiveAccount
                    });
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

/// Registers the tokens with their parent links: an access token issued with
/// a refresh token is its child; the rest are children of the presented token.
pub struct RegisterPairs;

#[async_trait]
impl RegistrationStep for RegisterPairs {
    fn name(&self) -> &'static str {
        "register_pairs"
    }

    async fn run(&self, ctx: &mut RegistrationContext, _txn: &DatabaseTransaction) -> Result<()> {
        let presented = ctx.parent.as_ref().map(|p| (p.id, p.root_id));
        let new_refresh = ctx
            .tokens
            .iter()
            .find(|t| t.token_type == TokenType::Refresh)
            .map(|t| t.id);
        for token in &ctx.tokens {
            let parent = match token.token_type {
                TokenType::Refresh => presented,
                _ => new_refresh
                    .map(|id| (id, presented.map_or(id, |p| p.1)))
                    .or(presented),
            };
            ctx.rows.push(tokens::ActiveModel {
                id: Set(token.id),
                jti: Set(token.jti),
                token_type: Set(token.token_type.as_str().to_owned()),
                parent_id: Set(parent.map(|p| p.0)),
                root_id: Set(parent.map_or(token.id, |p| p.1)),
                user_id: Set(None),
                issued_at: Set(token.issued_at),
                expires_at: Set(token.expires_at),
                expired_at: Set(None),
                rotated_at: Set(None),
                device_id: Set(None),
            });
        }
        Ok(())
    }
}

/// Connects the tokens to their user; on a refresh without a user in the
/// context, the user is found through the parent token.
pub struct ConnectUser;

#[async_trait]
impl RegistrationStep for ConnectUser {
    fn name(&self) -> &'static str {
        "connect_user"
    }

    async fn run(&self, ctx: &mut RegistrationContext, _txn: &DatabaseTransaction) -> Result<()> {
        if ctx.user_id.is_none() {
            ctx.user_id = ctx.parent.as_ref().and_then(|p| p.user_id);
        }
        Ok(())
    }
}

/// Records the device (user agent and client address) the tokens went to.
pub struct ConnectDevice;

const MAX_USER_AGENT: usize = 512;

#[async_trait]
impl RegistrationStep for ConnectDevice {
    fn name(&self) -> &'static str {
        "connect_device"
    }

    async fn run(&self, ctx: &mut RegistrationContext, txn: &DatabaseTransaction) -> Result<()> {
        let mut user_agent = ctx.client.user_agent.clone().unwrap_or_default();
        if user_agent.len() > MAX_USER_AGENT {
            let mut end = MAX_USER_AGENT;
            while !user_agent.is_char_boundary(end) {
                end -= 1;
            }
            user_agent.truncate(end);
        }
        let device = devices::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_agent: Set(user_agent),
            client_address: Set(ctx.client.address.clone().unwrap_or_default()),
            first_seen: Set(ctx.now),
            last_seen: Set(ctx.now),
        };
        let device = devices::Entity::insert(device)
            .on_conflict(
                OnConflict::columns([devices::Column::UserAgent, devices::Column::ClientAddress])
                    .update_column(devices::Column::LastSeen)
                    .to_owned(),
            )
            .exec_with_returning(txn)
            .await?;
        ctx.device_id = Some(device.id);
        Ok(())
    }
}
