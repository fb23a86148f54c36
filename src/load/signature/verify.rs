//! Checking one `ds:Signature`: its structure, its algorithms, that its Reference names the
//! root, that SignatureValue verifies with a KeyInfo certificate's key, and that the root's
//! canonical form (without the signature) has the DigestValue.

use base64::Engine as _;
use roxmltree::Node;

use super::algorithms::{RsaHash, digest_algorithm, ring_algorithm, rsa_key, signature_algorithm};
use super::c14n::{C14nMethod, DigestSink, canonicalize};
use super::{C14N, ENVELOPED_SIGNATURE, Policy, Position, Refusal, SignatureDetails, short_name};
use crate::load::metadata::is_ds;
use crate::model::cert::Certificate;

pub(super) fn is_id_attribute(name: &str) -> bool {
    matches!(name, "ID" | "Id" | "id")
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
/// What a Reference to the root covers, for the two checks that need more than the root's
/// start tag: which elements carry the root's ID, and the digest of the root's canonical form
/// without the signature. A parsed tree answers from the tree; a document read as a stream
/// answers from what it gathered on its way through (crate::load::metadata's aggregate reader).
pub(super) trait Referent {
    /// Positions of every element whose `ID`, `Id` or `id` is `id`, in document order.
    fn id_carriers(&self, id: &str) -> Vec<Position>;
    /// The canonical form's digest: of the whole document, or of the root element.
    fn digest(
        &self,
        whole_document: bool,
        method: &C14nMethod,
        algorithm: &'static ring::digest::Algorithm,
    ) -> ring::digest::Digest;
}

/// The root and its signature in one parsed tree.
pub(super) struct InTree<'a, 'input, 'f> {
    pub(super) root: Node<'a, 'input>,
    pub(super) signature: Node<'a, 'input>,
    pub(super) at: &'f dyn Fn(Node<'_, '_>) -> Position,
}

impl Referent for InTree<'_, '_, '_> {
    fn id_carriers(&self, id: &str) -> Vec<Position> {
        self.root
            .document()
            .descendants()
            .filter(|n| {
                n.is_element()
                    && n.attributes()
                        .any(|a| is_id_attribute(a.name()) && a.value() == id)
            })
            .map(self.at)
            .collect()
    }

    fn digest(
        &self,
        whole_document: bool,
        method: &C14nMethod,
        algorithm: &'static ring::digest::Algorithm,
    ) -> ring::digest::Digest {
        let apex = if whole_document {
            self.root.document().root()
        } else {
            self.root
        };
        let mut sink = DigestSink::new(algorithm);
        canonicalize(apex, Some(self.signature.id()), method, &mut sink);
        sink.finish()
    }
}

/// The canonicalization and digest algorithm a signature's Reference names, read as
/// [`examine`] reads them (under the legacy policy, which accepts the most): what a stream
/// must digest while it reads. `None` when the signature would be refused before its digest
/// is looked at.
pub(super) fn reference_digest(
    signature: Node<'_, '_>,
    at: &dyn Fn(Node<'_, '_>) -> Position,
) -> Option<(C14nMethod, &'static ring::digest::Algorithm)> {
    let mut details = SignatureDetails::empty(at(signature));
    let parts = read_parts(signature, at, &mut details).ok()?;
    let algorithms = check_algorithms(&parts, &details, at, super::Policy::LEGACY).ok()?;
    Some((algorithms.reference_c14n, algorithms.digest))
}

pub(super) fn examine<'a, 'input>(
    signature: Node<'a, 'input>,
    root: Node<'a, 'input>,
    target: &dyn Referent,
    at: &dyn Fn(Node<'_, '_>) -> Position,
    details: &mut SignatureDetails,
    policy: Policy,
    check: bool,
) -> Result<Option<String>, Refusal> {
    let parts = read_parts(signature, at, details)?;
    // The certificates first: a refused signature still names who it claims to be from.
    let certificates = read_certificates(parts.key_info, at, details, check)?;
    if !check {
        return Ok(None);
    }

    // Algorithms, then the Reference's target, then cryptography.
    let algorithms = check_algorithms(&parts, details, at, policy)?;
    let id = referenced_id(root, details.reference_uri.as_deref(), target)?;
    if certificates.is_empty() {
        return Err(Refusal::NoCertificate);
    }
    let signature_bytes = decode_base64(parts.signature_value, "SignatureValue", at)?;
    let expected_digest = decode_base64(algorithms.digest_value, "DigestValue", at)?;
    let signer = verify_signed_info(
        parts.signed_info,
        &algorithms,
        &certificates,
        &signature_bytes,
        policy,
    )?;
    details.signer_sha1 = Some(signer.sha1);
    details.certificate = Some(signer.clone());
    details.verified_with_embedded_key = true;
    check_digest(target, id.is_none(), &algorithms, &expected_digest)?;
    Ok(id)
}

fn structure(at: &dyn Fn(Node<'_, '_>) -> Position, node: Node<'_, '_>, detail: &str) -> Refusal {
    Refusal::Structure {
        at: at(node),
        detail: detail.to_string(),
    }
}

/// The `i`th element of `elements`, if it is `ds:<name>`.
fn nth_ds<'a, 'input>(
    elements: &[Node<'a, 'input>],
    i: usize,
    name: &str,
) -> Option<Node<'a, 'input>> {
    elements.get(i).copied().filter(|n| is_ds(*n, name))
}

/// The elements of a `ds:Signature`, as read before anything is checked.
struct Parts<'a, 'input> {
    signed_info: Node<'a, 'input>,
    signature_value: Node<'a, 'input>,
    key_info: Option<Node<'a, 'input>>,
    c14n_node: Node<'a, 'input>,
    reference_count: usize,
    /// The Reference, when there is exactly one.
    reference: Option<Node<'a, 'input>>,
    transform_nodes: Vec<Node<'a, 'input>>,
    digest_value: Option<Node<'a, 'input>>,
}

/// Reads the signature's layout, and the algorithms and Reference it names into `details`.
fn read_parts<'a, 'input>(
    signature: Node<'a, 'input>,
    at: &dyn Fn(Node<'_, '_>) -> Position,
    details: &mut SignatureDetails,
) -> Result<Parts<'a, 'input>, Refusal> {
    let children = element_children(signature);
    let signed_info = nth_ds(&children, 0, "SignedInfo").ok_or_else(|| {
        structure(
            at,
            signature,
            "ds:Signature does not start with ds:SignedInfo",
        )
    })?;
    let signature_value = nth_ds(&children, 1, "SignatureValue").ok_or_else(|| {
        structure(
            at,
            signature,
            "ds:SignedInfo is not followed by ds:SignatureValue",
        )
    })?;
    let key_info = nth_ds(&children, 2, "KeyInfo");

    let info_children = element_children(signed_info);
    let c14n_node = nth_ds(&info_children, 0, "CanonicalizationMethod").ok_or_else(|| {
        structure(
            at,
            signed_info,
            "ds:SignedInfo does not start with ds:CanonicalizationMethod",
        )
    })?;
    let method_node = nth_ds(&info_children, 1, "SignatureMethod").ok_or_else(|| {
        structure(
            at,
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
    let (transform_nodes, digest_value) = match reference {
        Some(reference) => read_reference(reference, details),
        None => (Vec::new(), None),
    };
    Ok(Parts {
        signed_info,
        signature_value,
        key_info,
        c14n_node,
        reference_count: references.len(),
        reference,
        transform_nodes,
        digest_value,
    })
}

/// Reads the Reference's URI, transforms and digest method into `details`; returns its
/// `Transform` elements and its `DigestValue`.
fn read_reference<'a, 'input>(
    reference: Node<'a, 'input>,
    details: &mut SignatureDetails,
) -> (Vec<Node<'a, 'input>>, Option<Node<'a, 'input>>) {
    let mut transform_nodes = Vec::new();
    let mut digest_value = None;
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
    (transform_nodes, digest_value)
}

/// The certificates of `KeyInfo/X509Data`, counted in `details`, the first named as the
/// signer until one verifies. One that does not parse refuses the signature when it is
/// checked; when it is only described, it is left out.
fn read_certificates(
    key_info: Option<Node<'_, '_>>,
    at: &dyn Fn(Node<'_, '_>) -> Position,
    details: &mut SignatureDetails,
    check: bool,
) -> Result<Vec<Certificate>, Refusal> {
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
    Ok(certificates)
}

/// The algorithms the signature names, each accepted by the policy, and the Reference's
/// DigestValue.
struct Algorithms<'a, 'input> {
    signed_info_c14n: C14nMethod,
    hash: RsaHash,
    digest: &'static ring::digest::Algorithm,
    reference_c14n: C14nMethod,
    digest_value: Node<'a, 'input>,
}

fn check_algorithms<'a, 'input>(
    parts: &Parts<'a, 'input>,
    details: &SignatureDetails,
    at: &dyn Fn(Node<'_, '_>) -> Position,
    policy: Policy,
) -> Result<Algorithms<'a, 'input>, Refusal> {
    let c14n_uri = details.canonicalization.clone().unwrap_or_default();
    let signed_info_c14n = C14nMethod::from_element(parts.c14n_node, &c14n_uri).ok_or(
        Refusal::UnsupportedAlgorithm {
            role: "CanonicalizationMethod",
            uri: c14n_uri.clone(),
        },
    )?;
    let hash = signature_algorithm(
        details.signature_method.as_deref().unwrap_or_default(),
        policy,
    )?;
    let Some(reference) = parts.reference else {
        return Err(Refusal::ReferenceCount {
            count: parts.reference_count,
        });
    };
    let digest = digest_algorithm(details.digest_method.as_deref().unwrap_or_default(), policy)?;
    let reference_c14n = reference_transforms(&parts.transform_nodes, &details.transforms)?;
    let digest_value = parts
        .digest_value
        .ok_or_else(|| structure(at, reference, "ds:Reference has no ds:DigestValue"))?;
    Ok(Algorithms {
        signed_info_c14n,
        hash,
        digest,
        reference_c14n,
        digest_value,
    })
}

/// The root's ID the Reference names, `None` for `URI=""` (the whole document). A URI
/// naming anything else is refused.
fn referenced_id(
    root: Node<'_, '_>,
    uri: Option<&str>,
    target: &dyn Referent,
) -> Result<Option<String>, Refusal> {
    let root_id = root
        .attributes()
        .find(|a| is_id_attribute(a.name()))
        .map(|a| a.value().to_string());
    match uri {
        Some("") => Ok(None),
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
            let carriers = target.id_carriers(id);
            if carriers.len() > 1 {
                return Err(Refusal::DuplicateId {
                    id: id.to_string(),
                    at: carriers,
                });
            }
            Ok(Some(id.to_string()))
        }
        other => Err(Refusal::ReferenceNotRoot {
            uri: other.map(str::to_string),
            root_id,
        }),
    }
}

/// The certificate whose key verifies SignatureValue over the canonical SignedInfo.
fn verify_signed_info<'c>(
    signed_info: Node<'_, '_>,
    algorithms: &Algorithms<'_, '_>,
    certificates: &'c [Certificate],
    signature_bytes: &[u8],
    policy: Policy,
) -> Result<&'c Certificate, Refusal> {
    // SignatureValue signs the canonical SignedInfo. Comments inside SignedInfo count only
    // with a #WithComments method.
    let mut canonical_signed_info = Vec::new();
    canonicalize(
        signed_info,
        None,
        &algorithms.signed_info_c14n,
        &mut canonical_signed_info,
    );
    let mut weak = None;
    for certificate in certificates {
        let key = rsa_key(certificate)?;
        let algorithm = match ring_algorithm(&algorithms.hash, key.bits, policy) {
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
            .verify(&canonical_signed_info, signature_bytes)
            .is_ok()
        {
            return Ok(certificate);
        }
    }
    if let (Some(weak), 1) = (weak, certificates.len()) {
        return Err(weak);
    }
    Err(Refusal::SignatureMismatch {
        certificates: certificates.iter().map(|c| c.sha1).collect(),
    })
}

/// Checks the Reference's DigestValue against the canonical form of what it covers.
fn check_digest(
    target: &dyn Referent,
    whole_document: bool,
    algorithms: &Algorithms<'_, '_>,
    expected_digest: &[u8],
) -> Result<(), Refusal> {
    // The Reference: the root without its own signature. A same-document URI ("" or a bare
    // "#ID") never carries comments, whichever canonicalization follows (XML-DSig 4.3.3.3).
    let computed = target.digest(
        whole_document,
        &algorithms.reference_c14n,
        algorithms.digest,
    );
    if computed.as_ref() != expected_digest {
        let b64 = base64::engine::general_purpose::STANDARD;
        return Err(Refusal::DigestMismatch {
            expected: b64.encode(expected_digest),
            computed: b64.encode(computed.as_ref()),
        });
    }
    Ok(())
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
