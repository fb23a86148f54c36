//! The root signature of an aggregate read as a stream (crate::load::metadata reads aggregates
//! entity by entity, never as one tree). The checks are [`examine`]'s, step for step; only
//! the two that need the whole root are answered from what the stream gathered: the digest,
//! hashed piece by piece in document order while the stream reads, and the elements that
//! carry the root's ID.
//!
//! The canonical form of each piece is the one the whole tree would give: every piece is
//! parsed with its ancestors' namespace declarations in scope, and starts from the
//! declarations its output ancestors rendered ([`canonicalize_piece`]).

use std::cell::Cell;
use std::ops::Range;
use std::sync::Arc;

use roxmltree::Node;

use super::c14n::{
    C14nMethod, DigestSink, canonical_end_tag, canonical_start_tag, canonical_text,
    canonicalize_piece,
};
use super::freshness::freshness;
use super::verify::{Referent, examine, reference_digest};
use super::{Policy, Position, SignatureDetails, SignatureReport, SignedElement, Verdict};

/// Canonical bytes of a streamed document's pieces: the root's and containers' tags, the
/// text between elements, and (on any thread) each child element.
pub struct Canonicalizer {
    method: C14nMethod,
    algorithm: &'static ring::digest::Algorithm,
    /// Declarations rendered by the open containers, innermost last, and where each
    /// container's own start.
    rendered: Vec<(String, String)>,
    marks: Vec<usize>,
    context: Arc<PieceContext>,
}

/// What a child element's canonical form depends on besides itself.
pub struct PieceContext {
    method: C14nMethod,
    rendered: Vec<(String, String)>,
}

impl PieceContext {
    /// The canonical form of `element`, a child of the container this context was taken in.
    pub fn canonicalize(&self, element: Node<'_, '_>) -> Vec<u8> {
        let mut out = Vec::new();
        canonicalize_piece(element, &self.method, &self.rendered, &mut out);
        out
    }
}

impl Canonicalizer {
    /// For the digest `signature` names (a root `ds:Signature`, parsed with the root's
    /// namespace declarations in scope); `None` when the signature would be refused before
    /// its digest is compared, so none is needed.
    pub fn for_signature(
        signature: Node<'_, '_>,
        at: &dyn Fn(Node<'_, '_>) -> Position,
    ) -> Option<Self> {
        let (method, algorithm) = reference_digest(signature, at)?;
        let context = Arc::new(PieceContext {
            method: method.clone(),
            rendered: Vec::new(),
        });
        Some(Canonicalizer {
            method,
            algorithm,
            rendered: Vec::new(),
            marks: Vec::new(),
            context,
        })
    }

    /// The start tag of the root or of a container (an element parsed on its own, with its
    /// ancestors' declarations in scope).
    pub fn open(&mut self, element: Node<'_, '_>) -> Vec<u8> {
        let mut out = Vec::new();
        self.marks.push(self.rendered.len());
        canonical_start_tag(element, &self.method, &mut self.rendered, &mut out);
        self.refresh_context();
        out
    }

    /// The end tag of the innermost open container, named as in its start tag.
    pub fn close(&mut self, qname: &str) -> Vec<u8> {
        let mut out = Vec::new();
        canonical_end_tag(qname, &mut out);
        self.rendered.truncate(self.marks.pop().unwrap_or(0));
        self.refresh_context();
        out
    }

    /// Character data between elements, line ends normalized as a parser does.
    pub fn text(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        canonical_text(text, &mut out);
        out
    }

    /// The context for children of the innermost open container.
    pub fn context(&self) -> Arc<PieceContext> {
        Arc::clone(&self.context)
    }

    fn refresh_context(&mut self) {
        if self.context.rendered != self.rendered {
            self.context = Arc::new(PieceContext {
                method: self.method.clone(),
                rendered: self.rendered.clone(),
            });
        }
    }

    pub fn digester(&self) -> Digester {
        Digester {
            method: self.method.clone(),
            algorithm: self.algorithm,
            sink: DigestSink::new(self.algorithm),
        }
    }
}

/// Hashes canonical pieces in document order.
pub struct Digester {
    method: C14nMethod,
    algorithm: &'static ring::digest::Algorithm,
    sink: DigestSink,
}

impl Digester {
    pub fn update(&mut self, canonical: &[u8]) {
        self.sink.update(canonical);
    }

    pub fn finish(self) -> StreamedDigest {
        StreamedDigest {
            method: self.method,
            algorithm: self.algorithm,
            digest: self.sink.finish(),
        }
    }
}

pub struct StreamedDigest {
    method: C14nMethod,
    algorithm: &'static ring::digest::Algorithm,
    digest: ring::digest::Digest,
}

/// What a stream gathered about its root and the root's signature.
pub struct Streamed<'a, 'input, 'f> {
    /// The root's start tag, parsed on its own.
    pub root: Node<'a, 'input>,
    /// The root element's byte range in the document.
    pub root_range: Range<usize>,
    pub root_at: Position,
    /// The root's `ds:Signature`, parsed with the root's declarations in scope.
    pub signature: Node<'a, 'input>,
    /// Positions of nodes of either tree.
    pub at: &'f dyn Fn(Node<'_, '_>) -> Position,
    /// Every other `ds:Signature` in the document, in document order.
    pub nested_signatures: Vec<Position>,
    /// Elements whose `ID`/`Id`/`id` is one of the root's: (value, position), in order.
    pub id_carriers: Vec<(String, Position)>,
    /// `None` when the signature names no digest the stream could compute.
    pub digest: Option<&'f StreamedDigest>,
}

struct FromStream<'s, 'a, 'input, 'f> {
    streamed: &'s Streamed<'a, 'input, 'f>,
    /// Set when asked for a digest the stream did not compute.
    missed: Cell<bool>,
}

impl Referent for FromStream<'_, '_, '_, '_> {
    fn id_carriers(&self, id: &str) -> Vec<Position> {
        self.streamed
            .id_carriers
            .iter()
            .filter(|(value, _)| value == id)
            .map(|(_, at)| *at)
            .collect()
    }

    fn digest(
        &self,
        _whole_document: bool,
        method: &C14nMethod,
        algorithm: &'static ring::digest::Algorithm,
    ) -> ring::digest::Digest {
        // The whole document's canonical form is the root's: the stream gives up on a
        // document with processing instructions outside the root, and comments never count.
        match self.streamed.digest {
            Some(computed)
                if computed.method == *method && std::ptr::eq(computed.algorithm, algorithm) =>
            {
                computed.digest
            }
            _ => {
                self.missed.set(true);
                ring::digest::digest(algorithm, b"")
            }
        }
    }
}

/// [`super::verify_document`]'s report for a streamed aggregate whose root carries exactly
/// one signature; `None` if the stream did not gather what the checks need (the caller then
/// reads the document as one tree).
pub fn verify_streamed(streamed: &Streamed<'_, '_, '_>, policy: Policy) -> Option<SignatureReport> {
    let at = streamed.at;
    let mut report = SignatureReport {
        verdict: Verdict::Unsigned,
        signature: None,
        signed_element: None,
        nested_signatures: streamed.nested_signatures.clone(),
        freshness: freshness(streamed.root),
    };
    let target = FromStream {
        streamed,
        missed: Cell::new(false),
    };
    let mut details = SignatureDetails::empty(at(streamed.signature));
    let outcome = examine(
        streamed.signature,
        streamed.root,
        &target,
        at,
        &mut details,
        policy,
        true,
    );
    if target.missed.get() {
        return None;
    }
    report.signature = Some(details);
    match outcome {
        Ok(id) => {
            report.verdict = Verdict::Valid;
            report.signed_element = Some(SignedElement {
                range: streamed.root_range.clone(),
                at: streamed.root_at,
                local_name: streamed.root.tag_name().name().to_string(),
                id,
            });
        }
        Err(refusal) => report.verdict = Verdict::Refused(refusal),
    }
    Some(report)
}
