//! `tokens_expired_at` holds only the tokens expired by force. A token is
//! issued with no `expired_at`, so the full index took an entry for every
//! token issued (two per refresh with rotation) that only the archive's
//! `expired_at < cutoff` ever reads, and a leaf page in every commit. Both
//! databases use the partial index for that condition: a comparison implies
//! `IS NOT NULL`.

use sea_orm_migration::prelude::*;

use crate::m20261123_000003_create_tokens::Tokens;

const NAME: &str = "tokens_expired_at";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager).await?;
        create_index(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager).await?;
        create_index(manager, false).await
    }
}

async fn drop_index(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(NAME).table(Tokens::Table).to_owned())
        .await
}

/// The index, of every token or (`partial`) of those expired by force.
async fn create_index(manager: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
    let mut index = Index::create()
        .name(NAME)
        .table(Tokens::Table)
        .col(Tokens::ExpiredAt)
        .to_owned();
    if partial {
        index.and_where(Expr::col(Tokens::ExpiredAt).is_not_null());
    }
    manager.create_index(index).await
}
