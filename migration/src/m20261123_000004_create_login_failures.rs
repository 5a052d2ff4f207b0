use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(LoginFailures::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LoginFailures::Username)
                            .string_len(150)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LoginFailures::ClientAddress)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LoginFailures::FailedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("login_failures_username", LoginFailures::Username),
            (
                "login_failures_client_address",
                LoginFailures::ClientAddress,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(LoginFailures::Table)
                        .col(col)
                        .col(LoginFailures::FailedAt)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum LoginFailures {
    Table,
    Id,
    Username,
    ClientAddress,
    FailedAt,
}
