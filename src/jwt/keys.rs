use std::{fs, io::Write, path::Path};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::{
    config::{Config, KeyConfig},
    error::{Error, Result},
};

use super::{
    Claims, MAX_TOKEN_LEN,
    cache::{Verified, VerifiedTokens},
};

/// Verified tokens remembered per key ring (about 0.5 KiB each).
const REMEMBERED_TOKENS: usize = 4096;

/// One signing key: its id, its algorithm, and what it signs and verifies with.
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public JWK, for asymmetric keys only.
    pub jwk: Option<serde_json::Value>,
    /// ES256 keys sign with this, built once: jsonwebtoken rebuilds the
    /// signing key from its DER on every signature, which costs more than
    /// the signature itself.
    es256: Option<p256::ecdsa::SigningKey>,
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
    /// An HMAC key from a raw UTF-8 secret.
    pub fn from_secret(alg: Algorithm, secret: &str, kid: Option<String>) -> anyhow::Result<Self> {
        if secret.len() < 32 {
            bail!("a secret must be at least 32 bytes");
        }
        let kid = kid.unwrap_or_else(|| {
            let digest = Sha256::digest(format!("tokend-kid:{secret}"));
            format!("hs-{}", hex(&digest[..8]))
        });
        Ok(Key {
            kid,
            alg,
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            jwk: None,
            es256: None,
        })
    }

    /// An asymmetric key from a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str, kid: Option<String>) -> anyhow::Result<Self> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem)
            .context("not a PKCS#8 P-256 (ES256) private key")?;
        Self::from_p256(&secret, kid)
    }

    fn from_p256(secret: &p256::SecretKey, kid: Option<String>) -> anyhow::Result<Self> {
        let public = secret.public_key();
        let spki = public.to_public_key_der().context("encode public key")?;
        let point = p256::EncodedPoint::from(public);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            bail!("the public key is the identity point");
        };
        let kid = kid.unwrap_or_else(|| libtrust_kid(spki.as_bytes()));
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        let pkcs8 = secret.to_pkcs8_der().context("encode private key")?;
        Ok(Key {
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_bytes()),
            decoding: DecodingKey::from_ec_der(point.as_bytes()),
            jwk: Some(jwk),
            es256: Some(p256::ecdsa::SigningKey::from(secret)),
            kid,
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// All keys tokend knows: one signs, all verify.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<Key>,
    signer: usize,
    header: Header,
    /// The header as it starts every token: base64url of its JSON.
    encoded_header: String,
    leeway: u64,
    issuer: Option<String>,
    verified: VerifiedTokens,
}

/// tokend's claims and the `nbf` claim, which they lack but a token may carry.
#[derive(Deserialize)]
struct Timed {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    nbf: Option<i64>,
}

impl KeyRing {
    /// Builds the ring from the settings, generating and keeping an ES256 key
    /// in `data_dir` when none is configured.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let alg: Algorithm = config
            .algorithm
            .parse()
            .map_err(|_| anyhow::anyhow!("algorithm: unknown `{}`", config.algorithm))?;
        let mut keys = Vec::new();
        for (i, entry) in config.keys.iter().enumerate() {
            keys.push(load_key(entry, alg).with_context(|| format!("keys[{i}]"))?);
        }
        if keys.is_empty() {
            match &config.secret {
                Some(secret) if is_hmac(alg) => {
                    keys.push(Key::from_secret(alg, secret.expose(), None).context("secret")?)
                }
                _ if is_hmac(alg) => bail!("secret: required with algorithm {}", config.algorithm),
                _ => keys.push(generated_key(&config.data_dir)?),
            }
        }
        let signer = match &config.signing_kid {
            None => 0,
            Some(kid) => keys
                .iter()
                .position(|k| &k.kid == kid)
                .with_context(|| format!("signing_kid: no key has kid `{kid}`"))?,
        };
        Ok(Self::new(keys, signer, config))
    }

    pub fn new(keys: Vec<Key>, signer: usize, config: &Config) -> Self {
        let mut header = Header::new(keys[signer].alg);
        header.kid = Some(keys[signer].kid.clone());
        let encoded_header = serde_json::to_vec(&header)
            .map(|json| URL_SAFE_NO_PAD.encode(json))
            .unwrap_or_default();
        KeyRing {
            keys,
            signer,
            header,
            encoded_header,
            leeway: config.leeway.0.as_secs(),
            issuer: config.issuer.clone(),
            verified: VerifiedTokens::new(REMEMBERED_TOKENS),
        }
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn signing_key(&self) -> &Key {
        &self.keys[self.signer]
    }

    /// Signs claims with the signing key; the header carries its `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        let key = self.signing_key();
        match &key.es256 {
            Some(signing_key) => self.sign_es256(signing_key, claims),
            None => jsonwebtoken::encode(&self.header, claims, &key.encoding)
                .context("sign token")
                .map_err(Error::from),
        }
    }

    /// What `jsonwebtoken::encode` does for ES256, with a signing key built
    /// once and the header encoded once; the same deterministic (RFC 6979)
    /// signature, so the same token.
    fn sign_es256<T: Serialize>(
        &self,
        signing_key: &p256::ecdsa::SigningKey,
        claims: &T,
    ) -> Result<String> {
        use p256::ecdsa::{Signature, signature::Signer};
        let payload = serde_json::to_vec(claims).context("encode claims")?;
        let mut token =
            String::with_capacity(self.encoded_header.len() + payload.len() * 4 / 3 + 92);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature: Signature = signing_key
            .try_sign(token.as_bytes())
            .context("sign token")?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }

    /// Verifies a token: length → header → key by `kid` → the key's own
    /// algorithm must be the header's → signature → `exp`/`nbf`/`iss`/`aud`.
    /// `audience` is what `aud` must be (`None`: no `aud` accepted).
    pub fn verify<T: DeserializeOwned>(&self, token: &str, audience: Option<&str>) -> Result<T> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TokenNotValid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::TokenNotValid)?;
        let kid = header.kid.as_deref().ok_or(Error::TokenNotValid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(Error::TokenNotValid)?;
        if key.alg != header.alg {
            return Err(Error::TokenNotValid);
        }
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims.clear();
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.set_required_spec_claims(&["aud"]);
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let data = jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map_err(|_| Error::TokenNotValid)?;
        Ok(data.claims)
    }

    /// [`verify`](Self::verify) for tokend's own claims, remembering the
    /// tokens it verified: a token seen before costs a look-up and the time
    /// checks instead of a signature check (see `jwt::cache`).
    pub fn verify_claims(&self, token: &str, audience: Option<&str>) -> Result<Claims> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TokenNotValid);
        }
        if let Some(hit) = self.verified.get(token, audience) {
            return if self.in_time(hit.claims.exp, hit.nbf) {
                Ok(hit.claims)
            } else {
                Err(Error::TokenNotValid)
            };
        }
        let Timed { claims, nbf } = self.verify(token, audience)?;
        let verified = Verified { claims, nbf };
        self.verified.put(token, audience, &verified);
        Ok(verified.claims)
    }

    /// jsonwebtoken's time checks, as `verify` applies them: not past `exp`,
    /// not before `nbf`, each with the leeway.
    fn in_time(&self, exp: Option<i64>, nbf: Option<i64>) -> bool {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let leeway = self.leeway as i64;
        exp.is_none_or(|exp| exp >= now - leeway) && nbf.is_none_or(|nbf| nbf <= now + leeway)
    }

    /// The public keys, as an RFC 7517 JWK set.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.keys.iter().filter_map(|k| k.jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn load_key(entry: &KeyConfig, default_alg: Algorithm) -> anyhow::Result<Key> {
    let alg = match &entry.alg {
        Some(a) => a
            .parse()
            .map_err(|_| anyhow::anyhow!("alg: unknown `{a}`"))?,
        None => default_alg,
    };
    match (&entry.path, &entry.secret) {
        (Some(path), None) => {
            let pem = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Key::from_pem(&pem, entry.kid.clone()).with_context(|| path.display().to_string())
        }
        (None, Some(secret)) if is_hmac(alg) => {
            Key::from_secret(alg, secret.expose(), entry.kid.clone())
        }
        (None, Some(_)) => bail!("a secret needs alg HS256, HS384 or HS512"),
        _ => bail!("give exactly one of path or secret"),
    }
}

/// The key kept at `<data_dir>/signing-key.pem`, created (mode 0600) if missing.
fn generated_key(data_dir: &Path) -> anyhow::Result<Key> {
    let path = data_dir.join("signing-key.pem");
    if path.exists() {
        let pem =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Key::from_pem(&pem, None).with_context(|| path.display().to_string());
    }
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .context("encode generated key")?;
    write_private(&path, pem.as_bytes())?;
    tracing::info!(path = %path.display(), "generated an ES256 signing key");
    Key::from_p256(&secret, None)
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
    fn es256_tokens_are_the_ones_jsonwebtoken_makes() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let ring = KeyRing::from_config(&config).unwrap();
        let claims = serde_json::json!({"sub": "someone", "jti": "x", "iat": 1});
        let ours = ring.sign(&claims).unwrap();
        let theirs =
            jsonwebtoken::encode(&ring.header, &claims, &ring.signing_key().encoding).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn hmac_keys_refuse_short_secrets() {
        assert!(Key::from_secret(Algorithm::HS256, "short", None).is_err());
    }
}
