use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Devices::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Devices::UserAgent)
                            .string_len(512)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Devices::ClientAddress)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Devices::FirstSeen)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Devices::LastSeen)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_user_agent_client_address")
                    .table(Devices::Table)
                    .col(Devices::UserAgent)
                    .col(Devices::ClientAddress)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Devices::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Devices {
    Table,
    Id,
    UserAgent,
    ClientAddress,
    FirstSeen,
    LastSeen,
}
