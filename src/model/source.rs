//! What is known of a metadata source once read: where it came from, what it holds, when it
//! was read and who signed it, and the use a key is published for. Plain data: reading
//! documents is load's work, judging them decide's.

use serde::Serialize;
use time::OffsetDateTime;

use crate::model::cert::rfc3339;
use crate::model::thumbprint::Thumbprint;

/// One metadata document as read for an issuer: where, what, when, and who signed it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// As keyroll.toml names it, with any user information shown as `***` (see
    /// [`crate::model::secret::redact_urls`]): it is reported and stored, never fetched.
    pub source: String,
    pub sha256: String,
    pub read_at: String,
    pub bytes: usize,
    pub signature: DocumentSignature,
    /// `validUntil` of the document's root, when it has one.
    #[serde(serialize_with = "rfc3339_opt")]
    pub valid_until: Option<OffsetDateTime>,
    /// `cacheDuration` as written (an ISO 8601 duration), reported.
    pub cache_duration: Option<String>,
    /// Why keyroll trusts the signer (decided with the issuer's history), or why not.
    pub signer_trust: Option<String>,
}

impl SourceInfo {
    /// `validUntil ...; cacheDuration ...` when the document bounds either.
    pub fn freshness_line(&self) -> Option<String> {
        let parts: Vec<String> = [
            self.valid_until
                .map(|t| format!("validUntil {}", rfc3339(t))),
            self.cache_duration
                .as_deref()
                .map(|d| format!("cacheDuration {d}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// A document's signature as verified when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum DocumentSignature {
    /// JWKS and OpenID documents cannot be signed: only TLS vouches for them.
    TlsOnly,
    Unsigned,
    /// Verified with the certificate it names; whether that signer is trusted is decided
    /// with the issuer's history ([`SourceInfo::signer_trust`]).
    Valid {
        signer: Thumbprint,
        method: String,
        /// SHA-1 in the signature or digest method, or a key under 2048 bits.
        weak: bool,
    },
    Refused {
        reason: String,
        claimed_signer: Option<Thumbprint>,
    },
}

impl std::fmt::Display for DocumentSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocumentSignature::TlsOnly => f.write_str("unsigned (TLS only)"),
            DocumentSignature::Unsigned => f.write_str("unsigned"),
            DocumentSignature::Valid { signer, method, .. } => {
                write!(f, "signed by {signer} ({method}), signature valid")
            }
            DocumentSignature::Refused { reason, .. } => write!(f, "signature refused: {reason}"),
        }
    }
}

pub fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// `KeyDescriptor/@use`; JWKS `use` maps `sig` to signing and `enc` to encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUse {
    Signing,
    Encryption,
    /// No `use` attribute: SAML says the key serves both.
    Unspecified,
}

impl KeyUse {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Signing => "signing",
            KeyUse::Encryption => "encryption",
            KeyUse::Unspecified => "unspecified",
        }
    }

    pub fn covers_signing(self) -> bool {
        matches!(self, KeyUse::Signing | KeyUse::Unspecified)
    }
}
