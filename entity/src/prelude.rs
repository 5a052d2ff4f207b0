pub use super::api_tokens::Entity as ApiTokens;
pub use super::devices::Entity as Devices;
pub use super::login_failures::Entity as LoginFailures;
pub use super::oauth_clients::Entity as OauthClients;
pub use super::tokens::Entity as Tokens;
pub use super::users::Entity as Users;
