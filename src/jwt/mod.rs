//! JWTs: the claims tokend puts in them, the key ring that signs and verifies
//! them, the JWKS that publishes the public keys, and the private keys and
//! certificates behind them.

mod cache;
pub mod cert;
mod claims;
mod key;
mod private_key;
mod ring;
mod signature;

pub use claims::{
    ACCESS_TYP, Claims, ContainerAccess, ContainerClaims, DIRECT_CLIENT_ID, REFRESH_TYP, TokenType,
};
pub use jsonwebtoken::Algorithm;
pub use key::{Generate, Key, alg_name, write_private};
pub use private_key::{MIN_RSA_BITS, PrivateKey, libtrust_kid, pem_blocks};
pub use ring::{KeyRing, KeySettings};

/// Algorithms a key ring may hold, by their JOSE names.
pub const SUPPORTED_ALGORITHMS: &[&str] = &[
    "ES256", "ES384", "RS256", "EdDSA", "HS256", "HS384", "HS512",
];

/// A supported algorithm by its JOSE name; `None` for anything else.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    if SUPPORTED_ALGORITHMS.contains(&name) {
        name.parse().ok()
    } else {
        None
    }
}

/// Longest token string the verifier will look at.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
