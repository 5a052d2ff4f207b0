//! JWTs: the claims tokend puts in them, the key ring that signs and verifies
//! them, and the JWKS that publishes the public keys.

mod cache;
mod claims;
mod keys;

pub use claims::{Claims, TokenType};
pub use keys::{Key, KeyRing, libtrust_kid};

/// Algorithms a key ring may hold.
pub const SUPPORTED_ALGORITHMS: &[&str] = &["ES256", "HS256", "HS384", "HS512"];

/// Longest token string the verifier will look at.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
