//! What tokend tells whoever runs it: Prometheus metrics and the targets of
//! its audit and request logs.
//!
//! A leaf: the services record their events through the functions of
//! [`metrics`] (the `metrics` facade underneath, a no-op until a recorder
//! is installed), and the HTTP layer renders them. The recorder is the
//! process's one global recorder: every [`Metrics`] of a process shares it.

pub mod metrics;

pub use metrics::Metrics;

/// The log target of audit events: sign-ins, throttling, refresh-token
/// reuse, administrators' acts, API tokens, signing keys.
pub const AUDIT: &str = "tokend::audit";

/// The log target of the one line each HTTP request logs.
pub const REQUEST: &str = "tokend::request";
