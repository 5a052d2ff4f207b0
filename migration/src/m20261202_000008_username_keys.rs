//! Usernames are NFKC-normalised (as Django does), and two names whose NFKC
//! case-folded forms are equal cannot both exist: `users.username_key`
//! holds that form, unique. Existing names are normalised where the
//! normalised name is free; a name whose key another user took first keeps
//! no key (it can still log in, but no new look-alike can be created).

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, prelude::Uuid},
};
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The form two usernames must not share: NFKC, then lower case.
fn key(username: &str) -> String {
    username.nfkc().collect::<String>().to_lowercase()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::UsernameKey).string())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let users = db
            .query_all(
                &Query::select()
                    .columns([Users::Id, Users::Username])
                    .from(Users::Table)
                    .order_by(Users::CreatedAt, Order::Asc)
                    .order_by(Users::Id, Order::Asc)
                    .to_owned(),
            )
            .await?;
        let mut names: std::collections::HashSet<String> = users
            .iter()
            .map(|row| row.try_get::<String>("", "username"))
            .collect::<Result<_, _>>()?;
        let mut keys = std::collections::HashSet::new();
        for row in users {
            let id: Uuid = row.try_get("", "id")?;
            let mut username: String = row.try_get("", "username")?;
            let normalised: String = username.nfkc().collect();
            if normalised != username && !names.contains(&normalised) {
                names.remove(&username);
                names.insert(normalised.clone());
                username = normalised;
            }
            let key = key(&username);
            let key = keys.insert(key.clone()).then_some(key);
            db.execute(
                &Query::update()
                    .table(Users::Table)
                    .value(Users::Username, username)
                    .value(Users::UsernameKey, key)
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("users_username_fold_key")
                    .table(Users::Table)
                    .col(Users::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("users_username_fold_key")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::UsernameKey)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
    CreatedAt,
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn look_alikes_share_a_key() {
        assert_eq!(key("admin"), "admin");
        assert_eq!(key("ADMIN"), "admin");
        assert_eq!(key("ａｄｍｉｎ"), "admin");
        assert_eq!(key("𝐚𝐝𝐦𝐢𝐧"), "admin");
        assert_ne!(key("admin2"), "admin");
    }
}
