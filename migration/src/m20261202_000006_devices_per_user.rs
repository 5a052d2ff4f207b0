//! A device belongs to one user: `devices.user_id`, and one row per (user,
//! user agent, address) instead of one per (user agent, address) shared by
//! everybody. A device several users' tokens went to is split into one row
//! per user, with their tokens moved to it; a device no user's token went
//! to goes. `tokens.device_id` gets the index that archive's purge of
//! unused devices needs.
//!
//! `user_id` carries no foreign key: a deleted user's devices lose their
//! tokens with them, and archive removes devices no token refers to.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, prelude::Uuid},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(ColumnDef::new(Devices::UserId).uuid())
                    .to_owned(),
            )
            .await?;
        // The copies of a shared device repeat its user agent and address.
        manager
            .drop_index(
                Index::drop()
                    .name("devices_user_agent_client_address")
                    .table(Devices::Table)
                    .to_owned(),
            )
            .await?;
        split_shared_devices(manager).await?;
        manager
            .get_connection()
            .execute(
                &Query::delete()
                    .from_table(Devices::Table)
                    .and_where(Expr::col(Devices::UserId).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_user_id_user_agent_client_address")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .col(Devices::UserAgent)
                    .col(Devices::ClientAddress)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_device_id")
                    .table(Tokens::Table)
                    .col(Tokens::DeviceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("tokens_device_id")
                    .table(Tokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("devices_user_id_user_agent_client_address")
                    .table(Devices::Table)
                    .to_owned(),
            )
            .await?;
        merge_devices(manager).await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_user_agent_client_address")
                    .table(Devices::Table)
                    .col(Devices::UserAgent)
                    .col(Devices::ClientAddress)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .drop_column(Devices::UserId)
                    .to_owned(),
            )
            .await
    }
}

/// Gives each device the user its tokens belong to, copying it for every
/// further user, whose tokens then point to their own copy.
async fn split_shared_devices(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let pairs = db
        .query_all(
            &Query::select()
                .distinct()
                .columns([Tokens::DeviceId, Tokens::UserId])
                .from(Tokens::Table)
                .and_where(Expr::col(Tokens::DeviceId).is_not_null())
                .and_where(Expr::col(Tokens::UserId).is_not_null())
                .order_by(Tokens::DeviceId, Order::Asc)
                .order_by(Tokens::UserId, Order::Asc)
                .to_owned(),
        )
        .await?;
    let mut previous: Option<Uuid> = None;
    for row in pairs {
        let device: Uuid = row.try_get("", "device_id")?;
        let user: Uuid = row.try_get("", "user_id")?;
        if previous != Some(device) {
            previous = Some(device);
            db.execute(
                &Query::update()
                    .table(Devices::Table)
                    .value(Devices::UserId, user)
                    .and_where(Expr::col(Devices::Id).eq(device))
                    .to_owned(),
            )
            .await?;
            continue;
        }
        let copy = Uuid::now_v7();
        db.execute(
            &Query::insert()
                .into_table(Devices::Table)
                .columns([
                    Devices::Id,
                    Devices::UserId,
                    Devices::UserAgent,
                    Devices::ClientAddress,
                    Devices::FirstSeen,
                    Devices::LastSeen,
                ])
                .select_from(
                    Query::select()
                        .expr(Expr::val(copy))
                        .expr(Expr::val(user))
                        .columns([
                            Devices::UserAgent,
                            Devices::ClientAddress,
                            Devices::FirstSeen,
                            Devices::LastSeen,
                        ])
                        .from(Devices::Table)
                        .and_where(Expr::col(Devices::Id).eq(device))
                        .to_owned(),
                )
                .map_err(|e| DbErr::Migration(e.to_string()))?
                .to_owned(),
        )
        .await?;
        db.execute(
            &Query::update()
                .table(Tokens::Table)
                .value(Tokens::DeviceId, copy)
                .and_where(Expr::col(Tokens::DeviceId).eq(device))
                .and_where(Expr::col(Tokens::UserId).eq(user))
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

/// The way back: one device per (user agent, address), the oldest row of
/// each kept and the tokens of the others moved to it.
async fn merge_devices(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let devices = db
        .query_all(
            &Query::select()
                .columns([Devices::Id, Devices::UserAgent, Devices::ClientAddress])
                .from(Devices::Table)
                .order_by(Devices::UserAgent, Order::Asc)
                .order_by(Devices::ClientAddress, Order::Asc)
                .order_by(Devices::Id, Order::Asc)
                .to_owned(),
        )
        .await?;
    let mut kept: Option<(String, String, Uuid)> = None;
    for row in devices {
        let id: Uuid = row.try_get("", "id")?;
        let key: (String, String) = (
            row.try_get("", "user_agent")?,
            row.try_get("", "client_address")?,
        );
        match &kept {
            Some((agent, address, keep)) if (agent, address) == (&key.0, &key.1) => {
                let keep = *keep;
                db.execute(
                    &Query::update()
                        .table(Tokens::Table)
                        .value(Tokens::DeviceId, keep)
                        .and_where(Expr::col(Tokens::DeviceId).eq(id))
                        .to_owned(),
                )
                .await?;
                db.execute(
                    &Query::delete()
                        .from_table(Devices::Table)
                        .and_where(Expr::col(Devices::Id).eq(id))
                        .to_owned(),
                )
                .await?;
            }
            _ => kept = Some((key.0, key.1, id)),
        }
    }
    Ok(())
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    UserAgent,
    ClientAddress,
    FirstSeen,
    LastSeen,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    UserId,
    DeviceId,
}
