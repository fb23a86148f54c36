//! The signature and digest algorithms a policy accepts, and the signer's RSA key, in the
//! forms ring verifies with.

use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::{
    Policy, RSA_SHA1, RSA_SHA256, RSA_SHA384, RSA_SHA512, Refusal, SHA1, SHA256, SHA384, SHA512,
};
use crate::model::cert::Certificate;

pub(super) enum RsaHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

pub(super) fn signature_algorithm(uri: &str, policy: Policy) -> Result<RsaHash, Refusal> {
    let role = "SignatureMethod";
    match uri {
        RSA_SHA1 if policy.allow_sha1 => Ok(RsaHash::Sha1),
        RSA_SHA1 => Err(Refusal::Sha1NotAllowed {
            role,
            uri: uri.into(),
        }),
        RSA_SHA256 => Ok(RsaHash::Sha256),
        RSA_SHA384 => Ok(RsaHash::Sha384),
        RSA_SHA512 => Ok(RsaHash::Sha512),
        _ => Err(Refusal::UnsupportedAlgorithm {
            role,
            uri: uri.into(),
        }),
    }
}

pub(super) fn digest_algorithm(
    uri: &str,
    policy: Policy,
) -> Result<&'static ring::digest::Algorithm, Refusal> {
    let role = "DigestMethod";
    match uri {
        SHA1 if policy.allow_sha1 => Ok(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
        SHA1 => Err(Refusal::Sha1NotAllowed {
            role,
            uri: uri.into(),
        }),
        SHA256 => Ok(&ring::digest::SHA256),
        SHA384 => Ok(&ring::digest::SHA384),
        SHA512 => Ok(&ring::digest::SHA512),
        _ => Err(Refusal::UnsupportedAlgorithm {
            role,
            uri: uri.into(),
        }),
    }
}

pub(super) fn ring_algorithm(
    hash: &RsaHash,
    bits: usize,
    policy: Policy,
) -> Result<&'static ring::signature::RsaParameters, usize> {
    use ring::signature as s;
    if bits >= 2048 {
        return Ok(match hash {
            RsaHash::Sha1 => &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            RsaHash::Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
            RsaHash::Sha384 => &s::RSA_PKCS1_2048_8192_SHA384,
            RsaHash::Sha512 => &s::RSA_PKCS1_2048_8192_SHA512,
        });
    }
    if bits >= 1024 && policy.allow_rsa_1024 {
        return match hash {
            RsaHash::Sha1 => Ok(&s::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY),
            RsaHash::Sha256 => Ok(&s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
            RsaHash::Sha512 => Ok(&s::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
            // ring has no 1024-bit variant of RSA-SHA384.
            RsaHash::Sha384 => Err(2048),
        };
    }
    Err(if policy.allow_rsa_1024 { 1024 } else { 2048 })
}

pub(super) struct RsaKey {
    /// PKCS#1 RSAPublicKey, as ring takes it.
    pub(super) der: Vec<u8>,
    pub(super) bits: usize,
}

pub(super) fn rsa_key(certificate: &Certificate) -> Result<RsaKey, Refusal> {
    let unsupported = |detail: String| Refusal::UnsupportedKey {
        sha1: certificate.sha1,
        detail,
    };
    let (_, parsed) =
        X509Certificate::from_der(&certificate.der).map_err(|e| unsupported(e.to_string()))?;
    let spki = parsed.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(RsaKey {
            der: spki.subject_public_key.data.to_vec(),
            bits: rsa.key_size(),
        }),
        Ok(_) => Err(unsupported(format!(
            "a {} key; keyroll verifies RSA signatures only",
            spki.algorithm.algorithm
        ))),
        Err(e) => Err(unsupported(e.to_string())),
    }
}
