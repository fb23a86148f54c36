//! Enveloped XML signatures (XML-DSig) on SAML / WS-Federation metadata.
//!
//! keyroll verifies one shape only, the one AD FS, Entra ID and SAML federations publish: a
//! single `ds:Signature` that is a child of the root `EntityDescriptor` / `EntitiesDescriptor`,
//! with one `Reference` to that root (`URI="#<root ID>"` or `URI=""`), the enveloped-signature
//! transform, and inclusive or exclusive canonicalization, checked with the RSA key of the
//! certificate embedded in `KeyInfo`. Everything else is refused with a reason, never guessed
//! at: a signature that covers anything less than the root would let keys be read from bytes
//! nobody signed (signature wrapping).
//!
//! Canonicalization runs over the same `roxmltree` tree, parsed with the same options
//! ([`crate::metadata::xml_options`]), that the metadata reader takes keys from, so what was
//! verified and what is read cannot differ by a parser's reading of the bytes.
//!
//! Whether the signer's certificate is trusted is not decided here (like
//! `xmlsec1 --verify --insecure`): the report names it, the caller decides.

use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use roxmltree::{Document, Node, NodeId};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::cert::{Certificate, rfc3339};
use crate::metadata::{LineIndex, NS_DS, NS_MD, xml_error_detail, xml_error_position, xml_options};
use crate::thumbprint::Thumbprint;

/// Canonical XML 1.0 (inclusive), comments removed.
pub const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub const C14N_WITH_COMMENTS: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
/// Exclusive XML canonicalization 1.0, comments removed.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const EXC_C14N_WITH_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

const NS_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// What the caller accepts beyond the defaults. AD FS can still be configured to sign with
/// RSA-SHA1 (with SHA-1 digests), and old test fixtures use 1024-bit keys; both are refused
/// unless allowed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Policy {
    /// Accept `rsa-sha1` signatures and `sha1` reference digests.
    pub allow_sha1: bool,
    /// Accept RSA keys from 1024 up to 2047 bits (2048 is the minimum otherwise).
    pub allow_rsa_1024: bool,
}

impl Policy {
    /// RSA-SHA256/384/512, SHA-256/384/512 digests, keys of 2048 bits or more.
    pub const STRICT: Policy = Policy {
        allow_sha1: false,
        allow_rsa_1024: false,
    };
    /// Also SHA-1 and 1024-bit keys: what `xmlsec1 --verify` accepts.
    pub const LEGACY: Policy = Policy {
        allow_sha1: true,
        allow_rsa_1024: true,
    };
}

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

/// The root's `validUntil` and `cacheDuration`, as published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Freshness {
    #[serde(serialize_with = "serialize_time")]
    pub valid_until: Option<OffsetDateTime>,
    /// An ISO 8601 / `xs:duration` such as `PT1H` or `P7D`, as written.
    pub cache_duration: Option<String>,
    /// Values present but not understood (`validUntil="tomorrow"`); a caller that enforces
    /// freshness should refuse a document with any.
    pub problems: Vec<String>,
}

fn serialize_time<S: Serializer>(
    value: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(t) => serializer.serialize_some(&rfc3339(*t)),
        None => serializer.serialize_none(),
    }
}

/// Short names for algorithm URIs in one-line summaries.
pub fn short_name(uri: &str) -> &str {
    match uri {
        C14N => "c14n",
        C14N_WITH_COMMENTS => "c14n-with-comments",
        EXC_C14N => "exc-c14n",
        EXC_C14N_WITH_COMMENTS => "exc-c14n-with-comments",
        ENVELOPED_SIGNATURE => "enveloped-signature",
        RSA_SHA1 => "rsa-sha1",
        RSA_SHA256 => "rsa-sha256",
        RSA_SHA384 => "rsa-sha384",
        RSA_SHA512 => "rsa-sha512",
        SHA1 => "sha1",
        SHA256 => "sha256",
        SHA384 => "sha384",
        SHA512 => "sha512",
        other => other,
    }
}

/// Verifies the enveloped signature of a metadata document given as text (a UTF-8 BOM may
/// lead). Byte ranges in the report are offsets into `xml`.
pub fn verify(xml: &str, policy: Policy) -> SignatureReport {
    match Document::parse_with_options(xml, xml_options()) {
        Ok(doc) => verify_document(&doc, policy),
        Err(e) => {
            let (line, column) = xml_error_position(xml, &e);
            SignatureReport {
                verdict: Verdict::Refused(Refusal::Malformed {
                    line,
                    column,
                    detail: xml_error_detail(&e),
                }),
                signature: None,
                signed_element: None,
                nested_signatures: Vec::new(),
                freshness: Freshness::default(),
            }
        }
    }
}

/// [`verify`] on a document already parsed; it must have been parsed with
/// [`crate::metadata::xml_options`] (no DTD, so no entity can change what was signed).
pub fn verify_document(doc: &Document<'_>, policy: Policy) -> SignatureReport {
    let lines = LineIndex::new(doc.input_text());
    let at = |node: Node<'_, '_>| {
        let (line, column) = lines.position(node.range().start);
        Position { line, column }
    };
    let root = doc.root_element();
    let mut report = SignatureReport {
        verdict: Verdict::Unsigned,
        signature: None,
        signed_element: None,
        nested_signatures: Vec::new(),
        freshness: freshness(root),
    };
    // A document parsed with a DTD allowed could hold entities that expand into what is
    // verified; refuse it here too rather than trust the caller's options.
    if let Some(offset) = doc.input_text()[..root.range().start].find("<!DOCTYPE") {
        let (line, column) = lines.position(offset);
        report.verdict = Verdict::Refused(Refusal::Malformed {
            line,
            column,
            detail: xml_error_detail(&roxmltree::Error::DtdDetected),
        });
        return report;
    }
    if !is_md(root, "EntityDescriptor") && !is_md(root, "EntitiesDescriptor") {
        report.verdict = Verdict::Refused(Refusal::NotMetadata {
            root: root.tag_name().name().to_string(),
        });
        return report;
    }

    let signatures: Vec<Node<'_, '_>> = root
        .descendants()
        .filter(|n| is_ds(*n, "Signature"))
        .collect();
    let on_root: Vec<Node<'_, '_>> = signatures
        .iter()
        .copied()
        .filter(|s| s.parent() == Some(root))
        .collect();
    let signature = match on_root.as_slice() {
        [] => {
            let Some(&first) = signatures.first() else {
                return report;
            };
            // Described for the report, never verified: it cannot cover the whole root.
            let mut details = SignatureDetails::empty(at(first));
            let _ = examine(first, root, &at, &mut details, policy, false);
            report.signature = Some(details);
            report.verdict = Verdict::Refused(Refusal::NotOnRoot {
                at: at(first),
                parent: first
                    .parent_element()
                    .map_or_else(String::new, |p| p.tag_name().name().to_string()),
            });
            return report;
        }
        [one] => *one,
        many => {
            report.verdict = Verdict::Refused(Refusal::MultipleSignatures {
                at: many.iter().map(|s| at(*s)).collect(),
            });
            return report;
        }
    };
    report.nested_signatures = signatures
        .iter()
        .filter(|s| **s != signature)
        .map(|s| at(*s))
        .collect();

    let mut details = SignatureDetails::empty(at(signature));
    let outcome = examine(signature, root, &at, &mut details, policy, true);
    report.signature = Some(details);
    match outcome {
        Ok(id) => {
            report.verdict = Verdict::Valid;
            report.signed_element = Some(SignedElement {
                range: root.range(),
                at: at(root),
                local_name: root.tag_name().name().to_string(),
                id,
            });
        }
        Err(refusal) => report.verdict = Verdict::Refused(refusal),
    }
    report
}

impl SignatureDetails {
    fn empty(at: Position) -> Self {
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

fn is_md(node: Node<'_, '_>, local: &str) -> bool {
    // The same test the metadata reader applies (no namespace is tolerated there too).
    node.is_element()
        && node.tag_name().name() == local
        && matches!(node.tag_name().namespace(), Some(NS_MD) | None)
}

fn is_ds(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && node.tag_name().namespace() == Some(NS_DS)
}

fn is_id_attribute(name: &str) -> bool {
    matches!(name, "ID" | "Id" | "id")
}

/// A canonicalization method with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct C14nMethod {
    exclusive: bool,
    with_comments: bool,
    /// Exclusive only: `InclusiveNamespaces/@PrefixList`, `#default` as "".
    inclusive_prefixes: Vec<String>,
}

impl C14nMethod {
    fn from_uri(uri: &str) -> Option<Self> {
        let (exclusive, with_comments) = match uri {
            C14N => (false, false),
            C14N_WITH_COMMENTS => (false, true),
            EXC_C14N => (true, false),
            EXC_C14N_WITH_COMMENTS => (true, true),
            _ => return None,
        };
        Some(C14nMethod {
            exclusive,
            with_comments,
            inclusive_prefixes: Vec::new(),
        })
    }

    /// Reads the method from an element carrying `Algorithm` (and, for exclusive
    /// canonicalization, an optional `InclusiveNamespaces` child).
    fn from_element(element: Node<'_, '_>, uri: &str) -> Option<Self> {
        let mut method = C14nMethod::from_uri(uri)?;
        if method.exclusive
            && let Some(list) = element
                .children()
                .find(|n| {
                    n.is_element()
                        && n.tag_name().name() == "InclusiveNamespaces"
                        && n.tag_name().namespace() == Some(NS_EXC_C14N)
                })
                .and_then(|n| n.attribute("PrefixList"))
        {
            method.inclusive_prefixes = list
                .split_ascii_whitespace()
                .map(|p| if p == "#default" { "" } else { p }.to_string())
                .collect();
        }
        Some(method)
    }
}

enum RsaHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

fn signature_algorithm(uri: &str, policy: Policy) -> Result<RsaHash, Refusal> {
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

fn digest_algorithm(
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

fn element_children<'a, 'input>(node: Node<'a, 'input>) -> Vec<Node<'a, 'input>> {
    node.children().filter(|n| n.is_element()).collect()
}

/// Text content of an element, across comments and CDATA (as the metadata reader reads it).
fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

fn decode_base64(
    node: Node<'_, '_>,
    what: &'static str,
    at: &dyn Fn(Node<'_, '_>) -> Position,
) -> Result<Vec<u8>, Refusal> {
    let compact: String = text_of(node)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| Refusal::Base64 {
            at: at(node),
            what,
            detail: e.to_string(),
        })
}

/// Reads the signature into `details` and, when `check` is set, verifies it against `root`.
/// Returns the root's ID the Reference named (`None` for `URI=""`).
fn examine<'a, 'input>(
    signature: Node<'a, 'input>,
    root: Node<'a, 'input>,
    at: &dyn Fn(Node<'_, '_>) -> Position,
    details: &mut SignatureDetails,
    policy: Policy,
    check: bool,
) -> Result<Option<String>, Refusal> {
    let structure = |node: Node<'_, '_>, detail: &str| Refusal::Structure {
        at: at(node),
        detail: detail.to_string(),
    };
    let children = element_children(signature);
    let signed_info = children
        .first()
        .copied()
        .filter(|n| is_ds(*n, "SignedInfo"))
        .ok_or_else(|| structure(signature, "ds:Signature does not start with ds:SignedInfo"))?;
    let signature_value = children
        .get(1)
        .copied()
        .filter(|n| is_ds(*n, "SignatureValue"))
        .ok_or_else(|| {
            structure(
                signature,
                "ds:SignedInfo is not followed by ds:SignatureValue",
            )
        })?;
    let key_info = children.get(2).copied().filter(|n| is_ds(*n, "KeyInfo"));

    let info_children = element_children(signed_info);
    let c14n_node = info_children
        .first()
        .copied()
        .filter(|n| is_ds(*n, "CanonicalizationMethod"))
        .ok_or_else(|| {
            structure(
                signed_info,
                "ds:SignedInfo does not start with ds:CanonicalizationMethod",
            )
        })?;
    let method_node = info_children
        .get(1)
        .copied()
        .filter(|n| is_ds(*n, "SignatureMethod"))
        .ok_or_else(|| {
            structure(
                signed_info,
                "ds:CanonicalizationMethod is not followed by ds:SignatureMethod",
            )
        })?;
    let references: Vec<Node<'_, '_>> = info_children[2..]
        .iter()
        .copied()
        .filter(|n| is_ds(*n, "Reference"))
        .collect();
    details.canonicalization = c14n_node.attribute("Algorithm").map(str::to_string);
    details.signature_method = method_node.attribute("Algorithm").map(str::to_string);

    let reference = match references.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    let mut transform_nodes = Vec::new();
    let mut digest_value = None;
    if let Some(reference) = reference {
        details.reference_uri = reference.attribute("URI").map(str::to_string);
        for child in element_children(reference) {
            if is_ds(child, "Transforms") {
                transform_nodes = element_children(child)
                    .into_iter()
                    .filter(|n| is_ds(*n, "Transform"))
                    .collect();
            } else if is_ds(child, "DigestMethod") {
                details.digest_method = child.attribute("Algorithm").map(str::to_string);
            } else if is_ds(child, "DigestValue") {
                digest_value = Some(child);
            }
        }
        details.transforms = transform_nodes
            .iter()
            .map(|t| t.attribute("Algorithm").unwrap_or_default().to_string())
            .collect();
    }

    // The certificates first: a refused signature still names who it claims to be from.
    let certificate_nodes: Vec<Node<'_, '_>> = key_info
        .map(|k| {
            element_children(k)
                .into_iter()
                .filter(|n| is_ds(*n, "X509Data"))
                .flat_map(element_children)
                .filter(|n| is_ds(*n, "X509Certificate"))
                .collect()
        })
        .unwrap_or_default();
    details.key_info_certificates = certificate_nodes.len();
    let mut certificates = Vec::new();
    for node in &certificate_nodes {
        let certificate =
            Certificate::from_base64(&text_of(*node)).map_err(|error| Refusal::Certificate {
                at: at(*node),
                detail: error.to_string(),
            });
        match certificate {
            Ok(c) => certificates.push(c),
            Err(e) if check => return Err(e),
            Err(_) => {}
        }
    }
    if let Some(first) = certificates.first() {
        details.signer_sha1 = Some(first.sha1);
        details.certificate = Some(first.clone());
    }
    if !check {
        return Ok(None);
    }

    // Algorithms, then the Reference's target, then cryptography.
    let c14n_uri = details.canonicalization.clone().unwrap_or_default();
    let signed_info_c14n =
        C14nMethod::from_element(c14n_node, &c14n_uri).ok_or(Refusal::UnsupportedAlgorithm {
            role: "CanonicalizationMethod",
            uri: c14n_uri.clone(),
        })?;
    let hash = signature_algorithm(
        details.signature_method.as_deref().unwrap_or_default(),
        policy,
    )?;
    let Some(reference) = reference else {
        return Err(Refusal::ReferenceCount {
            count: references.len(),
        });
    };
    let digest = digest_algorithm(details.digest_method.as_deref().unwrap_or_default(), policy)?;
    let reference_c14n = reference_transforms(&transform_nodes, &details.transforms)?;
    let digest_value =
        digest_value.ok_or_else(|| structure(reference, "ds:Reference has no ds:DigestValue"))?;

    let root_id = root
        .attributes()
        .find(|a| is_id_attribute(a.name()))
        .map(|a| a.value().to_string());
    let id = match details.reference_uri.as_deref() {
        Some("") => None,
        Some(uri) if uri.starts_with('#') => {
            let id = &uri[1..];
            if !root
                .attributes()
                .any(|a| is_id_attribute(a.name()) && a.value() == id)
            {
                return Err(Refusal::ReferenceNotRoot {
                    uri: Some(uri.to_string()),
                    root_id,
                });
            }
            // Any other element carrying the same ID makes "#ID" ambiguous: another
            // implementation (or a later reader) could resolve it elsewhere.
            let carriers: Vec<Position> = root
                .document()
                .descendants()
                .filter(|n| {
                    n.is_element()
                        && n.attributes()
                            .any(|a| is_id_attribute(a.name()) && a.value() == id)
                })
                .map(at)
                .collect();
            if carriers.len() > 1 {
                return Err(Refusal::DuplicateId {
                    id: id.to_string(),
                    at: carriers,
                });
            }
            Some(id.to_string())
        }
        other => {
            return Err(Refusal::ReferenceNotRoot {
                uri: other.map(str::to_string),
                root_id,
            });
        }
    };

    if certificates.is_empty() {
        return Err(Refusal::NoCertificate);
    }
    let signature_bytes = decode_base64(signature_value, "SignatureValue", at)?;
    let expected_digest = decode_base64(digest_value, "DigestValue", at)?;

    // SignatureValue signs the canonical SignedInfo. Comments inside SignedInfo count only
    // with a #WithComments method.
    let mut canonical_signed_info = Vec::new();
    canonicalize(
        signed_info,
        None,
        &signed_info_c14n,
        &mut canonical_signed_info,
    );
    let mut signer = None;
    let mut weak = None;
    for certificate in &certificates {
        let key = rsa_key(certificate)?;
        let algorithm = match ring_algorithm(&hash, key.bits, policy) {
            Ok(a) => a,
            Err(minimum) => {
                weak = Some(Refusal::WeakKey {
                    sha1: certificate.sha1,
                    bits: key.bits,
                    minimum,
                });
                continue;
            }
        };
        let public_key = ring::signature::UnparsedPublicKey::new(algorithm, &key.der);
        if public_key
            .verify(&canonical_signed_info, &signature_bytes)
            .is_ok()
        {
            signer = Some(certificate);
            break;
        }
    }
    let Some(signer) = signer else {
        if let (Some(weak), 1) = (weak.clone(), certificates.len()) {
            return Err(weak);
        }
        return Err(Refusal::SignatureMismatch {
            certificates: certificates.iter().map(|c| c.sha1).collect(),
        });
    };
    details.signer_sha1 = Some(signer.sha1);
    details.certificate = Some(signer.clone());
    details.verified_with_embedded_key = true;

    // The Reference: the root without its own signature. A same-document URI ("" or a bare
    // "#ID") never carries comments, whichever canonicalization follows (XML-DSig 4.3.3.3).
    let apex = if id.is_none() {
        root.document().root()
    } else {
        root
    };
    let mut sink = DigestSink::new(digest);
    canonicalize(apex, Some(signature.id()), &reference_c14n, &mut sink);
    let computed = sink.finish();
    if computed.as_ref() != expected_digest.as_slice() {
        let b64 = base64::engine::general_purpose::STANDARD;
        return Err(Refusal::DigestMismatch {
            expected: b64.encode(&expected_digest),
            computed: b64.encode(computed.as_ref()),
        });
    }
    Ok(id)
}

/// The Reference's transforms: enveloped-signature, then at most one canonicalization (none
/// means inclusive Canonical XML 1.0). Comments are dropped in every case, see above.
fn reference_transforms(nodes: &[Node<'_, '_>], uris: &[String]) -> Result<C14nMethod, Refusal> {
    let unsupported = || Refusal::UnsupportedTransforms {
        transforms: uris.iter().map(|u| short_name(u).to_string()).collect(),
    };
    let mut method = match (uris.first().map(String::as_str), nodes.get(1), uris.get(1)) {
        (Some(ENVELOPED_SIGNATURE), None, None) if uris.len() == 1 => {
            C14nMethod::from_uri(C14N).ok_or_else(unsupported)?
        }
        (Some(ENVELOPED_SIGNATURE), Some(node), Some(uri)) if uris.len() == 2 => {
            C14nMethod::from_element(*node, uri).ok_or_else(unsupported)?
        }
        _ => return Err(unsupported()),
    };
    method.with_comments = false;
    Ok(method)
}

fn ring_algorithm(
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

struct RsaKey {
    /// PKCS#1 RSAPublicKey, as ring takes it.
    der: Vec<u8>,
    bits: usize,
}

fn rsa_key(certificate: &Certificate) -> Result<RsaKey, Refusal> {
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

fn freshness(root: Node<'_, '_>) -> Freshness {
    let mut freshness = Freshness::default();
    if let Some(value) = root.attribute("validUntil") {
        match parse_date_time(value) {
            Some(t) => freshness.valid_until = Some(t),
            None => freshness
                .problems
                .push(format!("validUntil=\"{value}\" is not an xs:dateTime")),
        }
    }
    if let Some(value) = root.attribute("cacheDuration") {
        if is_duration(value) {
            freshness.cache_duration = Some(value.to_string());
        } else {
            freshness
                .problems
                .push(format!("cacheDuration=\"{value}\" is not an xs:duration"));
        }
    }
    freshness
}

/// `xs:dateTime`. SAML requires UTC; a value without a zone is read as UTC.
fn parse_date_time(value: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let value = value.trim();
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{value}Z"), &Rfc3339))
        .ok()
}

/// `xs:duration`: `-?P(nY)?(nM)?(nD)?(T(nH)?(nM)?(n(.n)?S)?)?` with at least one part, and
/// at least one after a `T`.
fn is_duration(value: &str) -> bool {
    let value = value.trim();
    let Some(rest) = value.strip_prefix('-').unwrap_or(value).strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    // Each part: digits then its designator, designators in this order, each at most once.
    fn parts(s: &str, designators: &[char], fraction_on: Option<char>) -> Option<usize> {
        let mut count = 0;
        let mut allowed = designators;
        let mut rest = s;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
            let (number, tail) = rest.split_at(end);
            let designator = tail.chars().next()?;
            let position = allowed.iter().position(|&d| d == designator)?;
            let valid_number = match number.split_once('.') {
                None => !number.is_empty(),
                Some((whole, fraction)) => {
                    Some(designator) == fraction_on && !whole.is_empty() && !fraction.is_empty()
                }
            };
            if !valid_number {
                return None;
            }
            allowed = &allowed[position + 1..];
            rest = &tail[designator.len_utf8()..];
            count += 1;
        }
        Some(count)
    }
    let Some(date_parts) = parts(date, &['Y', 'M', 'D'], None) else {
        return false;
    };
    match time {
        None => date_parts > 0,
        Some(time) => matches!(parts(time, &['H', 'M', 'S'], Some('S')), Some(n) if n > 0),
    }
}

// ---------------------------------------------------------------------------------------
// Canonicalization (Canonical XML 1.0 and Exclusive XML Canonicalization 1.0) of one element
// subtree, or of the whole document, minus one excluded subtree (the enveloped signature).

trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// Hashes canonical output as it is produced, so a 60 MB aggregate is never held twice.
struct DigestSink {
    context: ring::digest::Context,
    buffer: Vec<u8>,
}

impl DigestSink {
    const FLUSH_AT: usize = 64 * 1024;

    fn new(algorithm: &'static ring::digest::Algorithm) -> Self {
        DigestSink {
            context: ring::digest::Context::new(algorithm),
            buffer: Vec::with_capacity(Self::FLUSH_AT * 2),
        }
    }

    fn finish(mut self) -> ring::digest::Digest {
        self.context.update(&self.buffer);
        self.context.finish()
    }
}

impl Sink for DigestSink {
    fn put(&mut self, s: &str) {
        self.buffer.extend_from_slice(s.as_bytes());
        if self.buffer.len() >= Self::FLUSH_AT {
            self.context.update(&self.buffer);
            self.buffer.clear();
        }
    }
}

/// Writes `s` with the characters canonical XML escapes replaced.
fn escape(sink: &mut dyn Sink, s: &str, attribute: bool) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' if !attribute => "&gt;",
            b'"' if attribute => "&quot;",
            b'\t' if attribute => "&#x9;",
            b'\n' if attribute => "&#xA;",
            b'\r' => "&#xD;",
            _ => continue,
        };
        sink.put(&s[start..i]);
        sink.put(replacement);
        start = i + 1;
    }
    sink.put(&s[start..]);
}

/// The element's qualified name as written (`md:EntityDescriptor`), read from the source:
/// roxmltree keeps the namespace URI but not the prefix, and canonical XML keeps the prefix.
fn element_qname<'input>(node: Node<'_, 'input>) -> &'input str {
    let text = node.document().input_text();
    let start = node.range().start + 1;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(p, _)| p)
}

/// Canonicalizes `apex` (an element, or the document node for the whole document) without
/// the subtree `exclude`.
fn canonicalize<'a, 'input: 'a>(
    apex: Node<'a, 'input>,
    exclude: Option<NodeId>,
    method: &C14nMethod,
    sink: &mut dyn Sink,
) {
    let mut writer = Writer {
        apex,
        method,
        rendered: Vec::new(),
        marks: Vec::new(),
        root_element_done: false,
    };
    let included = |mut node: Option<Node<'a, 'input>>| {
        while let Some(n) = node {
            if Some(n.id()) != exclude {
                return Some(n);
            }
            node = n.next_sibling();
        }
        None
    };
    // Depth-first without recursion: a deeply nested document cannot exhaust the stack.
    let mut current = apex;
    writer.open(current, sink);
    loop {
        if let Some(child) = included(current.first_child()) {
            current = child;
            writer.open(current, sink);
            continue;
        }
        loop {
            writer.close(current, sink);
            if current == apex {
                return;
            }
            if let Some(sibling) = included(current.next_sibling()) {
                current = sibling;
                writer.open(current, sink);
                break;
            }
            match current.parent() {
                Some(parent) => current = parent,
                None => return,
            }
        }
    }
}

struct Writer<'a, 'input, 'm> {
    apex: Node<'a, 'input>,
    method: &'m C14nMethod,
    /// Namespace declarations rendered by output ancestors: (prefix, URI), innermost last.
    rendered: Vec<(&'a str, &'a str)>,
    /// Length of `rendered` when each open element started.
    marks: Vec<usize>,
    root_element_done: bool,
}

impl<'a, 'input: 'a> Writer<'a, 'input, '_> {
    fn open(&mut self, node: Node<'a, 'input>, sink: &mut dyn Sink) {
        let top_level = node.parent().is_some_and(|p| p.is_root());
        match node.node_type() {
            roxmltree::NodeType::Root => {}
            roxmltree::NodeType::Element => {
                self.marks.push(self.rendered.len());
                start_tag(
                    node,
                    node == self.apex,
                    self.method,
                    &mut self.rendered,
                    sink,
                );
            }
            roxmltree::NodeType::Text => {
                // Outside the document element there is no text in canonical form.
                if !top_level {
                    escape(sink, node.text().unwrap_or_default(), false);
                }
            }
            roxmltree::NodeType::Comment => {
                if self.method.with_comments {
                    top_level_break(top_level, self.root_element_done, true, sink);
                    sink.put("<!--");
                    sink.put(node.text().unwrap_or_default());
                    sink.put("-->");
                    top_level_break(top_level, self.root_element_done, false, sink);
                }
            }
            roxmltree::NodeType::PI => {
                if let Some(pi) = node.pi() {
                    top_level_break(top_level, self.root_element_done, true, sink);
                    sink.put("<?");
                    sink.put(pi.target);
                    if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
                        sink.put(" ");
                        sink.put(value);
                    }
                    sink.put("?>");
                    top_level_break(top_level, self.root_element_done, false, sink);
                }
            }
        }
    }

    fn close(&mut self, node: Node<'a, 'input>, sink: &mut dyn Sink) {
        if node.is_element() {
            sink.put("</");
            sink.put(element_qname(node));
            sink.put(">");
            self.rendered.truncate(self.marks.pop().unwrap_or(0));
            if node.parent().is_some_and(|p| p.is_root()) {
                self.root_element_done = true;
            }
        }
    }
}

/// Canonical XML separates a comment or PI outside the document element from it by a line
/// feed: after the node when it precedes the element, before it when it follows.
fn top_level_break(top_level: bool, root_done: bool, before: bool, sink: &mut dyn Sink) {
    if top_level && root_done == before {
        sink.put("\n");
    }
}

fn start_tag<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    is_apex: bool,
    method: &C14nMethod,
    rendered: &mut Vec<(&'a str, &'a str)>,
    sink: &mut dyn Sink,
) {
    let text: &'input str = node.document().input_text();
    let qname = element_qname(node);
    sink.put("<");
    sink.put(qname);

    // Namespace declarations that this element must render: candidates not already rendered
    // with the same URI by an output ancestor (the default namespace starts as "").
    let in_scope = |prefix: &str| -> &'a str {
        node.namespaces()
            .find(|ns| ns.name().unwrap_or("") == prefix)
            .map_or("", |ns| ns.uri())
    };
    let mut candidates: Vec<(&'a str, &'a str)> = Vec::new();
    if method.exclusive {
        let prefix = prefix_of(qname);
        candidates.push((prefix, node.tag_name().namespace().unwrap_or("")));
        for attribute in node.attributes() {
            let attr_prefix = prefix_of(&text[attribute.range_qname()]);
            if !attr_prefix.is_empty() && attr_prefix != "xml" {
                candidates.push((attr_prefix, attribute.namespace().unwrap_or("")));
            }
        }
        for prefix in &method.inclusive_prefixes {
            if prefix.is_empty() {
                candidates.push(("", in_scope("")));
            } else if let Some(ns) = node
                .namespaces()
                .find(|ns| ns.name() == Some(prefix.as_str()))
            {
                candidates.push((ns.name().unwrap_or(""), ns.uri()));
            }
        }
    } else {
        candidates.extend(
            node.namespaces()
                .map(|ns| (ns.name().unwrap_or(""), ns.uri())),
        );
        if !candidates.iter().any(|(p, _)| p.is_empty()) {
            candidates.push(("", ""));
        }
    }
    candidates.sort_unstable();
    candidates.dedup_by(|a, b| a.0 == b.0);
    for (prefix, uri) in candidates {
        if prefix == "xml" {
            continue;
        }
        let current = rendered
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map_or("", |(_, u)| *u);
        if current == uri {
            continue;
        }
        rendered.push((prefix, uri));
        if prefix.is_empty() {
            sink.put(" xmlns=\"");
        } else {
            sink.put(" xmlns:");
            sink.put(prefix);
            sink.put("=\"");
        }
        escape(sink, uri, true);
        sink.put("\"");
    }

    // Attributes sorted by namespace URI, then local name; unqualified ones first.
    let mut attributes: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|a| {
            (
                a.namespace().unwrap_or(""),
                a.name(),
                &text[a.range_qname()],
                a.value(),
            )
        })
        .collect();
    if is_apex && !method.exclusive {
        // Inclusive canonicalization of a subtree carries the xml:* attributes (xml:lang,
        // xml:space...) it inherits from ancestors outside it.
        for ancestor in node.ancestors().skip(1).filter(|n| n.is_element()) {
            for a in ancestor.attributes() {
                if a.namespace() == Some(NS_XML)
                    && !attributes
                        .iter()
                        .any(|(ns, local, _, _)| *ns == NS_XML && *local == a.name())
                {
                    attributes.push((NS_XML, a.name(), &text[a.range_qname()], a.value()));
                }
            }
        }
    }
    attributes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, _, qname, value) in attributes {
        sink.put(" ");
        sink.put(qname);
        sink.put("=\"");
        escape(sink, value, true);
        sink.put("\"");
    }
    sink.put(">");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, exclusive: bool, with_comments: bool, prefixes: &[&str]) -> String {
        let doc = Document::parse_with_options(xml, xml_options()).unwrap();
        let method = C14nMethod {
            exclusive,
            with_comments,
            inclusive_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        };
        let mut out = Vec::new();
        canonicalize(doc.root(), None, &method, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn c14n_of(xml: &str, tag: &str, exclusive: bool) -> String {
        let doc = Document::parse_with_options(xml, xml_options()).unwrap();
        let node = doc
            .descendants()
            .find(|n| n.tag_name().name() == tag)
            .unwrap();
        let method = C14nMethod::from_uri(if exclusive { EXC_C14N } else { C14N }).unwrap();
        let mut out = Vec::new();
        canonicalize(node, None, &method, &mut out);
        String::from_utf8(out).unwrap()
    }

    // The whole-document expectations below are libxml2's output (`xmllint --c14n` and
    // `--exc-c14n` on the same input), an implementation independent of this one; subtrees
    // are checked through xmlsec1-signed documents in tests/signature.rs.

    #[test]
    fn c14n_spec_example_pis_comments_and_outside_whitespace() {
        let xml = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->";
        assert_eq!(
            c14n(xml, false, false, &[]),
            "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
        );
        assert_eq!(
            c14n(xml, false, true, &[]),
            "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->"
        );
    }

    #[test]
    fn c14n_spec_example_start_and_end_tags() {
        let xml = "<doc>\n   <e1   />\n   <e2   ></e2>\n   <e3   name = \"elem3\"   id=\"elem3\"   />\n   <e4   name=\"elem4\"   id=\"elem4\"   ></e4>\n   <e5 a:attr=\"out\" b:attr=\"sorted\" attr2=\"all\" attr=\"I'm\"\n      xmlns:b=\"http://www.ietf.org\"\n      xmlns:a=\"http://www.w3.org\"\n      xmlns=\"http://example.org\"/>\n   <e6 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n            <e9 xmlns=\"\" xmlns:a=\"http://www.ietf.org\"/>\n         </e8>\n      </e7>\n   </e6>\n</doc>";
        assert_eq!(
            c14n(xml, false, false, &[]),
            "<doc>\n   <e1></e1>\n   <e2></e2>\n   <e3 id=\"elem3\" name=\"elem3\"></e3>\n   <e4 id=\"elem4\" name=\"elem4\"></e4>\n   <e5 xmlns=\"http://example.org\" xmlns:a=\"http://www.w3.org\" xmlns:b=\"http://www.ietf.org\" attr=\"I'm\" attr2=\"all\" b:attr=\"sorted\" a:attr=\"out\"></e5>\n   <e6 xmlns:a=\"http://www.w3.org\">\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\">\n            <e9 xmlns:a=\"http://www.ietf.org\"></e9>\n         </e8>\n      </e7>\n   </e6>\n</doc>"
        );
        assert_eq!(
            c14n(xml, true, false, &[]),
            "<doc>\n   <e1></e1>\n   <e2></e2>\n   <e3 id=\"elem3\" name=\"elem3\"></e3>\n   <e4 id=\"elem4\" name=\"elem4\"></e4>\n   <e5 xmlns=\"http://example.org\" xmlns:a=\"http://www.w3.org\" xmlns:b=\"http://www.ietf.org\" attr=\"I'm\" attr2=\"all\" b:attr=\"sorted\" a:attr=\"out\"></e5>\n   <e6>\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\">\n            <e9></e9>\n         </e8>\n      </e7>\n   </e6>\n</doc>"
        );
    }

    #[test]
    fn c14n_character_modifications_and_references() {
        let xml = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n</doc>";
        assert_eq!(
            c14n(xml, false, false, &[]),
            "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n</doc>"
        );
    }

    #[test]
    fn subtree_apex_renders_inherited_namespaces_inclusive_only() {
        let xml = "<r xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" xml:lang=\"en\"><ds:SignedInfo><ds:x/></ds:SignedInfo></r>";
        assert_eq!(
            c14n_of(xml, "SignedInfo", false),
            "<ds:SignedInfo xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" xml:lang=\"en\"><ds:x></ds:x></ds:SignedInfo>"
        );
        assert_eq!(
            c14n_of(xml, "SignedInfo", true),
            "<ds:SignedInfo xmlns:ds=\"urn:ds\"><ds:x></ds:x></ds:SignedInfo>"
        );
    }

    #[test]
    fn exclusive_inclusive_prefix_list() {
        let xml =
            "<a xmlns:p=\"urn:p\" xmlns:q=\"urn:q\" xmlns=\"urn:d\"><b><c p:x=\"1\"/></b></a>";
        assert_eq!(
            c14n(xml, true, false, &[]),
            "<a xmlns=\"urn:d\"><b><c xmlns:p=\"urn:p\" p:x=\"1\"></c></b></a>"
        );
        // Listed prefixes follow the inclusive rule: rendered where first in scope.
        assert_eq!(
            c14n(xml, true, false, &["q", "p"]),
            "<a xmlns=\"urn:d\" xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"><b><c p:x=\"1\"></c></b></a>"
        );
    }

    #[test]
    fn excluded_subtree_is_left_out() {
        let xml = "<r><a/><s><t/></s><b/></r>";
        let doc = Document::parse(xml).unwrap();
        let s = doc
            .descendants()
            .find(|n| n.has_tag_name("s"))
            .unwrap()
            .id();
        let mut out = Vec::new();
        canonicalize(
            doc.root_element(),
            Some(s),
            &C14nMethod::from_uri(EXC_C14N).unwrap(),
            &mut out,
        );
        assert_eq!(String::from_utf8(out).unwrap(), "<r><a></a><b></b></r>");
    }

    #[test]
    fn durations() {
        for ok in [
            "PT1H",
            "P7D",
            "P1Y2M3DT4H5M6.5S",
            "-P1D",
            "PT1393462294S",
            "P0D",
        ] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in [
            "", "P", "PT", "1H", "P1H", "PT1D", "P1.5D", "P1DT", "PT1M1H", "P1Y1Y", "tomorrow",
        ] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn date_times() {
        assert_eq!(
            parse_date_time("2014-04-17T18:02:33.910Z")
                .map(rfc3339)
                .as_deref(),
            Some("2014-04-17T18:02:33.91Z")
        );
        assert_eq!(
            parse_date_time("2014-02-22T00:39:43")
                .map(rfc3339)
                .as_deref(),
            Some("2014-02-22T00:39:43Z")
        );
        assert_eq!(
            parse_date_time("2014-02-22T01:39:43+01:00")
                .map(rfc3339)
                .as_deref(),
            Some("2014-02-22T00:39:43Z")
        );
        assert_eq!(parse_date_time("2014-02-22"), None);
    }

    #[test]
    fn unsigned_document_reports_freshness() {
        let xml = r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x" validUntil="2014-02-22T00:39:43Z" cacheDuration="PT1H"/>"#;
        let report = verify(xml, Policy::STRICT);
        assert_eq!(report.verdict, Verdict::Unsigned);
        assert!(!report.is_signed());
        assert_eq!(report.freshness.cache_duration.as_deref(), Some("PT1H"));
        assert_eq!(
            report.freshness.valid_until.map(rfc3339).as_deref(),
            Some("2014-02-22T00:39:43Z")
        );
        let bad = verify(
            r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="soon" cacheDuration="1 hour"/>"#,
            Policy::STRICT,
        );
        assert_eq!(bad.freshness.problems.len(), 2, "{:?}", bad.freshness);
    }

    #[test]
    fn malformed_and_foreign_documents_are_refused_with_a_position() {
        let report = verify("<EntityDescriptor>\n<x></EntityDescriptor>", Policy::STRICT);
        match report.verdict {
            Verdict::Refused(Refusal::Malformed { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        let report = verify("<!DOCTYPE x><EntityDescriptor/>", Policy::STRICT);
        assert_eq!(
            report.verdict.to_string(),
            "refused: line 1, column 1: the document has a DTD (<!DOCTYPE>); keyroll refuses DTDs and entity declarations"
        );
        let with_dtd = "<!DOCTYPE EntityDescriptor>\n<EntityDescriptor/>";
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = Document::parse_with_options(with_dtd, options).unwrap();
        assert_eq!(
            verify_document(&doc, Policy::STRICT).verdict,
            verify(with_dtd, Policy::STRICT).verdict
        );
        assert!(!report.is_signed());
        let report = verify("<html/>", Policy::STRICT);
        assert!(matches!(
            report.verdict,
            Verdict::Refused(Refusal::NotMetadata { .. })
        ));
    }
}
