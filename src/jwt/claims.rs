use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a token is for; each kind is refused where another is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
    /// A container registry token (from `/token`); `registry` on the wire
    /// and in the registry's rows.
    #[serde(rename = "registry")]
    Container,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
            TokenType::Container => "registry",
        }
    }
}

/// The claims of access and refresh tokens (simplejwt's, plus `username`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    pub jti: Uuid,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub sub: String,
    pub user_id: Uuid,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// One granted resource in a container registry token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAccess {
    #[serde(rename = "type")]
    pub resource_type: String,
    /// `plugin` for `repository(plugin)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub name: String,
    pub actions: Vec<String>,
}

/// The claims of a container registry token, as the distribution registry
/// reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerClaims {
    pub iss: String,
    /// The username; empty for an anonymous caller.
    pub sub: String,
    /// The `service` the token is for: one string, not a list.
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: Uuid,
    /// Always present; empty when nothing was granted.
    pub access: Vec<ContainerAccess>,
}
