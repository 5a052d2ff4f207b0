//! A login's look-up of a user by name on PostgreSQL's held connections
//! reads what sea-orm reads.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use entity::users;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{UserStore, new_user};

/// On PostgreSQL only (the suite's PostgreSQL pass).
#[tokio::test]
async fn on_held_connections_a_user_is_found_by_name_as_sea_orm_finds_them() {
    let Some((_database, db)) = crate::store::test_postgres(Duration::from_secs(30)).await else {
        return;
    };
    let conns = db.pg_conns().expect("PostgreSQL has held connections");
    let store = UserStore::new(db.clone());
    let now = Utc::now().trunc_subsecs(6);
    let ann = new_user("Ann".into(), "ann".into(), "hash".into(), true, true, now);
    store.insert(ann.clone()).await.unwrap();
    store.touch_last_login(ann.id, now).await.unwrap();

    assert_eq!(conns.counts(), (0, 0), "nothing held yet");
    let found = store.find_by_name("Ann").await.unwrap();
    assert_eq!(
        conns.counts(),
        (0, 1),
        "the look-up went through a held connection, given back"
    );
    let by_sea_orm = users::Entity::find()
        .filter(users::Column::Username.eq("Ann"))
        .one(&db.read)
        .await
        .unwrap();
    assert_eq!(found, by_sea_orm);
    assert_eq!(found.unwrap().last_login, Some(now));
    assert_eq!(
        store.find_by_name("ann").await.unwrap(),
        None,
        "the exact name"
    );
}
