//! X.509 certificates for signing keys: a self-signed one for a container
//! registry's `rootcertbundle`, and reading a configured chain for `x5c`.

use std::{
    str::FromStr,
    time::{Duration, SystemTime},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use x509_cert::{
    Certificate,
    builder::{Builder, CertificateBuilder, Profile},
    der::{Decode, Encode, EncodePem, asn1::BitString, pem::LineEnding},
    name::Name,
    serial_number::SerialNumber,
    spki::{SignatureBitStringEncoding, SubjectPublicKeyInfoOwned},
    time::{Time, Validity},
};

use super::private_key::{PrivateKey, pem_blocks};

/// Subject (and issuer) of the certificates `tokend keys generate` makes.
pub const CERT_SUBJECT: &str = "CN=tokend token signer";

/// A self-signed CA certificate for `key`, valid from an hour ago for `days`,
/// as PEM.
pub fn self_signed_pem(key: &PrivateKey, days: u32) -> anyhow::Result<String> {
    let now = SystemTime::now();
    let validity = Validity {
        not_before: Time::try_from(now - Duration::from_secs(3600)).context("not before")?,
        not_after: Time::try_from(now + Duration::from_secs(u64::from(days) * 86_400))
            .context("not after")?,
    };
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
    // Positive and of full length.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial = SerialNumber::new(&serial).context("serial number")?;
    let subject = Name::from_str(CERT_SUBJECT).context("subject")?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.spki_der()?).context("public key")?;
    let cert = match key {
        PrivateKey::P256(k) => {
            let signer = p256::ecdsa::SigningKey::from(k);
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)?
                .build::<p256::ecdsa::DerSignature>()?
        }
        PrivateKey::P384(k) => {
            let signer = p384::ecdsa::SigningKey::from(k);
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)?
                .build::<p384::ecdsa::DerSignature>()?
        }
        PrivateKey::Rsa(k) => {
            let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.as_ref().clone());
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)?
                .build::<rsa::pkcs1v15::Signature>()?
        }
        PrivateKey::Ed25519(k) => {
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, k.as_ref())?
                .build::<Ed25519Bits>()?
        }
    };
    cert.to_pem(LineEnding::LF)
        .context("encode the certificate")
}

/// An Ed25519 signature as the X.509 builder wants it (a BIT STRING).
struct Ed25519Bits(ed25519_dalek::Signature);

impl SignatureBitStringEncoding for Ed25519Bits {
    fn to_bitstring(&self) -> x509_cert::der::Result<BitString> {
        BitString::from_bytes(&self.0.to_bytes())
    }
}

impl ed25519_dalek::Signer<Ed25519Bits> for ed25519_dalek::SigningKey {
    fn try_sign(&self, msg: &[u8]) -> Result<Ed25519Bits, ed25519_dalek::SignatureError> {
        ed25519_dalek::Signer::<ed25519_dalek::Signature>::try_sign(self, msg).map(Ed25519Bits)
    }
}

/// Reads a PEM certificate chain (leaf first) and checks that the leaf is
/// for the public key `spki_der`. Returns each certificate as standard
/// base64 DER, as the JWS `x5c` header wants them.
pub fn read_chain(text: &str, spki_der: &[u8]) -> anyhow::Result<Vec<String>> {
    let certs: Vec<Vec<u8>> = pem_blocks(text)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect();
    let Some(leaf) = certs.first() else {
        bail!("no CERTIFICATE block found");
    };
    let leaf = Certificate::from_der(leaf).context("a bad certificate")?;
    let leaf_spki = leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .context("a bad certificate")?;
    if leaf_spki != spki_der {
        bail!("the first certificate is for another key");
    }
    for (i, der) in certs.iter().enumerate().skip(1) {
        Certificate::from_der(der).with_context(|| format!("certificate {} is bad", i + 1))?;
    }
    Ok(certs.iter().map(|der| STANDARD.encode(der)).collect())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;

    use super::*;

    #[test]
    fn self_signed_certificates_are_for_their_key() {
        for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
            let key = PrivateKey::generate(alg, 0).unwrap();
            let pem = self_signed_pem(&key, 30).unwrap();
            let chain = read_chain(&pem, &key.spki_der().unwrap()).unwrap();
            assert_eq!(chain.len(), 1);
        }
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let key = PrivateKey::generate(Algorithm::ES256, 0).unwrap();
        let other = PrivateKey::generate(Algorithm::ES256, 0).unwrap();
        let pem = self_signed_pem(&other, 30).unwrap();
        let err = read_chain(&pem, &key.spki_der().unwrap()).unwrap_err();
        assert!(err.to_string().contains("another key"));
    }
}
