//! Readiness: whether this replica can serve what needs the database, and
//! if not, which dependency is missing.

use sea_orm::DbErr;

use crate::db::Db;

/// Why the replica is not ready.
#[derive(Debug)]
pub enum NotReady {
    /// The database does not answer.
    DatabaseUnreachable(DbErr),
    /// The database answers, but lacks this many of this build's migrations.
    MigrationsPending(usize),
}

#[derive(Clone, Debug)]
pub struct Health {
    db: Db,
}

impl Health {
    pub fn new(db: Db) -> Self {
        Health { db }
    }

    /// `Ok` when the database answers and has every migration of this build.
    pub async fn ready(&self) -> Result<(), NotReady> {
        self.db
            .ping()
            .await
            .map_err(NotReady::DatabaseUnreachable)?;
        match self.db.pending_migrations().await {
            Ok(0) => Ok(()),
            Ok(n) => Err(NotReady::MigrationsPending(n)),
            Err(e) => Err(NotReady::DatabaseUnreachable(e)),
        }
    }

    /// Records the database pools' connections, as metrics.
    pub fn record_pool_metrics(&self) {
        self.db.record_pool_metrics();
    }
}
