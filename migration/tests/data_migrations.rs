//! The migrations that move data, reshape an index or make a function: what
//! they make of rows written under the schema before them, and the way back.
//! On SQLite, and on PostgreSQL when `TOKEND_TEST_DATABASE_URL` names a
//! server (a database of their own).

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::{
    prelude::*,
    sea_orm::{
        ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, QueryResult, Statement,
        prelude::Uuid,
    },
};

/// What keeps a fresh database alive until [`Keep::end`].
enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg { server: String, name: String },
}

impl Keep {
    /// Closes `db` and, on PostgreSQL, drops its database: a test's last
    /// step (one that failed leaves its database behind to look at).
    async fn end(self, db: DatabaseConnection) {
        let _ = db.close().await;
        if let Keep::Pg { server, name } = self {
            let admin = Database::connect(&server).await.unwrap();
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            admin.execute_unprepared(&drop).await.unwrap();
            let _ = admin.close().await;
        }
    }
}

/// A fresh database, and what keeps it alive.
async fn fresh() -> (DatabaseConnection, Keep) {
    match std::env::var("TOKEND_TEST_DATABASE_URL") {
        Ok(server) => {
            let name = format!("tokend_mig_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&server).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let _ = admin.close().await;
            let (prefix, _) = server.split('?').next().unwrap().rsplit_once('/').unwrap();
            let db = Database::connect(format!("{prefix}/{name}")).await.unwrap();
            (db, Keep::Pg { server, name })
        }
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
            (Database::connect(url).await.unwrap(), Keep::Dir(dir))
        }
    }
}

/// The migrations before the one named `version`, applied.
async fn up_to(db: &DatabaseConnection, version: &str) {
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == version)
        .unwrap();
    Migrator::up(db, Some(before as u32)).await.unwrap();
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
    PasswordHash,
    IsActive,
    IsAdmin,
    CreatedAt,
}

async fn insert_user(db: &DatabaseConnection, id: Uuid, username: &str, minute: u32) {
    let created = format!("2026-11-30T10:{minute:02}:00Z")
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    db.execute(
        &Query::insert()
            .into_table(Users::Table)
            .columns([
                Users::Id,
                Users::Username,
                Users::PasswordHash,
                Users::IsActive,
                Users::IsAdmin,
                Users::CreatedAt,
            ])
            .values_panic([
                id.into(),
                username.into(),
                "hash".into(),
                true.into(),
                false.into(),
                created.into(),
            ])
            .to_owned(),
    )
    .await
    .unwrap();
}

async fn user(db: &DatabaseConnection, id: Uuid) -> (String, Option<String>) {
    let row = db
        .query_one(
            &Query::select()
                .columns([Users::Username, Users::UsernameKey])
                .from(Users::Table)
                .and_where(Expr::col(Users::Id).eq(id))
                .to_owned(),
        )
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "username").unwrap(),
        row.try_get("", "username_key").unwrap(),
    )
}

#[tokio::test]
async fn usernames_are_normalised_where_the_name_is_free_and_keyed_once() {
    let (db, keep) = fresh().await;
    up_to(&db, "m20261202_000008_username_keys").await;
    let (admin, look_alike, bob) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    insert_user(&db, admin, "admin", 0).await;
    insert_user(&db, look_alike, "ａｄｍｉｎ", 1).await;
    insert_user(&db, bob, "ＢＯＢ", 2).await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(
        user(&db, admin).await,
        ("admin".into(), Some("admin".into()))
    );
    // Its normal form is taken: it keeps its name and gets no key.
    assert_eq!(user(&db, look_alike).await, ("ａｄｍｉｎ".into(), None));
    assert_eq!(user(&db, bob).await, ("BOB".into(), Some("bob".into())));
    // A new look-alike is refused by the key's unique index.
    let again = db
        .execute(
            &Query::update()
                .table(Users::Table)
                .value(Users::UsernameKey, "admin")
                .and_where(Expr::col(Users::Id).eq(bob))
                .to_owned(),
        )
        .await;
    assert!(again.is_err());
    Migrator::down(&db, Some(1)).await.unwrap();
    keep.end(db).await;
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
    Id,
    Jti,
    TokenType,
    RootId,
    UserId,
    IssuedAt,
    DeviceId,
}

async fn insert_device(db: &DatabaseConnection, id: Uuid, user_agent: &str) {
    let now = chrono::Utc::now();
    db.execute(
        &Query::insert()
            .into_table(Devices::Table)
            .columns([
                Devices::Id,
                Devices::UserAgent,
                Devices::ClientAddress,
                Devices::FirstSeen,
                Devices::LastSeen,
            ])
            .values_panic([
                id.into(),
                user_agent.into(),
                "10.0.0.1".into(),
                now.into(),
                now.into(),
            ])
            .to_owned(),
    )
    .await
    .unwrap();
}

async fn insert_token(db: &DatabaseConnection, user: Uuid, device: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    db.execute(
        &Query::insert()
            .into_table(Tokens::Table)
            .columns([
                Tokens::Id,
                Tokens::Jti,
                Tokens::TokenType,
                Tokens::RootId,
                Tokens::UserId,
                Tokens::IssuedAt,
                Tokens::DeviceId,
            ])
            .values_panic([
                id.into(),
                Uuid::new_v4().into(),
                "access".into(),
                id.into(),
                user.into(),
                chrono::Utc::now().into(),
                device.into(),
            ])
            .to_owned(),
    )
    .await
    .unwrap();
    id
}

async fn device_of(db: &DatabaseConnection, token: Uuid) -> Uuid {
    db.query_one(
        &Query::select()
            .column(Tokens::DeviceId)
            .from(Tokens::Table)
            .and_where(Expr::col(Tokens::Id).eq(token))
            .to_owned(),
    )
    .await
    .unwrap()
    .unwrap()
    .try_get("", "device_id")
    .unwrap()
}

async fn device_user(db: &DatabaseConnection, device: Uuid) -> Option<Uuid> {
    db.query_one(
        &Query::select()
            .column(Devices::UserId)
            .from(Devices::Table)
            .and_where(Expr::col(Devices::Id).eq(device))
            .to_owned(),
    )
    .await
    .unwrap()
    .unwrap()
    .try_get("", "user_id")
    .unwrap()
}

async fn count_devices(db: &DatabaseConnection) -> usize {
    db.query_all(
        &Query::select()
            .column(Devices::Id)
            .from(Devices::Table)
            .to_owned(),
    )
    .await
    .unwrap()
    .len()
}

#[tokio::test]
async fn a_shared_device_is_split_per_user_and_an_unused_one_goes() {
    let (db, keep) = fresh().await;
    up_to(&db, "m20261202_000006_devices_per_user").await;
    let (ann, bob) = (Uuid::now_v7(), Uuid::now_v7());
    insert_user(&db, ann, "ann", 0).await;
    insert_user(&db, bob, "bob", 1).await;
    let (shared, unused) = (Uuid::now_v7(), Uuid::now_v7());
    insert_device(&db, shared, "shared").await;
    insert_device(&db, unused, "unused").await;
    let ann_token = insert_token(&db, ann, shared).await;
    let bob_token = insert_token(&db, bob, shared).await;
    Migrator::up(&db, Some(1)).await.unwrap();
    let (ann_device, bob_device) = (
        device_of(&db, ann_token).await,
        device_of(&db, bob_token).await,
    );
    assert_ne!(ann_device, bob_device);
    assert_eq!(device_user(&db, ann_device).await, Some(ann));
    assert_eq!(device_user(&db, bob_device).await, Some(bob));
    assert_eq!(count_devices(&db).await, 2, "the unused device went");
    // And back: one device for the user agent and address again.
    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(
        device_of(&db, ann_token).await,
        device_of(&db, bob_token).await
    );
    assert_eq!(count_devices(&db).await, 1);
    keep.end(db).await;
}

/// The row `sql` gives, if any.
async fn raw_row(db: &DatabaseConnection, sql: String) -> Option<QueryResult> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    db.query_one_raw(statement).await.unwrap()
}

/// The definition of the index `name`, lower case, without quotes or
/// parentheses, as the database keeps it.
async fn index_definition(db: &DatabaseConnection, name: &str) -> String {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            format!("SELECT indexdef AS definition FROM pg_indexes WHERE indexname = '{name}'")
        }
        _ => format!("SELECT sql AS definition FROM sqlite_master WHERE name = '{name}'"),
    };
    let row = raw_row(db, sql)
        .await
        .unwrap_or_else(|| panic!("no index {name}"));
    let definition: String = row.try_get("", "definition").unwrap();
    definition.replace(['"', '(', ')'], "").to_lowercase()
}

#[tokio::test]
async fn the_index_of_forced_expiries_goes_partial_and_back_whole() {
    let (db, keep) = fresh().await;
    up_to(&db, "m20261204_000010_tokens_expired_at_partial").await;
    let partial = "where expired_at is not null";
    let whole = index_definition(&db, "tokens_expired_at").await;
    assert!(!whole.contains(partial), "{whole}");
    Migrator::up(&db, Some(1)).await.unwrap();
    let after = index_definition(&db, "tokens_expired_at").await;
    assert!(after.contains(partial), "{after}");
    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(index_definition(&db, "tokens_expired_at").await, whole);
    keep.end(db).await;
}

/// Whether the schema has a function of this name (never on SQLite, which
/// has no functions).
async fn has_function(db: &DatabaseConnection, name: &str) -> bool {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return false;
    }
    let sql = format!("SELECT COUNT(*)::int AS n FROM pg_proc WHERE proname = '{name}'");
    let row = raw_row(db, sql).await.unwrap();
    row.try_get::<i32>("", "n").unwrap() == 1
}

#[tokio::test]
async fn the_login_admission_function_comes_and_goes_on_postgres() {
    let (db, keep) = fresh().await;
    let postgres = db.get_database_backend() == DatabaseBackend::Postgres;
    up_to(&db, "m20261204_000011_login_admit_function").await;
    assert!(!has_function(&db, "tokend_login_admit").await);
    Migrator::up(&db, Some(1)).await.unwrap();
    assert_eq!(has_function(&db, "tokend_login_admit").await, postgres);
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(!has_function(&db, "tokend_login_admit").await);
    keep.end(db).await;
}

/// One admission of `alice` from one address: the attempts of hers it
/// counted before its own.
async fn admit_alice(db: &DatabaseConnection) -> i64 {
    let sql = "SELECT name_total, address_total FROM tokend_login_admit(1, 2, 'alice', \
         '10.0.0.1', now() - interval '5 minutes', now() - interval '1 minute', \
         gen_random_uuid(), now())";
    let row = raw_row(db, sql.to_owned()).await.unwrap();
    let by_name: i64 = row.try_get("", "name_total").unwrap();
    let by_address: i64 = row.try_get("", "address_total").unwrap();
    assert_eq!(by_name, by_address, "alice is the address's only user");
    by_name
}

#[tokio::test]
async fn the_admission_counts_through_the_attempts_function_and_back() {
    let (db, keep) = fresh().await;
    up_to(&db, "m20261204_000012_login_attempts_function").await;
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // Neither function exists on SQLite, whose writer admits a login.
        Migrator::up(&db, Some(1)).await.unwrap();
        assert!(!has_function(&db, "tokend_login_attempts").await);
        Migrator::down(&db, Some(1)).await.unwrap();
        return keep.end(db).await;
    }
    assert!(!has_function(&db, "tokend_login_attempts").await);
    assert_eq!(admit_alice(&db).await, 0);
    Migrator::up(&db, Some(1)).await.unwrap();
    assert!(has_function(&db, "tokend_login_attempts").await);
    // The admission through the function counts what it counted before.
    assert_eq!(admit_alice(&db).await, 1);
    assert_eq!(admit_alice(&db).await, 2);
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(!has_function(&db, "tokend_login_attempts").await);
    // And the admission of before is back, whole.
    assert_eq!(admit_alice(&db).await, 3);
    keep.end(db).await;
}
