//! Archiving: removing tokens that died, in short batches.

use chrono::{DateTime, Datelike, Utc};

use super::Registry;
use crate::{
    error::{Error, Result},
    telemetry,
};

/// Rows deleted per archive transaction.
const ARCHIVE_BATCH: u64 = 1000;

/// What an archive asked for `cutoff` at `now` removes: tokens that died
/// before the cutoff, which is at most now, so that a token still active is
/// never touched.
pub fn archive_cutoff(cutoff: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    cutoff.min(now)
}

impl Registry {
    /// Removes tokens that are no longer active and died before `cutoff`
    /// (default and at most: now), in batches of short transactions so that
    /// token issue never waits long. A rotated refresh token goes only once
    /// its natural expiry is past the cutoff too, so that its reuse stays
    /// detectable. Devices no token refers to any more go too.
    pub async fn archive(&self, cutoff: Option<DateTime<Utc>>) -> Result<u64> {
        if let Some(cutoff) = cutoff
            && !(1..=9999).contains(&cutoff.year())
        {
            // Beyond what both databases hold (PostgreSQL refuses it outright).
            return Err(Error::InvalidRequest(
                "expired_before must be a date between the years 1 and 9999.".into(),
            ));
        }
        let now = self.now();
        let cutoff = archive_cutoff(cutoff.unwrap_or(now), now);
        let mut archived = 0;
        loop {
            let (found, deleted) = self.store.archive_batch(cutoff, ARCHIVE_BATCH).await?;
            archived += deleted;
            if found < ARCHIVE_BATCH {
                break;
            }
            // Let waiting writers in between batches.
            tokio::task::yield_now().await;
        }
        // Devices whose tokens are all gone.
        while self.store.purge_devices(ARCHIVE_BATCH).await? == ARCHIVE_BATCH {
            tokio::task::yield_now().await;
        }
        telemetry::metrics::archive_run(archived);
        Ok(archived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn the_cutoff_is_never_later_than_now() {
        let clock = ManualClock::new(Utc::now());
        let past = clock.now() - chrono::Duration::days(1);
        let future = clock.now() + chrono::Duration::days(1);
        assert_eq!(archive_cutoff(past, clock.now()), past);
        assert_eq!(archive_cutoff(future, clock.now()), clock.now());
        clock.advance(chrono::Duration::days(2));
        assert_eq!(archive_cutoff(future, clock.now()), future);
    }
}
