//! Tokens whose signature has been verified, remembered by their exact text.
//!
//! An access token is presented on every API call of its life; checking its
//! ECDSA signature each time costs far more than everything else a call
//! does. A token found here costs a hash and a comparison instead. The
//! signature of a given text under a given key ring never changes, so the
//! only things checked again on a hit are the time claims (`exp`, `nbf`);
//! the registry look-up that follows is not affected.
//!
//! Bounded: a fixed number of slots, each holding one token; a new token
//! replaces whatever was in its slot. The slot is chosen by a keyed hash
//! (random per process) and the text compared in constant time, so neither
//! the slot nor the comparison tells a caller how close a guess came.

use std::{
    collections::hash_map::RandomState,
    hash::BuildHasher,
    sync::{Mutex, PoisonError},
};

use subtle::ConstantTimeEq;

use super::Claims;

/// What was verified: the claims and the `nbf` claim (tokend's own claims
/// have none, but a token that carries one must respect it on a hit too).
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Claims,
    pub nbf: Option<i64>,
}

struct Entry {
    token: Box<str>,
    audience: Option<Box<str>>,
    verified: Verified,
}

pub struct VerifiedTokens {
    slots: Box<[Mutex<Option<Entry>>]>,
    hasher: RandomState,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl VerifiedTokens {
    pub fn new(slots: usize) -> Self {
        VerifiedTokens {
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
            hasher: RandomState::new(),
        }
    }

    fn slot(&self, token: &str) -> &Mutex<Option<Entry>> {
        let index = self.hasher.hash_one(token) as usize % self.slots.len();
        &self.slots[index]
    }

    /// What was verified for exactly this text and expected audience.
    pub fn get(&self, token: &str, audience: Option<&str>) -> Option<Verified> {
        let slot = self
            .slot(token)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|e| {
                bool::from(e.token.as_bytes().ct_eq(token.as_bytes()))
                    && e.audience.as_deref() == audience
            })
            .map(|e| e.verified.clone())
    }

    /// Remembers a token whose signature and claims were just verified.
    pub fn put(&self, token: &str, audience: Option<&str>, verified: &Verified) {
        let entry = Entry {
            token: token.into(),
            audience: audience.map(Into::into),
            verified: verified.clone(),
        };
        *self
            .slot(token)
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::TokenType;

    fn verified(username: &str) -> Verified {
        let user_id = uuid::Uuid::now_v7();
        Verified {
            claims: Claims {
                token_type: TokenType::Access,
                jti: uuid::Uuid::new_v4(),
                iat: 0,
                exp: Some(10),
                sub: user_id.to_string(),
                user_id,
                username: username.into(),
                client_id: "tokend".into(),
                iss: None,
                aud: None,
            },
            nbf: None,
        }
    }

    #[test]
    fn a_remembered_token_is_found_by_its_exact_text() {
        let cache = VerifiedTokens::new(16);
        cache.put("a.b.c", None, &verified("ann"));
        assert_eq!(cache.get("a.b.c", None).unwrap().claims.username, "ann");
        assert!(cache.get("a.b.d", None).is_none());
    }

    #[test]
    fn the_expected_audience_is_part_of_the_key() {
        let cache = VerifiedTokens::new(16);
        cache.put("a.b.c", Some("svc"), &verified("ann"));
        assert!(cache.get("a.b.c", None).is_none());
        assert!(cache.get("a.b.c", Some("other")).is_none());
        assert!(cache.get("a.b.c", Some("svc")).is_some());
    }

    #[test]
    fn a_full_cache_replaces_instead_of_growing() {
        let cache = VerifiedTokens::new(1);
        cache.put("one", None, &verified("ann"));
        cache.put("two", None, &verified("bob"));
        assert!(cache.get("one", None).is_none());
        assert_eq!(cache.get("two", None).unwrap().claims.username, "bob");
    }
}
