use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// NFKC-normalised.
    #[sea_orm(unique)]
    pub username: String,
    /// The username's NFKC case-folded form: no two users share it (`None`
    /// only for a look-alike that existed before the rule).
    #[sea_orm(unique)]
    pub username_key: Option<String>,
    pub password_hash: String,
    pub is_active: bool,
    pub is_admin: bool,
    pub created_at: ChronoDateTimeUtc,
    pub last_login: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::tokens::Entity")]
    Tokens,
}

impl Related<super::tokens::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tokens.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
