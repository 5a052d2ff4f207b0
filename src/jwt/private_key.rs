//! Private keys of every supported type: read from PEM, generated, and
//! described as what a JWT library, a JWKS and an X.509 builder need.

use anyhow::{Context, anyhow, bail};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{
    pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey},
    traits::PublicKeyParts,
};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// Smallest RSA modulus tokend accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// An asymmetric private key tokend can sign with.
pub enum PrivateKey {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, <redacted>)", self.alg())
    }
}

impl PrivateKey {
    /// A new random key for `alg` (ES256, ES384, RS256 or EdDSA);
    /// `rsa_bits` is the RSA modulus size.
    pub fn generate(alg: Algorithm, rsa_bits: usize) -> anyhow::Result<Self> {
        let mut rng = rand::rngs::OsRng;
        Ok(match alg {
            Algorithm::ES256 => PrivateKey::P256(p256::SecretKey::random(&mut rng)),
            Algorithm::ES384 => PrivateKey::P384(p384::SecretKey::random(&mut rng)),
            Algorithm::RS256 => {
                if rsa_bits < MIN_RSA_BITS {
                    bail!("RSA keys must have at least {MIN_RSA_BITS} bits");
                }
                let key =
                    rsa::RsaPrivateKey::new(&mut rng, rsa_bits).context("generate an RSA key")?;
                PrivateKey::Rsa(Box::new(key))
            }
            Algorithm::EdDSA => {
                PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(&mut rng)))
            }
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
                "RSA PRIVATE KEY" => Self::rsa(
                    rsa::RsaPrivateKey::from_pkcs1_der(der).context("a bad PKCS#1 RSA key")?,
                )?,
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

    fn from_pkcs8_der(der: &[u8]) -> anyhow::Result<Self> {
        if let Ok(key) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P256(key));
        }
        if let Ok(key) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P384(key));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::Ed25519(Box::new(key)));
        }
        match rsa::RsaPrivateKey::from_pkcs8_der(der) {
            Ok(key) => Self::rsa(key),
            Err(_) => {
                let info = ed25519_dalek::pkcs8::PrivateKeyInfo::try_from(der)
                    .context("not a PKCS#8 private key")?;
                let params = info
                    .algorithm
                    .parameters_oid()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default();
                bail!(
                    "an unsupported key type (algorithm {}{params}); tokend takes P-256, P-384, RSA and Ed25519 keys",
                    info.algorithm.oid
                )
            }
        }
    }

    fn from_sec1_der(der: &[u8]) -> anyhow::Result<Self> {
        if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
            return Ok(PrivateKey::P256(key));
        }
        p384::SecretKey::from_sec1_der(der)
            .map(PrivateKey::P384)
            .map_err(|_| anyhow!("not a P-256 or P-384 SEC1 key"))
    }

    fn rsa(key: rsa::RsaPrivateKey) -> anyhow::Result<Self> {
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            bail!("RSA keys must have at least {MIN_RSA_BITS} bits, this one has {bits}");
        }
        Ok(PrivateKey::Rsa(Box::new(key)))
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
        let doc = match self {
            PrivateKey::P256(k) => k.public_key().to_public_key_der(),
            PrivateKey::P384(k) => k.public_key().to_public_key_der(),
            PrivateKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            PrivateKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
        }
        .context("encode the public key")?;
        Ok(doc.into_vec())
    }

    /// The libtrust fingerprint of the public key (the default `kid`).
    pub fn kid(&self) -> anyhow::Result<String> {
        Ok(libtrust_kid(&self.spki_der()?))
    }

    /// The key as unencrypted PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> anyhow::Result<Secret> {
        let pem = match self {
            PrivateKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            // PKCS#8 v1 (no public key inside), which OpenSSL 3.0 also reads.
            PrivateKey::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
        }
        .context("encode the private key")?;
        Ok(Secret::new(pem.as_str()))
    }

    /// The key-type members of the public JWK (`kty`, `crv`, `x`/`y` or `n`/`e`).
    pub fn public_jwk(&self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let b64 = |bytes: &[u8]| serde_json::Value::from(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = serde_json::Map::new();
        match self {
            PrivateKey::P256(k) => {
                let point = p256::EncodedPoint::from(k.public_key());
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    bail!("the public key is the identity point");
                };
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), "P-256".into());
                jwk.insert("x".into(), b64(x));
                jwk.insert("y".into(), b64(y));
            }
            PrivateKey::P384(k) => {
                let point = p384::EncodedPoint::from(k.public_key());
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    bail!("the public key is the identity point");
                };
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), "P-384".into());
                jwk.insert("x".into(), b64(x));
                jwk.insert("y".into(), b64(y));
            }
            PrivateKey::Rsa(k) => {
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), b64(&k.n().to_bytes_be()));
                jwk.insert("e".into(), b64(&k.e().to_bytes_be()));
            }
            PrivateKey::Ed25519(k) => {
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("x".into(), b64(k.verifying_key().as_bytes()));
            }
        }
        Ok(jwk)
    }

    /// What jsonwebtoken signs and verifies with.
    pub(crate) fn jwt_keys(&self) -> anyhow::Result<(EncodingKey, DecodingKey)> {
        Ok(match self {
            PrivateKey::P256(k) => {
                let pkcs8 = k.to_pkcs8_der().context("encode the private key")?;
                let point = p256::EncodedPoint::from(k.public_key());
                (
                    EncodingKey::from_ec_der(pkcs8.as_bytes()),
                    DecodingKey::from_ec_der(point.as_bytes()),
                )
            }
            PrivateKey::P384(k) => {
                let pkcs8 = k.to_pkcs8_der().context("encode the private key")?;
                let point = p384::EncodedPoint::from(k.public_key());
                (
                    EncodingKey::from_ec_der(pkcs8.as_bytes()),
                    DecodingKey::from_ec_der(point.as_bytes()),
                )
            }
            PrivateKey::Rsa(k) => {
                let pkcs1 = k.to_pkcs1_der().context("encode the private key")?;
                (
                    EncodingKey::from_rsa_der(pkcs1.as_bytes()),
                    DecodingKey::from_rsa_raw_components(
                        &k.n().to_bytes_be(),
                        &k.e().to_bytes_be(),
                    ),
                )
            }
            PrivateKey::Ed25519(k) => {
                let pkcs8 = k.to_pkcs8_der().context("encode the private key")?;
                (
                    EncodingKey::from_ed_der(pkcs8.as_bytes()),
                    DecodingKey::from_ed_der(k.verifying_key().as_bytes()),
                )
            }
        })
    }
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
        let end = block
            .find(&end_line)
            .with_context(|| format!("no `{end_line}` line"))?;
        let body = &block[label_end + 5..end];
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
mod tests {
    use super::*;

    #[test]
    fn libtrust_kid_has_twelve_groups_of_four() {
        let kid = libtrust_kid(b"any bytes");
        let groups: Vec<_> = kid.split(':').collect();
        assert_eq!(groups.len(), 12);
        assert!(groups.iter().all(|g| g.len() == 4));
    }

    #[test]
    fn every_generated_key_reads_back_from_its_pem() {
        for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
            let key = PrivateKey::generate(alg, 0).unwrap();
            let pem = key.to_pkcs8_pem().unwrap();
            let back = PrivateKey::from_pem(pem.expose()).unwrap();
            assert_eq!(back.alg(), alg);
            assert_eq!(back.kid().unwrap(), key.kid().unwrap());
        }
    }

    #[test]
    fn sec1_ec_keys_are_accepted() {
        let key = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = key.to_sec1_pem(LineEnding::LF).unwrap();
        assert_eq!(PrivateKey::from_pem(&pem).unwrap().alg(), Algorithm::ES384);
    }

    #[test]
    fn a_file_without_a_private_key_is_refused_by_name() {
        let text = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = PrivateKey::from_pem(text).unwrap_err().to_string();
        assert!(err.contains("only CERTIFICATE"), "{err}");
        assert!(PrivateKey::from_pem("hello").is_err());
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        assert!(PrivateKey::generate(Algorithm::RS256, 1024).is_err());
    }
}
