use sea_orm::entity::prelude::*;

/// A registered OAuth client (a resource server): it authenticates to
/// introspection and revocation with its id and secret. Only the secret's
/// SHA-256 digest is kept.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What administrators call it.
    #[sea_orm(unique)]
    pub name: String,
    /// The public `client_id`.
    #[sea_orm(unique)]
    pub client_id: String,
    /// Lowercase hex SHA-256 of the client secret.
    pub secret_digest: String,
    /// May call introspection.
    pub can_introspect: bool,
    /// May call revocation as itself.
    pub can_revoke: bool,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
