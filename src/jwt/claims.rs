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

    /// The JWT header's `typ`: RFC 9068's `at+jwt` for access tokens, so a
    /// verifier that requires it takes nothing else; `refresh+jwt` for
    /// refresh tokens; plain `JWT` for container registry tokens (the
    /// distribution registry does not look at it).
    pub fn jwt_typ(self) -> &'static str {
        match self {
            TokenType::Access => ACCESS_TYP,
            TokenType::Refresh => REFRESH_TYP,
            TokenType::Container => "JWT",
        }
    }

    /// Whether a header's `typ` is this kind's. RFC 9068 allows the media
    /// type's long form (`application/at+jwt`) and any case.
    pub fn accepts_typ(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else { return false };
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        typ == self.jwt_typ().to_ascii_lowercase()
    }
}

/// The `typ` of access tokens (RFC 9068).
pub const ACCESS_TYP: &str = "at+jwt";
/// The `typ` of refresh tokens: anything but `at+jwt` and `JWT`, so that
/// no access token verifier takes one.
pub const REFRESH_TYP: &str = "refresh+jwt";

/// The `client_id` of tokens obtained directly with a username and password
/// (no registered client asked for them).
pub const DIRECT_CLIENT_ID: &str = "tokend";

fn direct_client_id() -> String {
    DIRECT_CLIENT_ID.to_owned()
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
    /// The client that asked for the token (RFC 9068): `tokend` for a
    /// direct login.
    #[serde(default = "direct_client_id")]
    pub client_id: String,
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
