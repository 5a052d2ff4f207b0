//! Jobs the server runs by itself on a schedule.

use crate::state::AppState;

/// The scheduled archive (`archive_interval`): dead tokens and old login
/// failures are removed every period.
pub(super) async fn archive_every(state: AppState, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match state.archive(None).await {
            Ok(archived) => tracing::info!(archived, "scheduled archive"),
            Err(e) => tracing::warn!(error = %e, "scheduled archive failed"),
        }
    }
}
