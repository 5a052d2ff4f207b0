//! `tokend keys generate|list`.

use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;

use crate::{
    Config,
    jwt::{
        Algorithm, Generate, KeyRing, PrivateKey, alg_name, cert::self_signed_pem, write_private,
    },
    state,
};

/// Algorithms `tokend keys generate` makes keys for.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum KeyAlg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "ES384")]
    Es384,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl KeyAlg {
    fn algorithm(self) -> Algorithm {
        match self {
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::Es384 => Algorithm::ES384,
            KeyAlg::Rs256 => Algorithm::RS256,
            KeyAlg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// `tokend keys generate`: a new key file, and maybe its certificate.
pub(super) fn generate_key(
    alg: KeyAlg,
    out: &Path,
    cert: Option<&Path>,
    days: u32,
    bits: u32,
) -> anyhow::Result<()> {
    if out.exists() {
        anyhow::bail!(
            "--out: {} exists; tokend does not replace keys",
            out.display()
        );
    }
    if let Some(cert) = cert.filter(|c| c.exists()) {
        anyhow::bail!("--cert: {} exists", cert.display());
    }
    let alg = alg.algorithm();
    let key = PrivateKey::generate(alg, bits as usize)?;
    let cert_pem = cert
        .map(|_| self_signed_pem(&key, days))
        .transpose()
        .context("--cert")?;
    write_private(out, key.to_pkcs8_pem()?.expose().as_bytes()).context("--out")?;
    let kid = key.kid()?;
    eprintln!("wrote {} key {kid} to {}", alg_name(alg), out.display());
    if let (Some(path), Some(pem)) = (cert, cert_pem) {
        write_new(path, pem.as_bytes()).context("--cert")?;
        eprintln!("wrote its self-signed certificate to {}", path.display());
    }
    println!("{kid}");
    Ok(())
}

/// Writes a new (not yet existing) file.
fn write_new(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `tokend keys list`: one line per key of the configured ring, in ring
/// order: kid, algorithm, `signing` or `verify-only`.
pub(super) fn list_keys(config: &Config) -> anyhow::Result<()> {
    let ring = KeyRing::load(
        &state::key_settings(config),
        Generate::Never,
        crate::clock::system(),
    )?;
    let signer = &ring.signing_key().kid;
    for key in ring.keys() {
        let role = if &key.kid == signer {
            "signing"
        } else {
            "verify-only"
        };
        println!("{}\t{}\t{role}", key.kid, alg_name(key.alg));
    }
    Ok(())
}
