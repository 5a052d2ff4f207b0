//! The tables of tokend, as sea-orm-cli would generate them.

pub mod prelude;

pub mod api_tokens;
pub mod devices;
pub mod login_failures;
pub mod oauth_clients;
pub mod tokens;
pub mod users;
