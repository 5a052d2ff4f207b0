//! Private keys of every supported type: read from PEM, generated, and
//! described as what a JWT signer, a JWKS and an X.509 builder need. All of
//! it is aws-lc-rs, the backend that signs and verifies the tokens.

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der},
    error::KeyRejected,
    rsa::KeySize,
    signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
    },
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};
use x509_cert::der::{
    Decode, Reader, SliceReader,
    asn1::UintRef,
    oid::db::{rfc5912, rfc8410},
};

use super::signature::{Curve, Signer};
use crate::secret::Secret;

/// Smallest RSA modulus tokend accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus aws-lc accepts, in bits.
const MAX_RSA_BITS: usize = 8192;

/// An asymmetric private key tokend can sign with. ECDSA key pairs make
/// the fixed-length `r || s` signatures of JWS.
pub enum PrivateKey {
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, <redacted>)", self.alg())
    }
}

impl PrivateKey {
    /// A new random key for `alg` (ES256, ES384, RS256 or EdDSA);
    /// `rsa_bits` is the RSA modulus size: 2048, 3072, 4096 or 8192, the
    /// sizes aws-lc generates.
    pub fn generate(alg: Algorithm, rsa_bits: usize) -> anyhow::Result<Self> {
        let failed = |_| anyhow!("cannot generate a key for {}", super::alg_name(alg));
        Ok(match alg {
            Algorithm::ES256 => PrivateKey::P256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?,
            ),
            Algorithm::ES384 => PrivateKey::P384(
                EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).map_err(failed)?,
            ),
            Algorithm::RS256 => {
                let size = match rsa_bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    8192 => KeySize::Rsa8192,
                    bits if bits < MIN_RSA_BITS => {
                        bail!("RSA keys must have at least {MIN_RSA_BITS} bits")
                    }
                    bits => bail!(
                        "RSA keys are generated with 2048, 3072, 4096 or 8192 bits, not {bits}"
                    ),
                };
                PrivateKey::Rsa(RsaKeyPair::generate(size).map_err(failed)?)
            }
            Algorithm::EdDSA => PrivateKey::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            other => {
                bail!("cannot generate a key for {other:?}: choose ES256, ES384, RS256 or EdDSA")
            }
        })
    }

    /// Reads the first private key of a PEM text: PKCS#8 (`PRIVATE KEY`:
    /// P-256, P-384, RSA or Ed25519), SEC1 (`EC PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`).
    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let blocks = pem_blocks(text)?;
        let mut labels = Vec::new();
        for (label, der) in &blocks {
            let key = match label.as_str() {
                "PRIVATE KEY" => Self::from_pkcs8_der(der)?,
                "EC PRIVATE KEY" => Self::from_sec1_der(der)?,
                "RSA PRIVATE KEY" => Self::rsa(der, RsaKeyPair::from_der(der))?,
                "ENCRYPTED PRIVATE KEY" => {
                    bail!(
                        "the key is encrypted; tokend needs it unencrypted (keep the file mode 0600)"
                    )
                }
                other => {
                    labels.push(other.to_owned());
                    continue;
                }
            };
            return Ok(key);
        }
        if labels.is_empty() {
            bail!("no PEM block found (expected -----BEGIN PRIVATE KEY-----)");
        }
        bail!("no private key found, only {}", labels.join(", "))
    }

    /// A PKCS#8 key (v1, or v2 with its public key), by its algorithm.
    fn from_pkcs8_der(der: &[u8]) -> anyhow::Result<Self> {
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| anyhow!("not a PKCS#8 private key ({e})"))?;
        let params = info.algorithm.parameters_oid().ok();
        Ok(match (info.algorithm.oid, params) {
            (rfc5912::ID_EC_PUBLIC_KEY, Some(rfc5912::SECP_256_R_1)) => PrivateKey::P256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| anyhow!("a bad P-256 key ({e})"))?,
            ),
            (rfc5912::ID_EC_PUBLIC_KEY, Some(rfc5912::SECP_384_R_1)) => PrivateKey::P384(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der)
                    .map_err(|e| anyhow!("a bad P-384 key ({e})"))?,
            ),
            (rfc8410::ID_ED_25519, _) => PrivateKey::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| anyhow!("a bad Ed25519 key ({e})"))?,
            ),
            (rfc5912::RSA_ENCRYPTION, _) => {
                Self::rsa(info.private_key, RsaKeyPair::from_pkcs8(der))?
            }
            (oid, params) => {
                let params = params.map(|p| format!(" {p}")).unwrap_or_default();
                bail!(
                    "an unsupported key type (algorithm {oid}{params}); tokend takes P-256, P-384, RSA and Ed25519 keys"
                )
            }
        })
    }

    /// A SEC1 `ECPrivateKey` of P-256 or P-384 (its curve is checked).
    fn from_sec1_der(der: &[u8]) -> anyhow::Result<Self> {
        let sec1 =
            |alg: &'static EcdsaSigningAlgorithm| EcdsaKeyPair::from_private_key_der(alg, der);
        if let Ok(key) = sec1(&ECDSA_P256_SHA256_FIXED_SIGNING) {
            return Ok(PrivateKey::P256(key));
        }
        sec1(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .map(PrivateKey::P384)
            .map_err(|_| anyhow!("not a P-256 or P-384 SEC1 key"))
    }

    /// An RSA key as aws-lc parsed it from `pkcs1` (its PKCS#1
    /// `RSAPrivateKey`), with the size named when it is refused for it.
    fn rsa(pkcs1: &[u8], parsed: Result<RsaKeyPair, KeyRejected>) -> anyhow::Result<Self> {
        let bits = rsa_modulus_bits(pkcs1);
        match (parsed, bits) {
            (_, Some(bits)) if bits < MIN_RSA_BITS => {
                bail!("RSA keys must have at least {MIN_RSA_BITS} bits, this one has {bits}")
            }
            (_, Some(bits)) if bits > MAX_RSA_BITS => {
                bail!("RSA keys may have at most {MAX_RSA_BITS} bits, this one has {bits}")
            }
            (Ok(key), _) => Ok(PrivateKey::Rsa(key)),
            (Err(e), _) => bail!("a bad RSA key ({e})"),
        }
    }

    /// The JWT algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        match self {
            PrivateKey::P256(_) => Algorithm::ES256,
            PrivateKey::P384(_) => Algorithm::ES384,
            PrivateKey::Rsa(_) => Algorithm::RS256,
            PrivateKey::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// The DER SubjectPublicKeyInfo of the public key.
    pub fn spki_der(&self) -> anyhow::Result<Vec<u8>> {
        let der = match self {
            PrivateKey::P256(k) | PrivateKey::P384(k) => k.public_key().as_der(),
            PrivateKey::Rsa(k) => k.public_key().as_der(),
            PrivateKey::Ed25519(k) => k.public_key().as_der(),
        }
        .map_err(|_| anyhow!("cannot encode the public key"))?;
        Ok(der.as_ref().to_vec())
    }

    /// The libtrust fingerprint of the public key (the default `kid`).
    pub fn kid(&self) -> anyhow::Result<String> {
        Ok(libtrust_kid(&self.spki_der()?))
    }

    /// The key as unencrypted PKCS#8 PEM, v1 (no public key inside), which
    /// OpenSSL 3.0 also reads.
    pub fn to_pkcs8_pem(&self) -> anyhow::Result<Secret> {
        let base64 = match self {
            PrivateKey::P256(k) | PrivateKey::P384(k) => k.to_pkcs8v1().map(|d| STANDARD.encode(d)),
            PrivateKey::Rsa(k) => {
                AsDer::<Pkcs8V1Der>::as_der(k).map(|d| STANDARD.encode(d.as_ref()))
            }
            PrivateKey::Ed25519(k) => k.to_pkcs8v1().map(|d| STANDARD.encode(d)),
        }
        .map_err(|_| anyhow!("cannot encode the private key"))?;
        let mut pem = String::with_capacity(base64.len() + base64.len() / 64 + 64);
        pem.push_str("-----BEGIN PRIVATE KEY-----\n");
        // Base64 is ASCII, so 64-byte chunks are whole characters.
        for line in base64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        Ok(Secret::new(pem))
    }

    /// The key-type members of the public JWK (`kty`, `crv`, `x`/`y` or `n`/`e`).
    pub fn public_jwk(&self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let b64 = |bytes: &[u8]| serde_json::Value::from(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = serde_json::Map::new();
        match self {
            PrivateKey::P256(k) | PrivateKey::P384(k) => {
                // The uncompressed point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                let Some((&4, xy)) = point.split_first() else {
                    bail!("the public key is not an uncompressed point");
                };
                let (x, y) = xy.split_at(xy.len() / 2);
                let crv = if matches!(self, PrivateKey::P256(_)) {
                    "P-256"
                } else {
                    "P-384"
                };
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), crv.into());
                jwk.insert("x".into(), b64(x));
                jwk.insert("y".into(), b64(y));
            }
            PrivateKey::Rsa(k) => {
                let RsaPublicKeyComponents { n, e } =
                    RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                // RFC 7518 §6.3.1: no leading zero octets.
                let unsigned = |b: &[u8]| b.iter().position(|&x| x != 0).unwrap_or(0);
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), b64(&n[unsigned(&n)..]));
                jwk.insert("e".into(), b64(&e[unsigned(&e)..]));
            }
            PrivateKey::Ed25519(k) => {
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("x".into(), b64(k.public_key().as_ref()));
            }
        }
        Ok(jwk)
    }

    /// What tokend signs with (aws-lc-rs, built once) and what jsonwebtoken
    /// verifies with.
    pub(super) fn jwt_keys(&self) -> anyhow::Result<(Signer, DecodingKey)> {
        Ok(match self {
            PrivateKey::P256(k) | PrivateKey::P384(k) => {
                let (alg, curve) = match self {
                    PrivateKey::P256(_) => (&ECDSA_P256_SHA256_FIXED_SIGNING, Curve::P256),
                    _ => (&ECDSA_P384_SHA384_FIXED_SIGNING, Curve::P384),
                };
                let pkcs8 = k.to_pkcs8v1().map_err(copy_failed)?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).map_err(copy_failed)?;
                (
                    Signer::Ecdsa(pair, curve),
                    DecodingKey::from_ec_der(k.public_key().as_ref()),
                )
            }
            PrivateKey::Rsa(k) => {
                let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(k).map_err(copy_failed)?;
                let RsaPublicKeyComponents { n, e } =
                    RsaPublicKeyComponents::<Vec<u8>>::from(k.public_key());
                (
                    Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8.as_ref()).map_err(copy_failed)?),
                    DecodingKey::from_rsa_raw_components(&n, &e),
                )
            }
            PrivateKey::Ed25519(k) => {
                let pkcs8 = k.to_pkcs8v1().map_err(copy_failed)?;
                (
                    Signer::Ed25519(
                        Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref())
                            .map_err(copy_failed)?,
                    ),
                    DecodingKey::from_ed_der(k.public_key().as_ref()),
                )
            }
        })
    }
}

/// The error of aws-lc failing to write or read back a key it made or
/// accepted: not expected to happen.
pub(super) fn copy_failed(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot copy the private key ({e})")
}

/// The size in bits of the modulus of a PKCS#1 `RSAPrivateKey`, read
/// apart from aws-lc so that a refused key's size can be named.
fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let mut reader = SliceReader::new(pkcs1).ok()?;
    let n = reader
        .sequence(|r| {
            let _version = UintRef::decode(r)?;
            let n = UintRef::decode(r)?.as_bytes().to_vec();
            // e, d, the primes and exponents: not needed.
            r.read_slice(r.remaining_len())?;
            Ok(n)
        })
        .ok()?;
    let top = *n.first()?;
    Some(n.len() * 8 - top.leading_zeros() as usize)
}

/// The libtrust fingerprint the Docker distribution registry uses as `kid`:
/// base32 of the first 240 bits of SHA-256(DER SubjectPublicKeyInfo), in
/// 12 groups of 4 characters joined by colons.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

/// Every `-----BEGIN X-----` … `-----END X-----` block of a PEM text, as
/// (label, DER). Lenient about line width; refuses encrypted legacy blocks.
pub fn pem_blocks(text: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start + BEGIN.len()..];
        let label_end = block
            .find("-----")
            .context("a PEM BEGIN line without its closing dashes")?;
        let label = &block[..label_end];
        let end_line = format!("-----END {label}-----");
        let body_start = label_end + "-----".len();
        let end = block[body_start..]
            .find(&end_line)
            .with_context(|| format!("no `{end_line}` line"))?
            + body_start;
        let body = &block[body_start..end];
        if body.contains("Proc-Type:") {
            bail!("the key is encrypted; tokend needs it unencrypted (keep the file mode 0600)");
        }
        let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| anyhow!("the {label} block is not valid base64"))?;
        blocks.push((label.to_owned(), der));
        rest = &block[end + end_line.len()..];
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests;
