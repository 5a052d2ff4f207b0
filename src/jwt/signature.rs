//! The third part of a JWT. tokend signs with aws-lc-rs keys built once per
//! key: jsonwebtoken would parse the private key again for every token,
//! which for ECDSA costs as much as the signature itself. An ECDSA
//! signature has exactly one accepted text: its low-S form.

use anyhow::Context;
use aws_lc_rs::{
    hmac,
    rand::SystemRandom,
    signature::{EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use crate::error::Result;

/// What a key signs with, built once when the key is loaded.
pub(super) enum Signer {
    /// Boxed: the key holds both digest states, over 1 KiB.
    Hmac(Box<hmac::Key>),
    /// A key pair for the fixed-length (`r || s`) signatures of JWS.
    Ecdsa(EcdsaKeyPair, Curve),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    /// An HMAC key for HS256, HS384 or HS512; `None` for other algorithms.
    pub(super) fn hmac(alg: Algorithm, secret: &[u8]) -> Option<Self> {
        let algorithm = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            _ => return None,
        };
        Some(Signer::Hmac(Box::new(hmac::Key::new(algorithm, secret))))
    }

    /// The JWS signature of `message`; ECDSA signatures in their low-S form.
    fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        // aws-lc draws its own randomness; the argument is for ring's API.
        let rng = SystemRandom::new();
        Ok(match self {
            Signer::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
            Signer::Ecdsa(key, curve) => {
                let mut signature = key.sign(&rng, message)?.as_ref().to_vec();
                if signature.len() != 2 * curve.order().len() {
                    anyhow::bail!(
                        "aws-lc made an ECDSA signature of {} bytes",
                        signature.len()
                    );
                }
                if !curve.is_low_s(&signature) {
                    curve.negate_s(&mut signature);
                }
                signature
            }
            Signer::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)?;
                signature
            }
            Signer::Ed25519(key) => key.sign(message).as_ref().to_vec(),
        })
    }

    /// A compact JWS of `header` and `claims`: what `jsonwebtoken::encode`
    /// makes, byte for byte apart from a randomized ECDSA signature.
    pub(super) fn sign_token<T: Serialize>(&self, header: &Header, claims: &T) -> Result<String> {
        let header = serde_json::to_vec(header).context("encode header")?;
        let payload = serde_json::to_vec(claims).context("encode claims")?;
        // Base64 of the parts, of a signature of up to 512 bytes (RSA-4096;
        // a longer one grows the string once), and the dots.
        let mut token = String::with_capacity((header.len() + payload.len() + 512) * 4 / 3 + 8);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.sign(token.as_bytes()).context("sign token")?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}

/// The curves of ES256 and ES384.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
}

/// The order n of P-256's group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The order n of P-384's group, big-endian.
const P384_N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

const P256_HALF_N: [u8; 32] = halve(P256_N);
const P384_HALF_N: [u8; 48] = halve(P384_N);

/// ⌊n / 2⌋ of a big-endian number.
const fn halve<const L: usize>(n: [u8; L]) -> [u8; L] {
    let mut half = [0u8; L];
    let mut carry = 0;
    let mut i = 0;
    while i < L {
        half[i] = (n[i] >> 1) | carry;
        carry = (n[i] & 1) << 7;
        i += 1;
    }
    half
}

impl Curve {
    /// The curve of an ES* algorithm; `None` for every other algorithm.
    pub(super) fn of(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::ES256 => Some(Curve::P256),
            Algorithm::ES384 => Some(Curve::P384),
            _ => None,
        }
    }

    fn order(self) -> &'static [u8] {
        match self {
            Curve::P256 => &P256_N,
            Curve::P384 => &P384_N,
        }
    }

    fn half_order(self) -> &'static [u8] {
        match self {
            Curve::P256 => &P256_HALF_N,
            Curve::P384 => &P384_HALF_N,
        }
    }

    /// True when `signature` is `r || s` of this curve's length with
    /// s ≤ n/2. For every valid (r, s), (r, n − s) is valid too; accepting
    /// only the low one gives each token a single valid text.
    pub(super) fn is_low_s(self, signature: &[u8]) -> bool {
        let len = self.order().len();
        // Equal-length big-endian numbers compare as byte strings.
        signature.len() == 2 * len && signature[len..] <= *self.half_order()
    }

    /// Replaces s by n − s in `r || s`: the other valid signature of the
    /// same message (aws-lc, like OpenSSL, returns either).
    pub(super) fn negate_s(self, signature: &mut [u8]) {
        let n = self.order();
        let s = &mut signature[n.len()..];
        // Byte by byte from the least significant; 0 < s < n, so no borrow
        // is left at the end. s is public: no need for constant time.
        let mut borrow = 0u8;
        for (s, n) in s.iter_mut().rev().zip(n.iter().rev()) {
            let (d, b1) = n.overflowing_sub(*s);
            let (d, b2) = d.overflowing_sub(borrow);
            *s = d;
            borrow = u8::from(b1 || b2);
        }
    }

    /// True when the base64url signature part of a token is a low-S
    /// signature of this curve (see [`is_low_s`](Self::is_low_s)).
    pub(super) fn is_low_s_part(self, part: &str) -> bool {
        let mut signature = [0u8; 96];
        // A part longer than the buffer fails to decode: refused as well.
        match URL_SAFE_NO_PAD.decode_slice(part, &mut signature) {
            Ok(len) => self.is_low_s(&signature[..len]),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED,
        ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaSigningAlgorithm, KeyPair, UnparsedPublicKey,
        VerificationAlgorithm,
    };

    use super::*;

    fn curves() -> [(
        Curve,
        &'static EcdsaSigningAlgorithm,
        &'static dyn VerificationAlgorithm,
    ); 2] {
        [
            (
                Curve::P256,
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &ECDSA_P256_SHA256_FIXED,
            ),
            (
                Curve::P384,
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                &ECDSA_P384_SHA384_FIXED,
            ),
        ]
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// ⌊n/2⌋ of each curve as SEC 2 gives n, halved elsewhere.
    #[test]
    fn half_orders_are_the_known_ones() {
        assert_eq!(
            hex(&P256_HALF_N),
            "7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8"
        );
        assert_eq!(
            hex(&P384_HALF_N),
            "7fffffffffffffffffffffffffffffffffffffffffffffffe3b1a6c0fa1b96ef\
             ac0d06d9245853bd76760cb5666294b9"
        );
    }

    /// (r, n − s) is what the backend itself accepts: this proves the
    /// orders are right, and that the low-S rule is what refuses it.
    #[test]
    fn the_high_s_twin_of_a_signature_is_valid_ecdsa_but_not_low_s() {
        for (curve, signing, verifying) in curves() {
            let key = EcdsaKeyPair::generate(signing).unwrap();
            let public = UnparsedPublicKey::new(verifying, key.public_key().as_ref().to_vec());
            let signer = Signer::Ecdsa(key, curve);
            for _ in 0..20 {
                let low = signer.sign(b"message").unwrap();
                assert!(curve.is_low_s(&low));
                public.verify(b"message", &low).unwrap();
                // n − s of a low s is high; negating again brings it back.
                let mut high = low.clone();
                curve.negate_s(&mut high);
                let len = curve.order().len();
                assert_eq!(high[len..], negate(curve, &low[len..]));
                assert!(!curve.is_low_s(&high), "{curve:?}");
                public.verify(b"message", &high).unwrap();
                curve.negate_s(&mut high);
                assert_eq!(high, low);
            }
        }
    }

    /// n − s, written apart from `negate_s` so that one checks the other.
    fn negate(curve: Curve, s: &[u8]) -> Vec<u8> {
        let n = curve.order();
        let mut out = vec![0u8; n.len()];
        let mut borrow = 0i32;
        for i in (0..n.len()).rev() {
            let d = i32::from(n[i]) - i32::from(s[i]) - borrow;
            out[i] = d.rem_euclid(256) as u8;
            borrow = i32::from(d < 0);
        }
        assert_eq!(borrow, 0);
        out
    }

    /// Without tokend's normalising, about half of aws-lc's signatures are
    /// high-S: the low-S rule would refuse tokend's own tokens.
    #[test]
    fn aws_lc_alone_makes_high_s_signatures() {
        for (curve, signing, _) in curves() {
            let key = EcdsaKeyPair::generate(signing).unwrap();
            let rng = SystemRandom::new();
            let high = (0..200)
                .filter(|_| !curve.is_low_s(key.sign(&rng, b"m").unwrap().as_ref()))
                .count();
            assert!((40..160).contains(&high), "{curve:?}: {high} of 200");
        }
    }

    #[test]
    fn signatures_of_the_wrong_length_are_not_low_s() {
        assert!(!Curve::P256.is_low_s(&[0; 96]));
        assert!(!Curve::P384.is_low_s(&[0; 64]));
        assert!(!Curve::P256.is_low_s_part(&URL_SAFE_NO_PAD.encode([0; 200])));
        assert!(!Curve::P256.is_low_s_part("not base64!"));
        assert!(Curve::P256.is_low_s_part(&URL_SAFE_NO_PAD.encode([0; 64])));
    }
}
