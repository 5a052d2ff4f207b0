//! One key of the ring, and where keys come from: a PEM file, a secret,
//! or the key generated on a first start.

use std::{fs, io::Write, path::Path};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};

use crate::config::KeyConfig;

use super::{
    cert,
    private_key::{PrivateKey, libtrust_kid},
    signature::Signer,
};

/// One key of the ring: its id, its algorithm, and what it signs and
/// verifies with.
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub(super) signer: Signer,
    pub(super) decoding: DecodingKey,
    /// The public JWK, for asymmetric keys only.
    pub jwk: Option<serde_json::Value>,
    /// DER SubjectPublicKeyInfo, for asymmetric keys only.
    spki_der: Option<Vec<u8>>,
    /// The configured certificate chain (standard base64 DER, leaf first).
    cert_chain: Option<Vec<String>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// An HMAC key from a raw UTF-8 secret of at least 32 bytes.
    pub fn from_secret(alg: Algorithm, secret: &str, kid: Option<String>) -> anyhow::Result<Self> {
        let Some(signer) = Signer::hmac(alg, secret.as_bytes()) else {
            bail!("a secret needs alg HS256, HS384 or HS512, not {alg:?}");
        };
        if secret.len() < 32 {
            bail!(
                "a secret must be at least 32 bytes, this one has {}",
                secret.len()
            );
        }
        let kid = kid.unwrap_or_else(|| {
            let digest = Sha256::digest(format!("tokend-kid:{secret}"));
            format!("hs-{}", hex(&digest[..8]))
        });
        Ok(Key {
            kid,
            alg,
            signer,
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            jwk: None,
            spki_der: None,
            cert_chain: None,
        })
    }

    /// An asymmetric key from a PEM private key (PKCS#8, SEC1 or PKCS#1);
    /// its algorithm follows from its type.
    pub fn from_pem(pem: &str, kid: Option<String>) -> anyhow::Result<Self> {
        Self::from_private(&PrivateKey::from_pem(pem)?, kid)
    }

    /// An asymmetric key; without `kid`, the libtrust fingerprint of its
    /// public key.
    pub fn from_private(private: &PrivateKey, kid: Option<String>) -> anyhow::Result<Self> {
        let spki_der = private.spki_der()?;
        let kid = kid.unwrap_or_else(|| libtrust_kid(&spki_der));
        let alg = private.alg();
        let mut jwk = private.public_jwk()?;
        jwk.insert("kid".into(), kid.clone().into());
        jwk.insert("alg".into(), alg_name(alg).into());
        jwk.insert("use".into(), "sig".into());
        let (signer, decoding) = private.jwt_keys()?;
        Ok(Key {
            kid,
            alg,
            signer,
            decoding,
            jwk: Some(serde_json::Value::Object(jwk)),
            spki_der: Some(spki_der),
            cert_chain: None,
        })
    }

    /// Attaches a PEM certificate chain (leaf first) whose leaf must be for
    /// this key; the JWK then carries it as `x5c`.
    pub fn with_cert_chain(mut self, pem: &str) -> anyhow::Result<Self> {
        let Some(spki) = &self.spki_der else {
            bail!("a secret cannot have a certificate");
        };
        let chain = cert::read_chain(pem, spki)?;
        if let Some(serde_json::Value::Object(jwk)) = &mut self.jwk {
            jwk.insert("x5c".into(), chain.clone().into());
        }
        self.cert_chain = Some(chain);
        Ok(self)
    }

    /// True for HS* keys, which verify with the same secret they sign with.
    pub fn is_symmetric(&self) -> bool {
        is_hmac(self.alg)
    }

    /// The configured certificate chain: standard base64 DER, leaf first.
    pub fn cert_chain(&self) -> Option<&[String]> {
        self.cert_chain.as_deref()
    }
}

/// The JOSE name of a supported algorithm (`ES256`, `EdDSA`, …).
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        _ => "unsupported",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether building a ring may create `<data_dir>/signing-key.pem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generate {
    /// Create it when no key is configured and the file is missing (serving).
    IfMissing,
    /// Never write anything (inspecting); no key at all is then an error.
    Never,
}

pub(super) fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// One `[[keys]]` entry. A PEM key's algorithm is its type's; `alg`, when
/// given, must agree. A secret's algorithm is `alg`, else `algorithm` when
/// that is an HS* one, else HS256.
pub(super) fn load_key(entry: &KeyConfig, default_alg: Algorithm) -> anyhow::Result<Key> {
    let alg = match &entry.alg {
        Some(name) => Some(super::parse_algorithm(name).with_context(|| {
            format!(
                "alg: `{name}` is not one of {}",
                super::SUPPORTED_ALGORITHMS.join(", ")
            )
        })?),
        None => None,
    };
    let key = match (&entry.path, &entry.secret) {
        (Some(path), None) => {
            let pem = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let key = Key::from_pem(&pem, entry.kid.clone())
                .with_context(|| path.display().to_string())?;
            if let Some(alg) = alg.filter(|a| *a != key.alg) {
                bail!(
                    "alg: {} does not fit {}, a key for {}",
                    alg_name(alg),
                    path.display(),
                    alg_name(key.alg)
                );
            }
            key
        }
        (None, Some(secret)) => {
            let alg = alg.unwrap_or(if is_hmac(default_alg) {
                default_alg
            } else {
                Algorithm::HS256
            });
            Key::from_secret(alg, secret.expose(), entry.kid.clone())?
        }
        _ => bail!("give exactly one of `path` or `secret`"),
    };
    match &entry.cert {
        Some(path) => {
            let pem = fs::read_to_string(path)
                .with_context(|| format!("cert: cannot read {}", path.display()))?;
            key.with_cert_chain(&pem)
                .with_context(|| format!("cert: {}", path.display()))
        }
        None => Ok(key),
    }
}

/// The key kept at `<data_dir>/signing-key.pem`, created (mode 0600) with
/// algorithm `alg` if missing and allowed.
pub(super) fn generated_key(
    data_dir: &Path,
    alg: Algorithm,
    generate: Generate,
) -> anyhow::Result<Key> {
    let path = data_dir.join("signing-key.pem");
    if path.exists() {
        let pem =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = Key::from_pem(&pem, None).with_context(|| path.display().to_string())?;
        if key.alg != alg {
            bail!(
                "algorithm: {} was asked for, but {} holds a key for {} (remove the file to generate a new key, or configure `keys`)",
                alg_name(alg),
                path.display(),
                alg_name(key.alg)
            );
        }
        return Ok(key);
    }
    if generate == Generate::Never {
        bail!(
            "keys: none configured, and {} does not exist yet (tokend generates it on its first start)",
            path.display()
        );
    }
    let private = PrivateKey::generate(alg, super::private_key::MIN_RSA_BITS)
        .context("generate a signing key")?;
    let pem = private.to_pkcs8_pem()?;
    write_private(&path, pem.expose().as_bytes())?;
    tracing::info!(path = %path.display(), alg = alg_name(alg), "generated a signing key");
    Key::from_private(&private, None)
}

/// Writes a file only its owner can read, failing if it already exists.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
