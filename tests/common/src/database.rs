//! A fresh database for one test: a SQLite file in a temporary folder, or a
//! new PostgreSQL database when `TOKEND_TEST_DATABASE_URL` names a server.

use std::path::Path;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// The variable that puts the suite on PostgreSQL.
const SERVER_URL_VARIABLE: &str = "TOKEND_TEST_DATABASE_URL";

/// Whether this run of the suite is on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(SERVER_URL_VARIABLE).is_ok()
}

/// A database for one test and its data folder. On SQLite the database is
/// `tokend.db` in the data folder; on PostgreSQL it is dropped with this.
pub struct TestDatabase {
    pub data_dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

impl TestDatabase {
    pub async fn fresh() -> TestDatabase {
        Self::fresh_in(None).await
    }

    /// A fresh database whose data folder is inside `parent`.
    pub async fn fresh_in(parent: Option<&Path>) -> TestDatabase {
        let data_dir = match parent {
            Some(p) => tempfile::tempdir_in(p),
            None => tempfile::tempdir(),
        }
        .expect("temp dir");
        TestDatabase {
            data_dir,
            pg: PgDatabase::create_if_asked().await,
        }
    }

    /// A data folder and no database of its own, even on PostgreSQL: for
    /// commands that never reach one.
    pub fn without_database() -> TestDatabase {
        TestDatabase {
            data_dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        }
    }

    pub fn pg(&self) -> Option<&PgDatabase> {
        self.pg.as_ref()
    }

    /// The URL of the PostgreSQL database; `None` on SQLite, where tokend
    /// finds its file in the data folder by itself.
    pub fn postgres_url(&self) -> Option<&str> {
        self.pg.as_ref().map(|pg| pg.url.as_str())
    }

    /// The URL tokend is given.
    pub fn url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.path().join("tokend.db").display()
            ),
        }
    }

    /// A direct connection, to look at the registry behind tokend's back.
    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url())
            .await
            .expect("connect to the test database")
    }

    /// The environment that points the binary at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("TOKEND_DATABASE_URL".into(), self.url()),
            (
                "TOKEND_DATA_DIR".into(),
                self.data_dir.path().display().to_string(),
            ),
        ]
    }
}

/// A PostgreSQL database made for one test, dropped with it.
pub struct PgDatabase {
    /// The server's URL, from `TOKEND_TEST_DATABASE_URL`.
    pub server_url: String,
    pub name: String,
    /// The URL of this database.
    pub url: String,
}

impl PgDatabase {
    /// A new database on the server `TOKEND_TEST_DATABASE_URL` names;
    /// `None` when it names none (the suite runs on SQLite).
    pub async fn create_if_asked() -> Option<PgDatabase> {
        let server_url = std::env::var(SERVER_URL_VARIABLE).ok()?;
        let name = format!("tokend_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&server_url)
            .await
            .expect("connect to TOKEND_TEST_DATABASE_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = pg_url_with_database(&server_url, &name);
        Some(PgDatabase {
            server_url,
            name,
            url,
        })
    }
}

/// `base` with its database name replaced by `name`.
pub fn pg_url_with_database(base: &str, name: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (base, String::new()),
    };
    let (prefix, _) = without_query
        .rsplit_once('/')
        .expect("database URL with a path");
    format!("{prefix}/{name}{query}")
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Drop cannot await: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(db) = Database::connect(&server_url).await {
                    let _ = db
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = db.close().await;
                }
            });
        })
        .join();
    }
}
