pub use super::devices::Entity as Devices;
pub use super::tokens::Entity as Tokens;
pub use super::users::Entity as Users;
