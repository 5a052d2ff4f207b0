use std::{fs, io::Write, path::Path};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::{
    config::{Config, KeyConfig},
    error::{Error, Result},
};

use super::{
    Claims, MAX_TOKEN_LEN,
    cache::{Verified, VerifiedTokens},
    cert,
    private_key::{PrivateKey, libtrust_kid},
};

/// Verified tokens a ring remembers (about 0.5 KiB each, 2 MiB at most).
const REMEMBERED_TOKENS: usize = 4096;

/// tokend's claims and the `nbf` claim, which they lack but a token may carry.
#[derive(Deserialize)]
struct Timed {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    nbf: Option<i64>,
}

/// One key of the ring: its id, its algorithm, and what it signs and
/// verifies with.
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public JWK, for asymmetric keys only.
    pub jwk: Option<serde_json::Value>,
    /// DER SubjectPublicKeyInfo, for asymmetric keys only.
    spki_der: Option<Vec<u8>>,
    /// The configured certificate chain (standard base64 DER, leaf first).
    cert_chain: Option<Vec<String>>,
    /// ES256 keys sign with this, built once: jsonwebtoken rebuilds the
    /// signing key from its DER on every signature (deriving and checking
    /// the public key), which costs more than the signature itself.
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
    /// An HMAC key from a raw UTF-8 secret of at least 32 bytes.
    pub fn from_secret(alg: Algorithm, secret: &str, kid: Option<String>) -> anyhow::Result<Self> {
        if !is_hmac(alg) {
            bail!("a secret needs alg HS256, HS384 or HS512, not {alg:?}");
        }
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
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            jwk: None,
            spki_der: None,
            cert_chain: None,
            es256: None,
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
        let (encoding, decoding) = private.jwt_keys()?;
        let es256 = match private {
            PrivateKey::P256(secret) => Some(p256::ecdsa::SigningKey::from(secret)),
            _ => None,
        };
        Ok(Key {
            kid,
            alg,
            encoding,
            decoding,
            jwk: Some(serde_json::Value::Object(jwk)),
            spki_der: Some(spki_der),
            cert_chain: None,
            es256,
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

/// All keys tokend knows: one signs, all verify.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<Key>,
    signer: usize,
    header: Header,
    leeway: u64,
    issuer: Option<String>,
    verified: VerifiedTokens,
}

/// Whether building a ring may create `<data_dir>/signing-key.pem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generate {
    /// Create it when no key is configured and the file is missing (serving).
    IfMissing,
    /// Never write anything (inspecting); no key at all is then an error.
    Never,
}

impl KeyRing {
    /// Builds the ring from the settings, generating and keeping a key of
    /// `algorithm` in `data_dir` when none is configured.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Self::load(config, Generate::IfMissing)
    }

    /// Builds the ring from the settings. Every error names the setting at
    /// fault (`keys[1]: …`, `secret: …`, `signing_kid: …`).
    pub fn load(config: &Config, generate: Generate) -> anyhow::Result<Self> {
        let alg = super::parse_algorithm(&config.algorithm).with_context(|| {
            format!(
                "algorithm: `{}` is not one of {}",
                config.algorithm,
                super::SUPPORTED_ALGORITHMS.join(", ")
            )
        })?;
        let mut keys: Vec<Key> = Vec::new();
        for (i, entry) in config.keys.iter().enumerate() {
            let key = load_key(entry, alg).with_context(|| format!("keys[{i}]"))?;
            if let Some(j) = keys.iter().position(|k| k.kid == key.kid) {
                bail!(
                    "keys[{i}]: kid `{}` is already the kid of keys[{j}]",
                    key.kid
                );
            }
            keys.push(key);
        }
        match (&config.secret, keys.is_empty()) {
            (Some(_), false) => {
                bail!(
                    "secret: give either `secret` or `keys`, not both (a secret can be a [[keys]] entry)"
                )
            }
            (Some(secret), true) => {
                keys.push(Key::from_secret(alg, secret.expose(), None).context("secret")?)
            }
            (None, true) if is_hmac(alg) => {
                bail!("secret: required with algorithm {}", config.algorithm)
            }
            (None, true) => keys.push(generated_key(&config.data_dir, alg, generate)?),
            (None, false) => {}
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

    /// A ring of `keys` (at least one) where `keys[signer]` signs.
    pub fn new(keys: Vec<Key>, signer: usize, config: &Config) -> Self {
        let mut header = Header::new(keys[signer].alg);
        header.kid = Some(keys[signer].kid.clone());
        KeyRing {
            keys,
            signer,
            header,
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

    /// The signing key's certificate chain (standard base64 DER, leaf
    /// first), when one is configured: what an `x5c` header carries.
    pub fn signing_cert_chain(&self) -> Option<Vec<String>> {
        self.signing_key().cert_chain().map(<[String]>::to_vec)
    }

    /// Signs claims with the signing key; the header carries its `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        self.sign_with_header(&self.header, claims)
    }

    /// Like [`sign`](Self::sign), and the header also carries the signing
    /// key's certificate chain as `x5c` when one is configured.
    pub fn sign_with_x5c<T: Serialize>(&self, claims: &T) -> Result<String> {
        let mut header = self.header.clone();
        header.x5c = self.signing_cert_chain();
        self.sign_with_header(&header, claims)
    }

    fn sign_with_header<T: Serialize>(&self, header: &Header, claims: &T) -> Result<String> {
        let key = self.signing_key();
        match &key.es256 {
            Some(signing_key) => sign_es256(signing_key, header, claims),
            None => jsonwebtoken::encode(header, claims, &key.encoding)
                .context("sign token")
                .map_err(Error::from),
        }
    }

    /// Verifies a token: length → header → key by `kid` → the key's own
    /// algorithm must be the header's → signature → `exp`/`nbf`/`iss`/`aud`.
    /// `audience` is what `aud` must be; with `None`, a token that has an
    /// `aud` is refused.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, audience: Option<&str>) -> Result<T> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TokenNotValid);
        }
        // `alg: none` and algorithms jsonwebtoken does not know fail here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::TokenNotValid)?;
        let kid = header.kid.as_deref().ok_or(Error::TokenNotValid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(Error::TokenNotValid)?;
        // The key decides the algorithm, never the token: this stops an HS256
        // token "signed" with an RS/ES public key (key confusion).
        if key.alg != header.alg {
            return Err(Error::TokenNotValid);
        }
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims.clear();
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        if let Some(aud) = audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
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
    /// tokens it verified: a token seen before costs a hash, a constant-time
    /// comparison and the time checks instead of a signature check (see
    /// `jwt::cache`). The ring never changes while it serves, so a signature
    /// once valid stays valid; what the registry says is checked after this,
    /// on every call.
    pub fn verify_claims(&self, token: &str, audience: Option<&str>) -> Result<Claims> {
        // Only tokens `verify` passed are remembered: a miss goes through
        // all of its checks, the length first.
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

    /// The public keys, as an RFC 7517 JWK set (no secrets, no private parts).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.keys.iter().filter_map(|k| k.jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }
}

/// What `jsonwebtoken::encode` does for ES256, with a signing key built
/// once: the same deterministic (RFC 6979) signature, so the same token.
fn sign_es256<T: Serialize>(
    signing_key: &p256::ecdsa::SigningKey,
    header: &Header,
    claims: &T,
) -> Result<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use p256::ecdsa::{Signature, signature::Signer};
    let header = serde_json::to_vec(header).context("encode header")?;
    let payload = serde_json::to_vec(claims).context("encode claims")?;
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 92);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature: Signature = signing_key
        .try_sign(token.as_bytes())
        .context("sign token")?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
    Ok(token)
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// One `[[keys]]` entry. A PEM key's algorithm is its type's; `alg`, when
/// given, must agree. A secret's algorithm is `alg`, else `algorithm` when
/// that is an HS* one, else HS256.
fn load_key(entry: &KeyConfig, default_alg: Algorithm) -> anyhow::Result<Key> {
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
fn generated_key(data_dir: &Path, alg: Algorithm, generate: Generate) -> anyhow::Result<Key> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn es256_ring() -> (KeyRing, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            algorithm: "ES256".into(),
            ..Config::default()
        };
        (KeyRing::from_config(&config).unwrap(), dir)
    }

    #[test]
    fn es256_tokens_are_the_ones_jsonwebtoken_makes() {
        let (ring, _dir) = es256_ring();
        assert!(ring.signing_key().es256.is_some());
        let claims = serde_json::json!({"sub": "someone", "jti": "x", "iat": 1});
        let mut x5c = ring.header.clone();
        x5c.x5c = Some(vec!["MIIB".into()]);
        for header in [&ring.header, &x5c] {
            let ours = ring.sign_with_header(header, &claims).unwrap();
            let theirs =
                jsonwebtoken::encode(header, &claims, &ring.signing_key().encoding).unwrap();
            assert_eq!(ours, theirs);
        }
    }

    fn claims(exp: Option<i64>) -> Claims {
        let user_id = uuid::Uuid::now_v7();
        Claims {
            token_type: super::super::TokenType::Access,
            jti: uuid::Uuid::new_v4(),
            iat: 0,
            exp,
            sub: user_id.to_string(),
            user_id,
            username: "ann".into(),
            iss: None,
            aud: None,
        }
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let (ring, _dir) = es256_ring();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let live = ring.sign(&claims(Some(now + 60))).unwrap();
        assert!(ring.verify_claims(&live, None).is_ok());
        assert!(ring.verify_claims(&live, None).is_ok(), "a hit");
        // Past its expiry (and the leeway) by the time of the second call:
        // the first verifies and remembers it, the hit checks the time again.
        let leeway = ring.leeway as i64;
        let dying = ring.sign(&claims(Some(now - leeway - 1))).unwrap();
        assert!(ring.verify_claims(&dying, None).is_err());
        let text = ring.sign(&claims(Some(now + 60))).unwrap();
        let verified = ring.verify_claims(&text, None).unwrap();
        ring.verified.put(
            &text,
            None,
            &Verified {
                claims: Claims {
                    exp: Some(now - leeway - 1),
                    ..verified
                },
                nbf: None,
            },
        );
        assert!(ring.verify_claims(&text, None).is_err(), "an expired hit");
    }

    #[test]
    fn a_remembered_token_is_checked_for_the_audience_asked() {
        let (ring, _dir) = es256_ring();
        let token = ring.sign(&claims(None)).unwrap();
        assert!(ring.verify_claims(&token, None).is_ok());
        assert!(ring.verify_claims(&token, Some("registry")).is_err());
    }

    #[test]
    fn a_tampered_copy_of_a_remembered_token_is_refused() {
        let (ring, _dir) = es256_ring();
        let token = ring.sign(&claims(None)).unwrap();
        assert!(ring.verify_claims(&token, None).is_ok());
        let mut tampered = token.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(ring.verify_claims(&tampered, None).is_err());
    }

    #[test]
    fn hmac_keys_refuse_short_secrets() {
        assert!(Key::from_secret(Algorithm::HS256, "short", None).is_err());
    }

    #[test]
    fn secrets_need_an_hmac_algorithm() {
        let secret = "a-secret-of-more-than-thirty-two-bytes";
        assert!(Key::from_secret(Algorithm::ES256, secret, None).is_err());
    }
}
