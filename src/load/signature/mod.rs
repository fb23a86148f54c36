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
//! ([`crate::load::metadata::xml_options`]), that the metadata reader takes keys from, so what was
//! verified and what is read cannot differ by a parser's reading of the bytes.
//!
//! Whether the signer's certificate is trusted is not decided here (like
//! `xmlsec1 --verify --insecure`): the report names it, the caller decides.
//!
//! - `report`: the verdict, the refusals, the signature and signed element as found
//! - `verify`: one signature checked, step by step (`examine`)
//! - `c14n`: canonical XML, inclusive and exclusive, streamed into the digest
//! - `algorithms`: the algorithms a [`Policy`] accepts, and the signer's RSA key
//! - `freshness`: the root's `validUntil` and `cacheDuration`
//! - `streamed`: the same checks on an aggregate read as a stream, digested piece by piece

mod algorithms;
mod c14n;
mod freshness;
mod report;
mod streamed;
mod verify;

use roxmltree::{Document, Node};
use serde::Serialize;

use crate::load::metadata::{
    LineIndex, is_ds, is_md, xml_error_detail, xml_error_position, xml_options,
};
use verify::{InTree, examine};

pub use freshness::{Bounds, CacheDuration, Freshness, freshness, parse_duration};
pub use report::{Position, Refusal, SignatureDetails, SignatureReport, SignedElement, Verdict};
pub use streamed::{
    Canonicalizer, Digester, PieceContext, Streamed, StreamedDigest, verify_streamed,
};

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
/// [`crate::load::metadata::xml_options`] (no DTD, so no entity can change what was signed).
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
    if let Err(refusal) = check_document(doc, &lines) {
        report.verdict = Verdict::Refused(refusal);
        return report;
    }
    let signatures: Vec<Node<'_, '_>> = root
        .descendants()
        .filter(|n| is_ds(*n, "Signature"))
        .collect();
    let Some(signature) = root_signature(root, &signatures, &at, policy, &mut report) else {
        return report;
    };
    report.nested_signatures = signatures
        .iter()
        .filter(|s| **s != signature)
        .map(|s| at(*s))
        .collect();

    let mut details = SignatureDetails::empty(at(signature));
    let target = InTree {
        root,
        signature,
        at: &at,
    };
    let outcome = examine(signature, root, &target, &at, &mut details, policy, true);
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

/// Refuses a document with a DTD, and one whose root is not SAML metadata.
fn check_document(doc: &Document<'_>, lines: &LineIndex<'_>) -> Result<(), Refusal> {
    let root = doc.root_element();
    // A document parsed with a DTD allowed could hold entities that expand into what is
    // verified; refuse it here too rather than trust the caller's options.
    if let Some(offset) = doc.input_text()[..root.range().start].find("<!DOCTYPE") {
        let (line, column) = lines.position(offset);
        return Err(Refusal::Malformed {
            line,
            column,
            detail: xml_error_detail(&roxmltree::Error::DtdDetected),
        });
    }
    if !is_md(root, "EntityDescriptor") && !is_md(root, "EntitiesDescriptor") {
        return Err(Refusal::NotMetadata {
            root: root.tag_name().name().to_string(),
        });
    }
    Ok(())
}

/// The one signature that is a child of the root, the only one verified. `None` when there
/// is none to verify; `report` then says why: unsigned, misplaced (described, never
/// verified) or several.
fn root_signature<'a, 'input>(
    root: Node<'a, 'input>,
    signatures: &[Node<'a, 'input>],
    at: &dyn Fn(Node<'_, '_>) -> Position,
    policy: Policy,
    report: &mut SignatureReport,
) -> Option<Node<'a, 'input>> {
    let on_root: Vec<Node<'_, '_>> = signatures
        .iter()
        .copied()
        .filter(|s| s.parent() == Some(root))
        .collect();
    match on_root.as_slice() {
        [] => {
            let &first = signatures.first()?;
            // Described for the report, never verified: it cannot cover the whole root.
            let mut details = SignatureDetails::empty(at(first));
            let target = InTree {
                root,
                signature: first,
                at,
            };
            let _ = examine(first, root, &target, at, &mut details, policy, false);
            report.signature = Some(details);
            report.verdict = Verdict::Refused(Refusal::NotOnRoot {
                at: at(first),
                parent: first
                    .parent_element()
                    .map_or_else(String::new, |p| p.tag_name().name().to_string()),
            });
            None
        }
        [one] => Some(*one),
        many => {
            report.verdict = Verdict::Refused(Refusal::MultipleSignatures {
                at: many.iter().map(|s| at(*s)).collect(),
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cert::rfc3339;

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
