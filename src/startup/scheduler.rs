//! Jobs the server runs by itself on a schedule.

use crate::{state::AppState, telemetry::Metrics};

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

/// How often the histograms' recent samples are folded into their buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps the metrics recorder's memory bounded between scrapes.
pub(super) async fn metrics_upkeep(metrics: Metrics) {
    let mut ticker = tokio::time::interval(METRICS_UPKEEP);
    loop {
        ticker.tick().await;
        metrics.upkeep();
    }
}
