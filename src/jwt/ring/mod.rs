//! The key ring: one key signs, every key verifies; the JWKS of its public
//! keys; and the verified-token cache in front of verification.

use anyhow::{Context, bail};
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    clock::SharedClock,
    config::{ConfigError, KeyConfig},
    error::{Error, Result},
    secret::Secret,
};

use super::{
    Claims, MAX_TOKEN_LEN,
    cache::{Verified, VerifiedTokens},
    key::{Generate, Key, generated_key, is_hmac, load_key},
    signature::Curve,
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

/// What a key ring is made from: the key settings (`algorithm`, `secret`,
/// `keys`, `signing_kid`, `data_dir`) and the claims every token carries or
/// must carry (`issuer`, `leeway`).
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    pub algorithm: String,
    pub secret: Option<Secret>,
    pub keys: Vec<KeyConfig>,
    pub signing_kid: Option<String>,
    /// Where a generated key is kept.
    pub data_dir: std::path::PathBuf,
    pub issuer: Option<String>,
    pub leeway: std::time::Duration,
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
    clock: SharedClock,
}

impl KeyRing {
    /// Builds the ring from its settings, generating and keeping a key of
    /// `algorithm` in `data_dir` when none is configured (and `generate`
    /// allows). Every error names the setting at fault (`keys[1]: …`,
    /// `secret: …`, `signing_kid: …`).
    pub fn load(
        settings: &KeySettings,
        generate: Generate,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let alg = super::parse_algorithm(&settings.algorithm).ok_or_else(|| {
            ConfigError::new(
                "algorithm",
                format!(
                    "`{}` is not one of {}",
                    settings.algorithm,
                    super::SUPPORTED_ALGORITHMS.join(", ")
                ),
            )
        })?;
        let mut keys: Vec<Key> = Vec::new();
        for (i, entry) in settings.keys.iter().enumerate() {
            let key = load_key(entry, alg).with_context(|| format!("keys[{i}]"))?;
            if let Some(j) = keys.iter().position(|k| k.kid == key.kid) {
                bail!(
                    "keys[{i}]: kid `{}` is already the kid of keys[{j}]",
                    key.kid
                );
            }
            keys.push(key);
        }
        match (&settings.secret, keys.is_empty()) {
            (Some(_), false) => {
                bail!(ConfigError::new(
                    "secret",
                    "give either `secret` or `keys`, not both (a secret can be a [[keys]] entry)"
                ))
            }
            (Some(secret), true) if is_hmac(alg) && secret.expose().len() < 32 => {
                bail!(ConfigError::new("secret", "must be at least 32 bytes"))
            }
            (Some(secret), true) => {
                keys.push(Key::from_secret(alg, secret.expose(), None).context("secret")?)
            }
            (None, true) if is_hmac(alg) => {
                bail!(ConfigError::new(
                    "secret",
                    format!("required with algorithm {}", settings.algorithm)
                ))
            }
            (None, true) => keys.push(generated_key(&settings.data_dir, alg, generate)?),
            (None, false) => {}
        }
        let signer = match &settings.signing_kid {
            None => 0,
            Some(kid) => keys
                .iter()
                .position(|k| &k.kid == kid)
                .with_context(|| format!("signing_kid: no key has kid `{kid}`"))?,
        };
        Ok(Self::new(keys, signer, settings, clock))
    }

    /// A ring of `keys` (at least one) where `keys[signer]` signs.
    pub fn new(keys: Vec<Key>, signer: usize, settings: &KeySettings, clock: SharedClock) -> Self {
        let mut header = Header::new(keys[signer].alg);
        header.kid = Some(keys[signer].kid.clone());
        KeyRing {
            keys,
            signer,
            header,
            leeway: settings.leeway.as_secs(),
            issuer: settings.issuer.clone(),
            verified: VerifiedTokens::new(REMEMBERED_TOKENS),
            clock,
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

    /// Like [`sign_typed`](Self::sign_typed), and the header also carries
    /// the signing key's certificate chain as `x5c` when one is configured.
    pub fn sign_with_x5c<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String> {
        let mut header = self.header.clone();
        header.typ = Some(typ.to_owned());
        header.x5c = self.signing_cert_chain();
        self.sign_with_header(&header, claims)
    }

    /// Signs an access or refresh token: the header's `typ` says which
    /// (`at+jwt` for access tokens, RFC 9068).
    ///
    /// The token is remembered as verified for the audience it names: it
    /// passes every check of [`verify_claims`](Self::verify_claims) but the
    /// time checks, which a hit makes anyway. So when it comes back while
    /// remembered (an access token's first calls, a rotated refresh token's
    /// next refresh) it costs no signature check.
    pub fn sign_claims(&self, claims: &Claims) -> Result<String> {
        let token = self.sign_typed(claims.token_type.jwt_typ(), claims)?;
        // What `verify_with_header` would refuse is not remembered: a token
        // too long, or without the issuer the ring requires.
        if token.len() <= MAX_TOKEN_LEN && (self.issuer.is_none() || claims.iss == self.issuer) {
            let verified = Verified {
                claims: claims.clone(),
                nbf: None,
            };
            self.verified.put(&token, claims.aud.as_deref(), &verified);
        }
        Ok(token)
    }

    /// Signs claims with the signing key; the header carries its `kid` and
    /// `typ`.
    pub fn sign_typed<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String> {
        let mut header = self.header.clone();
        header.typ = Some(typ.to_owned());
        self.sign_with_header(&header, claims)
    }

    fn sign_with_header<T: Serialize>(&self, header: &Header, claims: &T) -> Result<String> {
        self.signing_key().signer.sign_token(header, claims)
    }

    /// Verifies a token: length → header → key by `kid` → the key's own
    /// algorithm must be the header's → an ECDSA signature must be low-S →
    /// signature → `exp`/`nbf`/`iss`/`aud`.
    /// `audience` is what `aud` must be; with `None`, a token that has an
    /// `aud` is refused.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, audience: Option<&str>) -> Result<T> {
        self.verify_with_header(token, audience, true)
            .map(|(_, claims)| claims)
    }

    /// Whether a token is authentic (signature and claims check out) but
    /// out of its time (`exp`, `nbf`): what a refused refresh counts as
    /// `expired` rather than `invalid`.
    pub fn out_of_time(&self, token: &str, audience: Option<&str>) -> bool {
        self.verify_with_header::<serde_json::Value>(token, audience, false)
            .is_ok()
            && self.verify::<serde_json::Value>(token, audience).is_err()
    }

    /// [`verify`](Self::verify), and the token's header; with `check_time`
    /// false, a token out of its time passes.
    fn verify_with_header<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: Option<&str>,
        check_time: bool,
    ) -> Result<(Header, T)> {
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
        // Of the two valid ECDSA signatures (r, s) and (r, n − s) only the
        // low-S one passes, so a token has one valid text (tokend signs
        // only low-S ones).
        if let Some(curve) = Curve::of(key.alg) {
            let (_, signature) = token.rsplit_once('.').ok_or(Error::TokenNotValid)?;
            if !curve.is_low_s_part(signature) {
                return Err(Error::TokenNotValid);
            }
        }
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims.clear();
        // `exp` and `nbf` are checked below, against the ring's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = true;
        if let Some(aud) = audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .map_err(|_| Error::TokenNotValid)?;
        let time = |name: &str| match data.claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or(Error::TokenNotValid),
        };
        if check_time && !self.in_time(time("exp")?, time("nbf")?) {
            return Err(Error::TokenNotValid);
        }
        let claims = serde_json::from_value(data.claims).map_err(|_| Error::TokenNotValid)?;
        Ok((header, claims))
    }

    /// [`verify`](Self::verify) for tokend's own claims, whose header's
    /// `typ` must be that of their kind, remembering the
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
        let (header, Timed { claims, nbf }) = self.verify_with_header(token, audience, true)?;
        // The header's `typ` must be that of the claimed kind: a refresh
        // token is never taken where an access token is, nor the reverse.
        if !claims.token_type.accepts_typ(header.typ.as_deref()) {
            return Err(Error::TokenNotValid);
        }
        let verified = Verified { claims, nbf };
        self.verified.put(token, audience, &verified);
        Ok(verified.claims)
    }

    /// The time checks, as jsonwebtoken would make them but by the ring's
    /// clock: not past `exp`, not before `nbf`, each with the leeway.
    fn in_time(&self, exp: Option<i64>, nbf: Option<i64>) -> bool {
        let now = self.clock.now().timestamp();
        let leeway = self.leeway as i64;
        exp.is_none_or(|exp| exp >= now - leeway) && nbf.is_none_or(|nbf| nbf <= now + leeway)
    }

    /// The public keys, as an RFC 7517 JWK set (no secrets, no private parts).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.keys.iter().filter_map(|k| k.jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests;
