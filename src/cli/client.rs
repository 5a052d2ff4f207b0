//! `tokend client add|list|delete`: registered OAuth clients.

use clap::Subcommand;

use crate::{clients::Permissions, state::AppState};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and secret once.
    Add {
        name: String,
        /// May call introspection.
        #[arg(long)]
        introspect: bool,
        /// May call revocation as itself.
        #[arg(long)]
        revoke: bool,
    },
    /// List clients: name, client id, permissions.
    List,
    /// Delete a client: its credentials stop working at once.
    Delete { name: String },
}

pub async fn client(command: ClientCommand, state: &AppState) -> anyhow::Result<()> {
    match command {
        ClientCommand::Add {
            name,
            introspect,
            revoke,
        } => {
            let new = state
                .clients
                .add(&name, Permissions { introspect, revoke })
                .await?;
            println!("client_id: {}", new.client.client_id);
            println!("client_secret: {}", new.secret.expose());
            eprintln!("client {name} added; the secret is not shown again");
        }
        ClientCommand::List => {
            for c in state.clients.list().await? {
                let mut permissions = Vec::new();
                if c.can_introspect {
                    permissions.push("introspect");
                }
                if c.can_revoke {
                    permissions.push("revoke");
                }
                println!("{}\t{}\t{}", c.name, c.client_id, permissions.join(","));
            }
        }
        ClientCommand::Delete { name } => {
            state.clients.delete(&name).await?;
            eprintln!("client {name} deleted");
        }
    }
    Ok(())
}
