//! `/api/v1/token/*`: obtaining a pair, refreshing it, verifying and
//! expiring tokens, and the registration pipeline behind every issue.

mod grace;
mod obtain;
mod pipeline;
mod refresh;
mod verify_expire;

use common::{TestApp, error_code};
use reqwest::StatusCode;

/// `/me` refuses `access` as not valid.
async fn assert_refused(app: &TestApp, access: &str) {
    let (status, code) = error_code(app.me(access).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "token_not_valid")
    );
}

/// Rotation on, and every reuse of a used-up refresh token is theft.
pub(crate) fn rotating_without_grace(c: &mut tokend::Config) {
    c.rotate_refresh_tokens = true;
    c.refresh_reuse_grace = tokend::config::HumanDuration(std::time::Duration::ZERO);
}
