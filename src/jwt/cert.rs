//! X.509 certificates for signing keys: a self-signed one for a container
//! registry's `rootcertbundle`, and reading a configured chain for `x5c`.

use std::{
    str::FromStr,
    time::{Duration, SystemTime},
};

use anyhow::{Context, bail};
use aws_lc_rs::{
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    },
};
use base64::{Engine, engine::general_purpose::STANDARD};
use x509_cert::{
    Certificate,
    builder::{Builder, CertificateBuilder, Profile},
    der::{
        Any, Decode, Encode, EncodePem,
        asn1::{BitString, Null},
        oid::{
            ObjectIdentifier,
            db::{rfc5912, rfc8410},
        },
        pem::LineEnding,
    },
    name::Name,
    serial_number::SerialNumber,
    spki::{
        self, AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
        SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
    },
    time::{Time, Validity},
};

use super::private_key::{PrivateKey, copy_failed, pem_blocks};

/// Organisation of the certificates `tokend keys generate` makes; their
/// common name is the key's `kid`, so that two certificates in a registry's
/// `rootcertbundle` (the old key's and the new one's during a rotation)
/// can be told apart.
pub const CERT_ORGANISATION: &str = "tokend token signer";

/// Subject (and issuer) of the certificate of the key `kid`.
pub fn cert_subject(kid: &str) -> String {
    // A kid is base32 and colons: nothing RFC 4514 would need escaped.
    format!("CN={kid},O={CERT_ORGANISATION}")
}

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
    let subject = Name::from_str(&cert_subject(&key.kid()?)).context("subject")?;
    let spki_der = key.spki_der()?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der).context("public key")?;
    let signer = CertSigner::new(key, spki_der)?;
    let cert = CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)?
        .build::<SignatureBits>()?;
    cert.to_pem(LineEnding::LF)
        .context("encode the certificate")
}

/// A key of the ring as the X.509 builder wants a signer.
struct CertSigner<'a> {
    key: CertKey<'a>,
    spki_der: Vec<u8>,
}

enum CertKey<'a> {
    /// X.509 takes DER (ASN.1) ECDSA signatures, not the fixed-length ones
    /// of JWS: the key is loaded again to make those.
    Ecdsa(EcdsaKeyPair, ObjectIdentifier),
    Rsa(&'a RsaKeyPair),
    Ed25519(&'a Ed25519KeyPair),
}

impl<'a> CertSigner<'a> {
    fn new(key: &'a PrivateKey, spki_der: Vec<u8>) -> anyhow::Result<Self> {
        let key = match key {
            PrivateKey::P256(k) | PrivateKey::P384(k) => {
                let (alg, oid) = match key {
                    PrivateKey::P256(_) => {
                        (&ECDSA_P256_SHA256_ASN1_SIGNING, rfc5912::ECDSA_WITH_SHA_256)
                    }
                    _ => (&ECDSA_P384_SHA384_ASN1_SIGNING, rfc5912::ECDSA_WITH_SHA_384),
                };
                let pkcs8 = k.to_pkcs8v1().map_err(copy_failed)?;
                CertKey::Ecdsa(
                    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).map_err(copy_failed)?,
                    oid,
                )
            }
            PrivateKey::Rsa(k) => CertKey::Rsa(k),
            PrivateKey::Ed25519(k) => CertKey::Ed25519(k),
        };
        Ok(CertSigner { key, spki_der })
    }
}

/// A public key as its DER SubjectPublicKeyInfo.
#[derive(Clone)]
struct Spki(Vec<u8>);

impl EncodePublicKey for Spki {
    fn to_public_key_der(&self) -> spki::Result<spki::Document> {
        Ok(spki::Document::try_from(self.0.as_slice())?)
    }
}

impl signature::Keypair for CertSigner<'_> {
    type VerifyingKey = Spki;

    fn verifying_key(&self) -> Spki {
        Spki(self.spki_der.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for CertSigner<'_> {
    /// RFC 5758 (ECDSA: no parameters), RFC 4055 (RSA: NULL parameters),
    /// RFC 8410 (Ed25519: no parameters).
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        let (oid, parameters) = match &self.key {
            CertKey::Ecdsa(_, oid) => (*oid, None),
            CertKey::Rsa(_) => (
                rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                Some(Any::encode_from(&Null)?),
            ),
            CertKey::Ed25519(_) => (rfc8410::ID_ED_25519, None),
        };
        Ok(AlgorithmIdentifierOwned { oid, parameters })
    }
}

/// A signature as the X.509 builder wants it (a BIT STRING).
struct SignatureBits(Vec<u8>);

impl SignatureBitStringEncoding for SignatureBits {
    fn to_bitstring(&self) -> x509_cert::der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Signer<SignatureBits> for CertSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<SignatureBits, signature::Error> {
        let rng = SystemRandom::new();
        let signature = match &self.key {
            CertKey::Ecdsa(k, _) => k
                .sign(&rng, msg)
                .map_err(signature::Error::from_source)?
                .as_ref()
                .to_vec(),
            CertKey::Rsa(k) => {
                let mut signature = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut signature)
                    .map_err(signature::Error::from_source)?;
                signature
            }
            CertKey::Ed25519(k) => k.sign(msg).as_ref().to_vec(),
        };
        Ok(SignatureBits(signature))
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

    const ALGORITHMS: [Algorithm; 4] = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::EdDSA,
    ];

    #[test]
    fn self_signed_certificates_are_for_their_key() {
        for alg in ALGORITHMS {
            let key = PrivateKey::generate(alg, 2048).unwrap();
            let pem = self_signed_pem(&key, 30).unwrap();
            let chain = read_chain(&pem, &key.spki_der().unwrap()).unwrap();
            assert_eq!(chain.len(), 1);
        }
    }

    #[test]
    fn two_keys_certificates_have_subjects_naming_their_kid() {
        use x509_cert::der::DecodePem;
        let subject = |key: &PrivateKey| {
            let pem = self_signed_pem(key, 30).unwrap();
            let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
            cert.tbs_certificate.subject.to_string()
        };
        let (a, b) = (
            PrivateKey::generate(Algorithm::ES256, 0).unwrap(),
            PrivateKey::generate(Algorithm::ES256, 0).unwrap(),
        );
        let (kid_a, kid_b) = (a.kid().unwrap(), b.kid().unwrap());
        assert_eq!(subject(&a), format!("CN={kid_a},O=tokend token signer"));
        assert_eq!(subject(&b), format!("CN={kid_b},O=tokend token signer"));
    }

    /// The signature verifies with the certificate's own public key, by the
    /// algorithm the certificate names.
    #[test]
    fn self_signed_certificates_verify_with_their_own_key() {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ED25519, RSA_PKCS1_2048_8192_SHA256,
            UnparsedPublicKey, VerificationAlgorithm,
        };
        for alg in ALGORITHMS {
            let key = PrivateKey::generate(alg, 2048).unwrap();
            let pem = self_signed_pem(&key, 30).unwrap();
            let (_, der) = pem_blocks(&pem).unwrap().remove(0);
            let cert = Certificate::from_der(&der).unwrap();
            let tbs = cert.tbs_certificate.to_der().unwrap();
            let public = cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes();
            let named = cert.signature_algorithm.oid;
            let (expected, verifier): (_, &'static dyn VerificationAlgorithm) = match alg {
                Algorithm::ES256 => (rfc5912::ECDSA_WITH_SHA_256, &ECDSA_P256_SHA256_ASN1),
                Algorithm::ES384 => (rfc5912::ECDSA_WITH_SHA_384, &ECDSA_P384_SHA384_ASN1),
                Algorithm::RS256 => (
                    rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                    &RSA_PKCS1_2048_8192_SHA256,
                ),
                _ => (rfc8410::ID_ED_25519, &ED25519),
            };
            assert_eq!(named, expected, "{alg:?}");
            assert_eq!(cert.tbs_certificate.signature, cert.signature_algorithm);
            UnparsedPublicKey::new(verifier, public)
                .verify(&tbs, cert.signature.raw_bytes())
                .unwrap_or_else(|_| panic!("{alg:?}"));
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
