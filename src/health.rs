//! Readiness: whether this replica can serve what needs the database.

use crate::{
    db::Db,
    error::{Error, Result},
};

#[derive(Clone, Debug)]
pub struct Health {
    db: Db,
}

impl Health {
    pub fn new(db: Db) -> Self {
        Health { db }
    }

    /// `Ok` when the database answers; `Unavailable` otherwise.
    pub async fn ready(&self) -> Result<()> {
        self.db.ping().await.map_err(Error::Unavailable)
    }
}
