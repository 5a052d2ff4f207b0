use sea_orm::entity::prelude::*;

/// One login attempt that counts against the throttle: made before its
/// password is checked (`pending` until then), kept when it failed, for the
/// length of the throttle window.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub username: String,
    pub client_address: String,
    pub failed_at: ChronoDateTimeUtc,
    /// Its password is being checked.
    pub pending: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
