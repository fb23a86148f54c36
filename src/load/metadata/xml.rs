//! Reading SAML 2.0 / WS-Federation metadata: the parsed tree's root is checked, its
//! enveloped signature found and verified (crate::load::signature), and every `KeyDescriptor`'s
//! certificates read into keys.

use std::borrow::Cow;
use std::collections::BTreeSet;

use roxmltree::Node;

use super::chain::{Chain, chain_note, split_chain};
use super::position::{Locator, line_column};
use super::{
    KeyCollector, KeyUse, MetadataError, NS_DS, NS_MD, NS_XSI, PublishedKey, SignatureInfo,
};
use crate::load::signature::{
    Bounds, Freshness, Policy, Refusal, SignatureReport, Verdict, freshness, verify_document,
};
use crate::model::cert::Certificate;
use crate::model::thumbprint::Thumbprint;

/// roxmltree refuses DTDs (and so every entity declaration) unless told otherwise.
pub fn xml_options<'input>() -> roxmltree::ParsingOptions<'input> {
    roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    }
}

/// roxmltree reports some errors without a position (1:1): a DTD, found here by its
/// `<!DOCTYPE`, and a document that stops before its root element closes, reported where
/// the text ends (a truncated download or copy).
pub fn xml_error_position(text: &str, e: &roxmltree::Error) -> (u32, u32) {
    match e {
        roxmltree::Error::DtdDetected => text
            .find("<!DOCTYPE")
            .map_or((1, 1), |offset| line_column(&text.as_bytes()[..offset])),
        roxmltree::Error::UnexpectedEndOfStream
        | roxmltree::Error::UnclosedRootNode
        | roxmltree::Error::NoRootNode => line_column(text.as_bytes()),
        other => (other.pos().row, other.pos().col),
    }
}

pub fn xml_error_detail(e: &roxmltree::Error) -> String {
    match e {
        roxmltree::Error::DtdDetected => {
            "the document has a DTD (<!DOCTYPE>); keyroll refuses DTDs and entity declarations"
                .to_string()
        }
        roxmltree::Error::UnexpectedEndOfStream | roxmltree::Error::UnclosedRootNode => {
            "malformed XML: the document ends here, before its root element is closed (truncated?)"
                .to_string()
        }
        roxmltree::Error::NoRootNode => {
            "malformed XML: the document ends here without a root element".to_string()
        }
        other => format!("malformed XML: {other}"),
    }
}

fn xml_error(source: &str, text: &str, e: &roxmltree::Error) -> MetadataError {
    let (line, column) = xml_error_position(text, e);
    MetadataError::Malformed {
        source_name: source.into(),
        line,
        column,
        detail: xml_error_detail(e),
    }
}

/// A SAML metadata element; one with no namespace is read as one too. The signature
/// verifier applies this same test, so what it checks and what is read here agree.
pub(crate) fn is_md(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && matches!(node.tag_name().namespace(), Some(NS_MD) | None)
}

pub(crate) fn is_ds(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && node.tag_name().namespace() == Some(NS_DS)
}

pub(super) struct XmlKeys {
    pub(super) keys: Vec<PublishedKey>,
    pub(super) signature: Option<SignatureInfo>,
    pub(super) signature_report: Option<SignatureReport>,
    pub(super) weak_signature: bool,
    pub(super) notes: Vec<String>,
    /// The root's `validUntil` / `cacheDuration`.
    pub(super) freshness: Freshness,
}

/// At most this many namespace declarations in scope on one element (its own and its
/// ancestors'). roxmltree checks each declaration of an element against the element's
/// others and copies the parent's into an element that declares its own, so time grows with
/// the square of their number: 50,000 on one element took 5 s. Real metadata has a few
/// dozen; a document past this is refused, naming the element, rather than read slowly.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 4096;

/// Refuses a document with an element that has more than [`MAX_NAMESPACES_IN_SCOPE`]
/// declarations in scope. One pass, and only when the text holds that many `xmlns` at all
/// (every real document returns at the first check).
pub(super) fn check_namespaces(source: &str, text: &str) -> Result<(), MetadataError> {
    use quick_xml::events::Event;
    if memchr::memmem::find_iter(text.as_bytes(), b"xmlns")
        .nth(MAX_NAMESPACES_IN_SCOPE)
        .is_none()
    {
        return Ok(());
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut in_scope: Vec<usize> = Vec::new();
    loop {
        let at = reader.buffer_position() as usize;
        let (start, open) = match reader.read_event() {
            Ok(Event::Start(start)) => (start, true),
            Ok(Event::Empty(start)) => (start, false),
            Ok(Event::End(_)) => {
                in_scope.pop();
                continue;
            }
            // Malformed text is the parser's to report, at its position.
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => continue,
        };
        let own = start
            .attributes()
            .with_checks(false)
            .filter(|a| {
                a.as_ref()
                    .is_ok_and(|a| a.key.as_ref().starts_with(b"xmlns"))
            })
            .count();
        let count = in_scope.last().copied().unwrap_or(0) + own;
        if count > MAX_NAMESPACES_IN_SCOPE {
            let offset = at + text[at..].find('<').unwrap_or(0);
            let (line, column) = line_column(&text.as_bytes()[..offset]);
            return Err(MetadataError::Malformed {
                source_name: source.to_string(),
                line,
                column,
                detail: format!(
                    "an element with {count} namespace declarations in scope (at most {MAX_NAMESPACES_IN_SCOPE}): refused, no metadata needs so many and reading them takes time that grows with their square"
                ),
            });
        }
        if open {
            in_scope.push(count);
        }
    }
}

pub(super) fn parse_xml(source: &str, text: &str) -> Result<XmlKeys, MetadataError> {
    check_namespaces(source, text)?;
    let doc = roxmltree::Document::parse_with_options(text, xml_options())
        .map_err(|e| xml_error(source, text, &e))?;
    let locator = Locator::whole(text);
    let root = doc.root_element();
    let reader = XmlReader {
        source,
        locator: &locator,
    };
    reader.check_root(root)?;
    let signature = reader.signature_info(root)?;
    // Verified on the very tree the keys are read from (the signed element is the root).
    let report = match signature {
        Some(_) => verify_signature(|policy| Some(verify_document(&doc, policy))),
        None => None,
    };
    let mut found = Vec::new();
    reader.read_keys(root, &mut found)?;
    let mut keys = DescriptorKeys::default();
    keys.merge(found);
    Ok(XmlKeys {
        freshness: freshness(root),
        ..keys.finish(signature, report)
    })
}

/// Strict first; a signature refused only for SHA-1 or a short key is verified again
/// under the legacy policy and marked weak, so the issuer's `allow_sha1` decides.
/// `verify` gives `None` when it cannot check the document (a stream that gathered too
/// little); so does this.
pub(super) fn verify_signature(
    verify: impl Fn(Policy) -> Option<SignatureReport>,
) -> Option<(SignatureReport, bool)> {
    let strict = verify(Policy::STRICT)?;
    Some(match &strict.verdict {
        Verdict::Refused(Refusal::Sha1NotAllowed { .. } | Refusal::WeakKey { .. }) => {
            // Valid only under the legacy policy: weak. Refused there too: the legacy
            // verdict names the real fault (allow_sha1 would not help).
            let legacy = verify(Policy::LEGACY)?;
            let weak = legacy.is_valid();
            (legacy, weak)
        }
        _ => (strict, false),
    })
}

/// What one KeyDescriptor yields, in document order: a note for a chain found beside a key,
/// then the keys. A stream reads entities on several threads and merges these in order.
pub(super) enum Found {
    /// Made where it is found (a stream's worker thread), merged in order.
    Key(PublishedKey),
    Chain {
        seen: (Option<String>, Vec<Thumbprint>, Vec<Thumbprint>),
        note: String,
    },
}

/// What the KeyDescriptors yield: the keys, and a note for each chain found beside a key
/// (once per entity and chain, however many roles list it).
#[derive(Default)]
pub(super) struct DescriptorKeys {
    keys: KeyCollector,
    notes: Vec<String>,
    noted_chains: BTreeSet<(Option<String>, Vec<Thumbprint>, Vec<Thumbprint>)>,
}

impl DescriptorKeys {
    /// Keys of a document of about `bytes` (see [`KeyCollector::for_document`]).
    pub(super) fn for_document(bytes: usize) -> Self {
        DescriptorKeys {
            keys: super::KeyCollector::for_document(bytes),
            ..Default::default()
        }
    }

    pub(super) fn merge(&mut self, found: Vec<Found>) {
        for item in found {
            match item {
                Found::Key(key) => self.keys.add(key),
                Found::Chain { seen, note } => {
                    if self.noted_chains.insert(seen) {
                        self.notes.push(note);
                    }
                }
            }
        }
    }

    /// The keys with the document's signature as found and, when it has one, as verified
    /// (`(report, weak)` from [`verify_signature`]).
    pub(super) fn finish(
        self,
        signature: Option<SignatureInfo>,
        report: Option<(SignatureReport, bool)>,
    ) -> XmlKeys {
        let (signature_report, weak_signature) = match report {
            Some((report, weak)) => (Some(report), weak),
            None => (None, false),
        };
        let signature = signature.map(|mut s| {
            if let Some(report) = &signature_report {
                s.verified = report.is_valid();
                if let Some(signer) = report.signer() {
                    s.signer_sha1 = Some(signer.sha1);
                }
            }
            s
        });
        XmlKeys {
            keys: self.keys.keys,
            signature,
            signature_report,
            weak_signature,
            notes: self.notes,
            freshness: Freshness::default(),
        }
    }
}

/// Reads certificates out of a parsed document (or one piece of a streamed one), with
/// positions for errors.
pub(super) struct XmlReader<'s, 't> {
    pub(super) source: &'s str,
    pub(super) locator: &'s Locator<'t>,
}

/// The text of an `X509Certificate`: one text node (the usual case) is read where it lies;
/// only a certificate split by comments or CDATA is joined into a new string.
fn certificate_text<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    let mut texts = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text());
    let first = texts.next().unwrap_or_default();
    match texts.next() {
        None => Cow::Borrowed(first),
        Some(second) => Cow::Owned([first, second].into_iter().chain(texts).collect()),
    }
}

impl XmlReader<'_, '_> {
    /// A `Malformed` error at `node`'s start.
    fn malformed(&self, node: Node<'_, '_>, detail: String) -> MetadataError {
        let (line, column) = self.locator.position(node.range().start);
        MetadataError::Malformed {
            source_name: self.source.into(),
            line,
            column,
            detail,
        }
    }

    /// Every KeyDescriptor under `node`, in document order. One inside a `ds:Signature` is
    /// refused: the enveloped-signature transform removes the Signature element before the
    /// digest, so nothing in it is signed, and a key placed there would be read as published
    /// under a valid signature. No signer puts one there: the document is refused as
    /// tampered, never read around.
    pub(super) fn read_keys(
        &self,
        node: Node<'_, '_>,
        found: &mut Vec<Found>,
    ) -> Result<(), MetadataError> {
        for key_descriptor in node.descendants().filter(|n| is_md(*n, "KeyDescriptor")) {
            self.refuse_inside_signature(key_descriptor)?;
            self.read_key_descriptor(key_descriptor, found)?;
        }
        Ok(())
    }

    /// A `Tampered` error when `key_descriptor` lies inside a `ds:Signature` (the whole
    /// tree, or the piece a stream cut out: the stream leaves a root signature holding one to
    /// the tree reader, so both give this error).
    pub(super) fn refuse_inside_signature(
        &self,
        key_descriptor: Node<'_, '_>,
    ) -> Result<(), MetadataError> {
        match key_descriptor.ancestors().find(|n| is_ds(*n, "Signature")) {
            None => Ok(()),
            Some(signature) => {
                let (line, column) = self.locator.position(key_descriptor.range().start);
                let (sig_line, sig_column) = self.locator.position(signature.range().start);
                Err(MetadataError::Tampered {
                    source_name: self.source.into(),
                    line,
                    column,
                    detail: format!(
                        "a KeyDescriptor inside the ds:Signature at line {sig_line}, column {sig_column}: nothing inside a signature is covered by it (the enveloped-signature transform removes it), so a key there is not the signer's; the document is refused as tampered"
                    ),
                })
            }
        }
    }

    pub(super) fn check_root(&self, root: Node<'_, '_>) -> Result<(), MetadataError> {
        if is_md(root, "EntityDescriptor") || is_md(root, "EntitiesDescriptor") {
            return Ok(());
        }
        Err(self.malformed(
            root,
            format!(
                "root element is <{}>, not a SAML EntityDescriptor or EntitiesDescriptor",
                root.tag_name().name()
            ),
        ))
    }

    /// The document's `ds:Signature` as found (not verified): its Reference and the leaf
    /// certificate of its KeyInfo.
    pub(super) fn signature_info(
        &self,
        root: Node<'_, '_>,
    ) -> Result<Option<SignatureInfo>, MetadataError> {
        let Some(sig) = root.descendants().find(|n| is_ds(*n, "Signature")) else {
            return Ok(None);
        };
        let reference_uri = sig
            .descendants()
            .find(|n| is_ds(*n, "Reference"))
            .and_then(|r| r.attribute("URI"))
            .map(str::to_string);
        let signer = self
            .certificate_groups(sig, &|| "in ds:Signature/ds:KeyInfo".to_string())?
            .into_iter()
            .next()
            .and_then(|chain| chain.leaves.into_iter().next());
        Ok(Some(SignatureInfo {
            reference_uri,
            signer_sha1: signer.map(|(_, c)| c.sha1),
            verified: false,
        }))
    }

    fn key_use(&self, key_descriptor: Node<'_, '_>) -> Result<KeyUse, MetadataError> {
        match key_descriptor.attribute("use") {
            None => Ok(KeyUse::Unspecified),
            Some("signing") => Ok(KeyUse::Signing),
            Some("encryption") => Ok(KeyUse::Encryption),
            Some(other) => Err(self.malformed(
                key_descriptor,
                format!("KeyDescriptor use=\"{other}\" (expected \"signing\" or \"encryption\")"),
            )),
        }
    }

    /// One `KeyDescriptor`: its leaf certificates become keys of its entity and role; a
    /// chain beside them becomes a note.
    fn read_key_descriptor(
        &self,
        key_descriptor: Node<'_, '_>,
        found: &mut Vec<Found>,
    ) -> Result<(), MetadataError> {
        let role_node = key_descriptor.parent_element();
        let role = role_node.map(role_name).unwrap_or_default();
        let entity_id = key_descriptor
            .ancestors()
            .find(|n| is_md(*n, "EntityDescriptor"))
            .and_then(|e| e.attribute("entityID"))
            .map(str::to_string);
        let key_use = self.key_use(key_descriptor)?;
        let bounds = self.bounds_of(key_descriptor)?;
        // Built only for an error or a note: 40,000 keys need none.
        let what = || {
            format!(
                "of {} in {}",
                entity_id.as_deref().unwrap_or("(no entityID)"),
                role
            )
        };
        for chain in self.certificate_groups(key_descriptor, &what)? {
            if !chain.issuers.is_empty() {
                let leaves: Vec<&Certificate> = chain.leaves.iter().map(|(_, c)| c).collect();
                let seen = (
                    entity_id.clone(),
                    leaves.iter().map(|c| c.sha1).collect::<Vec<_>>(),
                    chain.issuers.iter().map(|c| c.sha1).collect::<Vec<_>>(),
                );
                let (line, column) = self.locator.position(chain.leaves[0].0.range().start);
                let note = chain_note(&what(), line, column, &leaves, &chain.issuers);
                found.push(Found::Chain { seen, note });
            }
            for (cert_node, certificate) in chain.leaves {
                let (line, column) = self.locator.position(cert_node.range().start);
                // Made here, on the thread that decoded the certificate: its DER is dropped
                // and the key allocated where the memory was freed, not on the thread that
                // merges (a stream's bottleneck).
                let mut key = PublishedKey::new(
                    entity_id.clone(),
                    role.clone(),
                    key_use,
                    None,
                    format!("line {line}, column {column}"),
                    certificate,
                );
                key.bounds = bounds.clone();
                found.push(Found::Key(key));
            }
        }
        Ok(())
    }

    /// The tightest `validUntil` / `cacheDuration` over the entity and aggregates that hold
    /// `key_descriptor` (a stream adds those of the aggregates its piece was cut from).
    fn bounds_of(&self, key_descriptor: Node<'_, '_>) -> Result<Bounds, MetadataError> {
        let mut bounds = Bounds::default();
        for holder in key_descriptor
            .ancestors()
            .filter(|n| is_md(*n, "EntityDescriptor") || is_md(*n, "EntitiesDescriptor"))
        {
            let own =
                Bounds::of_element(holder).map_err(|detail| self.malformed(holder, detail))?;
            bounds.tighten(&own);
        }
        Ok(bounds)
    }

    fn cert_at(
        &self,
        node: Node<'_, '_>,
        what: &dyn Fn() -> String,
    ) -> Result<Certificate, MetadataError> {
        // A stream's worker may have cut the base64 out before parsing (see
        // `stream::pieces::cut_certificates`): the element is left empty, its text kept aside.
        let text = match self.locator.cut_text(node.range()) {
            Some(cut) if node.first_child().is_none() => Cow::Borrowed(cut),
            _ => certificate_text(node),
        };
        Certificate::from_base64(&text).map_err(|error| {
            let (line, column) = self.locator.position(node.range().start);
            MetadataError::Certificate {
                source_name: self.source.into(),
                line,
                column,
                what: what(),
                error,
            }
        })
    }

    /// The certificates under `node`, one group per X509Data, each split into keys and chain.
    fn certificate_groups<'a, 'input>(
        &self,
        node: Node<'a, 'input>,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<Chain<'a, 'input>>, MetadataError> {
        let mut groups: Vec<(Node<'a, 'input>, Vec<_>)> = Vec::new();
        for cert_node in node.descendants().filter(|n| is_ds(*n, "X509Certificate")) {
            let certificate = self.cert_at(cert_node, what)?;
            let group = cert_node.parent_element().unwrap_or(cert_node);
            match groups.last_mut() {
                Some((g, members)) if *g == group => members.push((cert_node, certificate)),
                _ => groups.push((group, vec![(cert_node, certificate)])),
            }
        }
        groups
            .into_iter()
            .map(|(group, members)| {
                split_chain(members).ok_or_else(|| {
                    self.malformed(
                        group,
                        format!(
                            "the X509Data {} holds certificates that each issued another: no leaf certificate to take as the key",
                            what()
                        ),
                    )
                })
            })
            .collect()
    }
}

/// `RoleDescriptor xsi:type="fed:SecurityTokenServiceType"` is named by its type.
fn role_name(node: Node<'_, '_>) -> String {
    let local = node.tag_name().name();
    if local == "RoleDescriptor"
        && let Some(xsi_type) = node.attribute((NS_XSI, "type"))
    {
        return xsi_type
            .rsplit_once(':')
            .map_or(xsi_type, |(_, l)| l)
            .to_string();
    }
    local.to_string()
}
