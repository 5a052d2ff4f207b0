//! The registration pipeline: the steps that decide how issued tokens are
//! recorded. Steps are chosen by name in the settings; a library user can add
//! their own by implementing [`RegistrationStep`].
//!
//! Steps work on the [`RegistrationContext`] alone: they link the rows,
//! name their user and their device, or refuse. What they leave is written
//! in one transaction with the rest of the issue (the rotation of a used-up
//! refresh token, say), so a token that reaches a client is always in the
//! registry and a refused registration hands out nothing. A step that may
//! wait ([`RegistrationStep::waits`]) runs before the write and holds up its
//! own request only, never the writer. On a refresh, steps that never wait
//! run inside the write, on SQLite in the writer's batch: such a step must
//! be quick, and must really not wait (a job that waits there fails).

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::tokens;
use uuid::Uuid;

use crate::{
    config::ConfigError,
    error::Result,
    jwt::TokenType,
    store::{Registration, tokens::Device},
};

/// Who asked for the tokens.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

/// What the steps share: the tokens being issued, the token they come from,
/// and what will be written when every step has run.
#[derive(Debug)]
pub struct RegistrationContext {
    /// The rows of the tokens being issued, not linked to anything yet.
    pub tokens: Vec<tokens::Model>,
    /// The refresh token presented, on a refresh: as read in the write's
    /// transaction or just before it begins ([`RegistrationStep::waits`]).
    pub parent: Option<tokens::Model>,
    pub user_id: Option<Uuid>,
    pub client: ClientInfo,
    pub now: DateTime<Utc>,
    /// Filled by `register_pairs`: the rows that will be written.
    pub rows: Vec<tokens::Model>,
    /// Filled by `connect_device`: the user agent and address the tokens
    /// went to (a device of their user's).
    pub device: Option<ClientDevice>,
}

/// What `connect_device` records: the device's user is the tokens' user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDevice {
    pub user_agent: String,
    pub client_address: String,
}

impl RegistrationContext {
    /// The context of issuing `tokens` (to `user_id`, or from `parent` on a
    /// refresh), before any step has run.
    pub fn new(
        tokens: Vec<tokens::Model>,
        parent: Option<tokens::Model>,
        user_id: Option<Uuid>,
        client: ClientInfo,
        now: DateTime<Utc>,
    ) -> Self {
        RegistrationContext {
            tokens,
            parent,
            user_id,
            client,
            now,
            rows: Vec::new(),
            device: None,
        }
    }
}

/// One step of the pipeline.
#[async_trait]
pub trait RegistrationStep: Send + Sync {
    /// The name the settings use for it.
    fn name(&self) -> &'static str;
    /// Changes the context, or refuses the registration with an error.
    async fn run(&self, ctx: &mut RegistrationContext) -> Result<()>;
    /// Whether `run` may wait (for I/O, say). A refresh whose steps never
    /// wait runs them inside its write transaction: on PostgreSQL under the
    /// tree's locks, on SQLite in a file in the writer's transaction, on the
    /// presented token as read there. With one that may, they run before it
    /// begins, on the token as read then.
    fn waits(&self) -> bool {
        true
    }
}

/// The configured steps, in order.
#[derive(Clone)]
pub struct Pipeline {
    steps: Arc<[Arc<dyn RegistrationStep>]>,
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
    /// Builds the pipeline from the names of `registration_pipeline`,
    /// looking them up among the built-in steps and `extra` ones.
    pub fn build(
        names: &[String],
        extra: &[Arc<dyn RegistrationStep>],
    ) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError::new("registration_pipeline", why);
        for required in REQUIRED {
            if !names.iter().any(|n| n == required) {
                return Err(bad(format!("must include `{required}`")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = names.iter().find(|name| !seen.insert(*name)) {
            return Err(bad(format!("`{twice}` is listed twice")));
        }
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
                    .ok_or_else(|| bad(format!("unknown step `{name}`")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { steps })
    }

    /// Whether a step may wait ([`RegistrationStep::waits`]).
    pub fn waits(&self) -> bool {
        self.steps.iter().any(|step| step.waits())
    }

    /// Runs every step; returns what is to be written.
    pub async fn run(&self, mut ctx: RegistrationContext) -> Result<Registration> {
        for step in self.steps.iter() {
            step.run(&mut ctx).await?;
        }
        let mut rows = ctx.rows;
        for row in &mut rows {
            row.user_id = ctx.user_id;
        }
        // A device is its user's: tokens without a user record none.
        let device = ctx.device.zip(ctx.user_id).map(|(device, user_id)| Device {
            user_id,
            user_agent: device.user_agent,
            client_address: device.client_address,
            seen_at: ctx.now,
        });
        Ok(Registration { rows, device })
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

    fn waits(&self) -> bool {
        false
    }

    async fn run(&self, ctx: &mut RegistrationContext) -> Result<()> {
        let presented = ctx.parent.as_ref().map(|p| (p.id, p.root_id));
        let new_refresh = ctx
            .tokens
            .iter()
            .find(|t| t.token_type == TokenType::Refresh.as_str())
            .map(|t| t.id);
        for token in &ctx.tokens {
            let parent = if token.token_type == TokenType::Refresh.as_str() {
                presented
            } else {
                new_refresh
                    .map(|id| (id, presented.map_or(id, |p| p.1)))
                    .or(presented)
            };
            ctx.rows.push(tokens::Model {
                parent_id: parent.map(|p| p.0),
                root_id: parent.map_or(token.id, |p| p.1),
                ..token.clone()
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

    fn waits(&self) -> bool {
        false
    }

    async fn run(&self, ctx: &mut RegistrationContext) -> Result<()> {
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

    fn waits(&self) -> bool {
        false
    }

    async fn run(&self, ctx: &mut RegistrationContext) -> Result<()> {
        let mut user_agent = ctx.client.user_agent.clone().unwrap_or_default();
        if user_agent.len() > MAX_USER_AGENT {
            let mut end = MAX_USER_AGENT;
            while !user_agent.is_char_boundary(end) {
                end -= 1;
            }
            user_agent.truncate(end);
        }
        ctx.device = Some(ClientDevice {
            user_agent,
            client_address: ctx.client.address.clone().unwrap_or_default(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_pipeline_needs_its_required_steps_once_each() {
        let err = Pipeline::build(&names(&["register_pairs"]), &[]).unwrap_err();
        assert!(
            err.to_string().contains("must include `connect_user`"),
            "{err}"
        );
        let twice = names(&["register_pairs", "connect_user", "connect_user"]);
        assert!(Pipeline::build(&twice, &[]).is_err());
        let unknown = names(&["register_pairs", "connect_user", "nope"]);
        let err = Pipeline::build(&unknown, &[]).unwrap_err();
        assert!(err.to_string().contains("unknown step `nope`"), "{err}");
        assert!(Pipeline::build(&names(&["register_pairs", "connect_user"]), &[]).is_ok());
    }
}
