use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;

use common::{ADMIN_PASSWORD, TestApp};

#[tokio::test]
async fn first_start_generates_a_private_signing_key() {
    let app = TestApp::spawn().await;
    let key = app.data_dir().join("signing-key.pem");
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
}

#[tokio::test]
async fn sqlite_database_file_is_private() {
    if std::env::var("TOKEND_TEST_DATABASE_URL").is_ok() {
        return; // this one is about the SQLite file
    }
    let app = TestApp::spawn().await;
    let db = app.data_dir().join("tokend.db");
    let mode = std::fs::metadata(&db)
        .expect("db file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn bootstrap_admin_uses_the_configured_password() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.obtain("admin", ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    let users = app.state.users.list().await.unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].is_admin);
}

#[tokio::test]
async fn stopped_server_lets_go_and_answers_no_more() {
    let app = TestApp::spawn().await;
    let health = app.url("/health");
    let client = app.client.clone();
    assert_eq!(
        client.get(&health).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.stop().await;
    assert!(client.get(&health).send().await.is_err());
}

#[tokio::test]
async fn the_data_folder_it_creates_is_private() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("new").join("data");
    let app = TestApp::spawn_with(|c| c.data_dir = data.clone()).await;
    assert_eq!(
        app.obtain("admin", ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}
