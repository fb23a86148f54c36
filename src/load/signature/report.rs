//! What verification found: the verdict, why a signature was refused, and the signature
//! and signed element as found.

use std::fmt;
use std::ops::Range;

use serde::{Serialize, Serializer};

use super::freshness::Freshness;
use super::short_name;
use crate::model::cert::Certificate;
use crate::model::thumbprint::Thumbprint;

/// What [`verify`] found out about a document's signature.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    pub verdict: Verdict,
    /// The signature examined: the root's, or (when refused as misplaced) the first one found.
    pub signature: Option<SignatureDetails>,
    /// The element the verified signature covers; `Some` only when the verdict is
    /// [`Verdict::Valid`], and then always the document's root element: keys may be read from
    /// exactly this byte range of the text that was verified, and from nothing else.
    pub signed_element: Option<SignedElement>,
    /// Other `ds:Signature` elements inside the root (entity signatures in an aggregate, say).
    /// They are not verified on their own; when the root signature is valid their bytes are
    /// covered by it like any other content.
    pub nested_signatures: Vec<Position>,
    /// `validUntil` and `cacheDuration` of the root element; enforcing them is the caller's.
    pub freshness: Freshness,
}

impl SignatureReport {
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// A `ds:Signature` was found (valid or not). False for an unsigned document, and for
    /// one refused before its signature was looked at (malformed, not metadata).
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
            || matches!(
                self.verdict,
                Verdict::Refused(Refusal::MultipleSignatures { .. })
            )
    }

    /// The certificate whose key verified the signature; `None` unless valid.
    pub fn signer(&self) -> Option<&Certificate> {
        if !self.is_valid() {
            return None;
        }
        self.signature.as_ref()?.certificate.as_ref()
    }

    /// One line for plans and reports: `unsigned`, `valid: signed by <SHA-1> (rsa-sha256,
    /// sha256, exc-c14n)` or `refused: <reason>`.
    pub fn summary(&self) -> String {
        match &self.verdict {
            Verdict::Unsigned => "unsigned".to_string(),
            Verdict::Valid => {
                let details = self.signature.as_ref();
                let signer = details
                    .and_then(|d| d.signer_sha1)
                    .map_or_else(|| "?".to_string(), |t| t.to_string());
                let algorithms = details
                    .map(|d| {
                        [&d.signature_method, &d.digest_method, &d.canonicalization]
                            .iter()
                            .filter_map(|a| a.as_deref().map(short_name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                format!("valid: signed by {signer} ({algorithms})")
            }
            Verdict::Refused(refusal) => format!("refused: {refusal}"),
        }
    }
}

/// Signed or not, and if signed, valid or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Verdict {
    /// No `ds:Signature` anywhere in the document.
    Unsigned,
    /// The root's signature verifies with the public key of the certificate in its `KeyInfo`.
    Valid,
    Refused(Refusal),
}

/// Why a signature was not accepted. Each names what was found, so a report can say it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("line {line}, column {column}: {detail}")]
    Malformed {
        line: u32,
        column: u32,
        detail: String,
    },
    #[error("root element is <{root}>, not a SAML EntityDescriptor or EntitiesDescriptor")]
    NotMetadata { root: String },
    #[error(
        "the document's signature (line {}, column {}) is inside <{parent}>, not a child of the root element: it does not cover the whole document",
        at.line, at.column
    )]
    NotOnRoot { at: Position, parent: String },
    #[error("the root element carries {} signatures (lines {}); exactly one is accepted", at.len(), lines(at))]
    MultipleSignatures { at: Vec<Position> },
    #[error("line {}, column {}: {detail}", at.line, at.column)]
    Structure { at: Position, detail: String },
    #[error("the signature has {count} References; exactly one, to the root element, is accepted")]
    ReferenceCount { count: usize },
    #[error("{}", reference_message(uri.as_deref(), root_id.as_deref()))]
    ReferenceNotRoot {
        uri: Option<String>,
        root_id: Option<String>,
    },
    #[error("ID \"{id}\" is carried by {} elements (lines {}); the signed element must be unambiguous", at.len(), lines(at))]
    DuplicateId { id: String, at: Vec<Position> },
    #[error("unsupported {role} algorithm {uri}")]
    UnsupportedAlgorithm { role: &'static str, uri: String },
    #[error("{role} algorithm {uri} uses SHA-1, which the policy does not allow")]
    Sha1NotAllowed { role: &'static str, uri: String },
    #[error("unsupported Transforms [{}]: keyroll accepts the enveloped-signature transform, optionally followed by one canonicalization", transforms.join(", "))]
    UnsupportedTransforms { transforms: Vec<String> },
    #[error("the signature's KeyInfo holds no X509Certificate, so its signer cannot be named")]
    NoCertificate,
    #[error("line {}, column {}: the signature's certificate: {detail}", at.line, at.column)]
    Certificate { at: Position, detail: String },
    #[error("the signature's certificate {sha1} has no usable RSA key: {detail}")]
    UnsupportedKey { sha1: Thumbprint, detail: String },
    #[error("the signature's certificate {sha1} has a {bits}-bit RSA key, below {minimum} bits")]
    WeakKey {
        sha1: Thumbprint,
        bits: usize,
        minimum: usize,
    },
    #[error("line {}, column {}: {what} is not valid base64: {detail}", at.line, at.column)]
    Base64 {
        at: Position,
        what: &'static str,
        detail: String,
    },
    #[error(
        "digest mismatch: the signed element changed after signing (DigestValue {expected}, computed {computed})"
    )]
    DigestMismatch { expected: String, computed: String },
    #[error(
        "signature mismatch: SignatureValue does not verify with the key of {}",
        signers(certificates)
    )]
    SignatureMismatch { certificates: Vec<Thumbprint> },
}

impl Refusal {
    /// A stable short name, for JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Malformed { .. } => "malformed",
            Refusal::NotMetadata { .. } => "not-metadata",
            Refusal::NotOnRoot { .. } => "not-on-root",
            Refusal::MultipleSignatures { .. } => "multiple-signatures",
            Refusal::Structure { .. } => "structure",
            Refusal::ReferenceCount { .. } => "reference-count",
            Refusal::ReferenceNotRoot { .. } => "reference-not-root",
            Refusal::DuplicateId { .. } => "duplicate-id",
            Refusal::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            Refusal::Sha1NotAllowed { .. } => "sha1-not-allowed",
            Refusal::UnsupportedTransforms { .. } => "unsupported-transforms",
            Refusal::NoCertificate => "no-certificate",
            Refusal::Certificate { .. } => "certificate",
            Refusal::UnsupportedKey { .. } => "unsupported-key",
            Refusal::WeakKey { .. } => "weak-key",
            Refusal::Base64 { .. } => "base64",
            Refusal::DigestMismatch { .. } => "digest-mismatch",
            Refusal::SignatureMismatch { .. } => "signature-mismatch",
        }
    }
}

impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Refusal", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

fn lines(at: &[Position]) -> String {
    at.iter()
        .map(|p| p.line.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn signers(certificates: &[Thumbprint]) -> String {
    match certificates {
        [one] => format!("certificate {one}"),
        many => format!(
            "any of its certificates ({})",
            many.iter()
                .map(Thumbprint::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn reference_message(uri: Option<&str>, root_id: Option<&str>) -> String {
    let target = match uri {
        None => "has no URI".to_string(),
        Some(uri) => format!("points at \"{uri}\""),
    };
    let root = match root_id {
        Some(id) => format!("the root element (\"#{id}\")"),
        None => "the root element (which has no ID)".to_string(),
    };
    format!(
        "the signature's Reference {target}, not {root}: keys would be read from content it does not cover"
    )
}

/// 1-based line and column (in characters) in the verified text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// The signature as found, whether or not it verified.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureDetails {
    pub at: Position,
    pub reference_uri: Option<String>,
    /// `CanonicalizationMethod` of `SignedInfo`.
    pub canonicalization: Option<String>,
    pub signature_method: Option<String>,
    pub digest_method: Option<String>,
    /// The Reference's `Transform` algorithms, in order.
    pub transforms: Vec<String>,
    /// The signer's certificate: the `KeyInfo` certificate whose key verified the signature,
    /// or (not verified) the first one `KeyInfo` holds.
    #[serde(skip)]
    pub certificate: Option<Certificate>,
    pub signer_sha1: Option<Thumbprint>,
    /// How many `X509Certificate` elements `KeyInfo/X509Data` holds.
    pub key_info_certificates: usize,
    /// The SignatureValue verified with the embedded certificate's public key.
    pub verified_with_embedded_key: bool,
}

/// The element a valid signature covers (always the root element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedElement {
    /// Byte range of the element (start tag to end tag) in the text given to [`verify`].
    pub range: Range<usize>,
    pub at: Position,
    pub local_name: String,
    /// Its `ID`, or `None` when the Reference was `URI=""` (the whole document).
    pub id: Option<String>,
}

impl SignedElement {
    /// Whether a byte range of the verified text lies inside the signed element.
    pub fn covers(&self, range: &Range<usize>) -> bool {
        self.range.start <= range.start && range.end <= self.range.end
    }
}

impl SignatureDetails {
    pub(super) fn empty(at: Position) -> Self {
        SignatureDetails {
            at,
            reference_uri: None,
            canonicalization: None,
            signature_method: None,
            digest_method: None,
            transforms: Vec::new(),
            certificate: None,
            signer_sha1: None,
            key_info_certificates: 0,
            verified_with_embedded_key: false,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Unsigned => f.write_str("unsigned"),
            Verdict::Valid => f.write_str("valid"),
            Verdict::Refused(r) => write!(f, "refused: {r}"),
        }
    }
}
