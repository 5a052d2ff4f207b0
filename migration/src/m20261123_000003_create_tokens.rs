use sea_orm_migration::prelude::*;

use crate::{m20261123_000001_create_users::Users, m20261123_000002_create_devices::Devices};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Tokens::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Tokens::Jti).uuid().not_null().unique_key())
                    .col(ColumnDef::new(Tokens::TokenType).string_len(16).not_null())
                    .col(ColumnDef::new(Tokens::ParentId).uuid())
                    .col(ColumnDef::new(Tokens::RootId).uuid().not_null())
                    .col(ColumnDef::new(Tokens::UserId).uuid())
                    .col(
                        ColumnDef::new(Tokens::IssuedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Tokens::ExpiresAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Tokens::ExpiredAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Tokens::RotatedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Tokens::DeviceId).uuid())
                    .foreign_key(
                        ForeignKey::create()
                            .name("tokens_parent_id_fkey")
                            .from(Tokens::Table, Tokens::ParentId)
                            .to(Tokens::Table, Tokens::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tokens_user_id_fkey")
                            .from(Tokens::Table, Tokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tokens_device_id_fkey")
                            .from(Tokens::Table, Tokens::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // Tree expiry, parent look-ups, a user's tokens newest first, archive.
        for (name, cols) in [
            ("tokens_root_id", vec![Tokens::RootId]),
            ("tokens_parent_id", vec![Tokens::ParentId]),
            (
                "tokens_user_id_issued_at",
                vec![Tokens::UserId, Tokens::IssuedAt, Tokens::Id],
            ),
            ("tokens_expires_at", vec![Tokens::ExpiresAt]),
            ("tokens_expired_at", vec![Tokens::ExpiredAt]),
            ("tokens_issued_at", vec![Tokens::IssuedAt, Tokens::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Tokens::Table).if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Tokens {
    Table,
    Id,
    Jti,
    TokenType,
    ParentId,
    RootId,
    UserId,
    IssuedAt,
    ExpiresAt,
    ExpiredAt,
    RotatedAt,
    DeviceId,
}
