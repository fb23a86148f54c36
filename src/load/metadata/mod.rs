//! Issuer metadata: WS-Federation / SAML 2.0 documents (single entities and aggregates) and
//! OIDC JWKS / OpenID configuration documents, read into [`PublishedKey`]s.
//!
//! - `decode`: a document's encoding, found as XML 1.0 says, and strict decoding
//! - `xml`: SAML / WS-Federation documents: root, signature (verified by
//!   [`crate::load::signature`] on the same tree), KeyDescriptors
//! - `chain`: an X509Data that carries a key's issuing chain beside it
//! - `jwks`: JWKS documents, and the `jwks_uri` an OpenID configuration names
//! - `position`: byte offsets to line and column, fast on 60 MB one-line documents
//! - `stream`: aggregates read entity by entity on every core, never as one tree

mod chain;
mod decode;
mod jwks;
mod position;
mod stream;
mod xml;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::load::fetch::{FetchError, Fetcher};
use crate::model::cert::{CertError, Certificate};
use crate::model::thumbprint::Thumbprint;

pub use decode::{Decoded, decode};
pub use position::{LineIndex, line_column};
pub use stream::Fallback;
#[doc(hidden)]
pub use stream::unjoined_hashing_threads;
pub(crate) use xml::{is_ds, is_md};
pub use xml::{xml_error_detail, xml_error_position, xml_options};

pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{source_name}: {detail}")]
    Read { source_name: String, detail: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{source_name}:{line}:{column}: {detail}")]
    Malformed {
        source_name: String,
        line: u32,
        column: u32,
        detail: String,
    },
    /// Something a signer would never write, placed where the signature does not cover it.
    #[error("{source_name}:{line}:{column}: {detail}")]
    Tampered {
        source_name: String,
        line: u32,
        column: u32,
        detail: String,
    },
    #[error("{source_name}:{line}:{column}: certificate {what}: {error}")]
    Certificate {
        source_name: String,
        line: u32,
        column: u32,
        what: String,
        error: CertError,
    },
    #[error("{source_name}: {what}: {detail}")]
    Key {
        source_name: String,
        what: String,
        detail: String,
    },
    #[error("{source_name}: the document lists no certificates")]
    NoCertificates { source_name: String },
    #[error(
        "{source_name}: neither XML metadata nor a JSON (JWKS / OpenID configuration) document"
    )]
    UnknownFormat { source_name: String },
}

/// What kind of document a source turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentKind {
    SamlMetadata,
    Jwks,
    OpenidConfiguration,
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocumentKind::SamlMetadata => "WS-Federation/SAML metadata",
            DocumentKind::Jwks => "JWKS",
            DocumentKind::OpenidConfiguration => "OpenID configuration + JWKS",
        })
    }
}

pub use crate::model::source::KeyUse;

/// A certificate as one metadata document publishes it for one entity. The same certificate
/// listed under several roles of the same entity is one key that lists every role.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedKey {
    pub entity_id: Option<String>,
    pub roles: Vec<String>,
    pub uses: BTreeSet<KeyUse>,
    pub kid: Option<String>,
    /// Where it was first seen: `line L, column C` or `keys[i]`.
    pub location: String,
    #[serde(skip)]
    pub certificate: Arc<Certificate>,
    /// The tightest `validUntil` / `cacheDuration` over the elements that hold it.
    #[serde(skip)]
    pub bounds: crate::load::signature::Bounds,
}

impl PublishedKey {
    /// A key as first seen: one role (none when `role` is empty), one use, the certificate
    /// without its DER (keys are compared and shown by their fields and thumbprints).
    pub fn new(
        entity_id: Option<String>,
        role: String,
        key_use: KeyUse,
        kid: Option<String>,
        location: String,
        certificate: Certificate,
    ) -> Self {
        PublishedKey {
            entity_id,
            roles: if role.is_empty() {
                Vec::new()
            } else {
                vec![role]
            },
            uses: BTreeSet::from([key_use]),
            kid,
            location,
            certificate: Arc::new(certificate.without_der()),
            bounds: crate::load::signature::Bounds::default(),
        }
    }

    pub fn thumbprint(&self) -> Thumbprint {
        self.certificate.sha1
    }

    pub fn is_signing(&self) -> bool {
        self.uses.iter().any(|u| u.covers_signing())
    }
}

/// An enveloped `ds:Signature` on the document (found, not verified).
#[derive(Debug, Clone, Serialize)]
pub struct SignatureInfo {
    pub reference_uri: Option<String>,
    pub signer_sha1: Option<Thumbprint>,
    pub verified: bool,
}

#[derive(Debug, Clone)]
pub struct MetadataDocument {
    pub source: String,
    pub kind: DocumentKind,
    pub bytes: usize,
    /// The encoding the document was read in (`UTF-8`, `UTF-16LE`, `ISO-8859-2`, ...), as its
    /// byte-order mark or XML declaration named it.
    pub encoding: &'static str,
    pub sha256: String,
    pub fetched_at: OffsetDateTime,
    pub keys: Vec<PublishedKey>,
    pub signature: Option<SignatureInfo>,
    /// The signature as verified (SAML documents that carry one).
    pub signature_report: Option<crate::load::signature::SignatureReport>,
    /// Valid only under the legacy policy (SHA-1, or a key under 2048 bits).
    pub weak_signature: bool,
    /// The root's `validUntil` and `cacheDuration`, signed or not.
    pub freshness: crate::load::signature::Freshness,
    /// Things skipped that a reader may want to know (a JWK with no `x5c`, say).
    pub notes: Vec<String>,
}

impl MetadataDocument {
    pub fn entity_ids(&self) -> BTreeSet<&str> {
        self.keys
            .iter()
            .filter_map(|k| k.entity_id.as_deref())
            .collect()
    }
}

/// Reads a source: an `https://` (or, when allowed, `http://`) URL, or a local path. A local
/// aggregate is read as a stream, never held whole.
pub async fn load(
    source: &str,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<MetadataDocument, MetadataError> {
    if !is_url(source)
        && let Some(doc) = stream_file(source, now)?
    {
        return Ok(doc);
    }
    let bytes = read_source(source, fetcher).await?;
    let mut doc = if is_url(source) {
        parse(source, &bytes, now)?
    } else {
        // The stream has had its try at this file.
        parse_tree(source, &bytes, now)?
    };
    if doc.kind == DocumentKind::OpenidConfiguration {
        (doc.keys, doc.notes) = jwks::follow_jwks_uri(source, &bytes, fetcher).await?;
    }
    Ok(doc)
}

/// A local aggregate read as a stream; `None` when it is not one the stream reads (the
/// caller reads it whole).
fn stream_file(
    source: &str,
    now: OffsetDateTime,
) -> Result<Option<MetadataDocument>, MetadataError> {
    use std::io::Read as _;
    let read_error = |e: std::io::Error| MetadataError::Read {
        source_name: source.to_string(),
        detail: e.to_string(),
    };
    let mut file = std::fs::File::open(source).map_err(read_error)?;
    let mut prefix = Vec::with_capacity(PREFIX);
    (&mut file)
        .take(PREFIX as u64)
        .read_to_end(&mut prefix)
        .map_err(read_error)?;
    let Some(skip) = stream::streamable(&prefix) else {
        return Ok(None);
    };
    let size = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok());
    match stream::read(source, std::io::Cursor::new(prefix).chain(file), skip, size) {
        Ok(streamed) => streamed_document(source, streamed, now).map(Some),
        Err(_) => Ok(None),
    }
}

/// How much of a document decides whether it can be streamed (the XML declaration's
/// encoding is looked for in as much).
const PREFIX: usize = 1024;

pub use crate::model::source::is_url;

pub(crate) async fn read_source(source: &str, fetcher: &Fetcher) -> Result<Vec<u8>, MetadataError> {
    if is_url(source) {
        Ok(fetcher.get(source).await?.bytes)
    } else {
        std::fs::read(source).map_err(|e| MetadataError::Read {
            source_name: source.to_string(),
            detail: e.to_string(),
        })
    }
}

/// Parses a document already in memory. An OpenID configuration comes back with no keys:
/// [`load`] follows its `jwks_uri`. An aggregate is read as a stream, on every core.
pub fn parse(
    source: &str,
    bytes: &[u8],
    fetched_at: OffsetDateTime,
) -> Result<MetadataDocument, MetadataError> {
    parse_streamed(source, bytes, fetched_at)
        .unwrap_or_else(|_| parse_tree(source, bytes, fetched_at))
}

/// An aggregate as [`stream::read`] gives it, or `Fallback` when the stream leaves the
/// document to the tree reader ([`parse`] then calls it; tests compare the two readers).
#[doc(hidden)]
pub fn parse_streamed(
    source: &str,
    bytes: &[u8],
    fetched_at: OffsetDateTime,
) -> Result<Result<MetadataDocument, MetadataError>, Fallback> {
    let skip = stream::streamable(&bytes[..bytes.len().min(PREFIX)])
        .ok_or(Fallback::Unusual("not UTF-8 XML"))?;
    let streamed = stream::read(source, bytes, skip, Some(bytes.len()))?;
    Ok(streamed_document(source, streamed, fetched_at))
}

fn streamed_document(
    source: &str,
    streamed: stream::StreamedXml,
    fetched_at: OffsetDateTime,
) -> Result<MetadataDocument, MetadataError> {
    let xml = streamed.keys;
    if xml.keys.is_empty() {
        return Err(MetadataError::NoCertificates {
            source_name: source.into(),
        });
    }
    Ok(MetadataDocument {
        source: source.to_string(),
        kind: DocumentKind::SamlMetadata,
        bytes: streamed.bytes,
        encoding: encoding_rs::UTF_8.name(),
        sha256: hex::encode_upper(streamed.sha256),
        fetched_at,
        keys: xml.keys,
        signature: xml.signature,
        signature_report: xml.signature_report,
        weak_signature: xml.weak_signature,
        freshness: xml.freshness,
        notes: xml.notes,
    })
}

/// Parses a document already in memory as one tree: every document that is not an
/// aggregate, and every one the stream leaves to it (see [`stream`]). Public for tests that
/// compare the two readers.
#[doc(hidden)]
pub fn parse_tree(
    source: &str,
    bytes: &[u8],
    fetched_at: OffsetDateTime,
) -> Result<MetadataDocument, MetadataError> {
    let decoded = decode(source, bytes)?;
    let text: &str = &decoded.text;
    let first = text.chars().find(|c| !c.is_whitespace());
    let mut doc = MetadataDocument {
        source: source.to_string(),
        kind: DocumentKind::SamlMetadata,
        bytes: bytes.len(),
        encoding: decoded.encoding.name(),
        sha256: hex::encode_upper(sha2::Sha256::digest(bytes)),
        fetched_at,
        keys: Vec::new(),
        signature: None,
        signature_report: None,
        weak_signature: false,
        freshness: crate::load::signature::Freshness::default(),
        notes: Vec::new(),
    };
    match first {
        Some('<') => {
            let xml = xml::parse_xml(source, text)?;
            doc.keys = xml.keys;
            doc.signature = xml.signature;
            doc.signature_report = xml.signature_report;
            doc.weak_signature = xml.weak_signature;
            doc.freshness = xml.freshness;
            doc.notes = xml.notes;
        }
        Some('{') => {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| json_error(source, &e))?;
            if value.get("keys").is_some() {
                doc.kind = DocumentKind::Jwks;
                let (keys, notes) = jwks::parse_jwks(source, text.as_bytes(), None)?;
                doc.keys = keys;
                doc.notes = notes;
            } else if value.get("jwks_uri").and_then(|v| v.as_str()).is_some() {
                doc.kind = DocumentKind::OpenidConfiguration;
                return Ok(doc);
            } else {
                return Err(MetadataError::Malformed {
                    source_name: source.into(),
                    line: 1,
                    column: 1,
                    detail: "JSON document has neither \"keys\" (JWKS) nor \"jwks_uri\" (OpenID configuration)".into(),
                });
            }
        }
        _ => {
            return Err(MetadataError::UnknownFormat {
                source_name: source.into(),
            });
        }
    }
    if doc.keys.is_empty() {
        return Err(MetadataError::NoCertificates {
            source_name: source.into(),
        });
    }
    Ok(doc)
}

fn json_error(source: &str, e: &serde_json::Error) -> MetadataError {
    MetadataError::Malformed {
        source_name: source.into(),
        line: e.line() as u32,
        column: e.column() as u32,
        detail: format!("invalid JSON: {e}"),
    }
}

/// Keys in document order, one per (entity, certificate) pair, with an index so that a
/// 40,000-certificate aggregate is not merged in quadratic time. The index is by thumbprint
/// (a SHA-1 is hash enough: no second hash over it and the entity's name), each entry
/// listing the keys of that certificate.
#[derive(Default)]
struct KeyCollector {
    keys: Vec<PublishedKey>,
    index: HashMap<Thumbprint, Listed, std::hash::BuildHasherDefault<ThumbprintHasher>>,
}

/// Hashes a thumbprint by its first eight bytes: they are already uniformly distributed.
#[derive(Default)]
struct ThumbprintHasher(u64);

impl std::hash::Hasher for ThumbprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

impl KeyCollector {
    /// Room for the keys a document of `bytes` can hold at most (an `X509Certificate`
    /// element takes well over 256 bytes), up to 256 Ki keys (32 MiB of address space, so a
    /// huge document cannot ask for more than a system that does not overcommit will give):
    /// the list is not copied to grow while a stream merges. Untouched capacity costs address
    /// space, not memory; the index grows as usual (a hash table's room is written when made).
    fn for_document(bytes: usize) -> Self {
        KeyCollector {
            keys: Vec::with_capacity((bytes / 256).min(256 * 1024)),
            index: HashMap::default(),
        }
    }

    /// Adds a key, or merges its role and use into the key already listed for the same
    /// certificate and entity. Constant time whatever the sharing: a certificate that
    /// thousands of entities list (one certificate for a hosted service's tenants) keeps
    /// its keys by entity.
    fn add(&mut self, key: PublishedKey) {
        use std::collections::hash_map::Entry;
        let next = self.keys.len();
        match self.index.entry(key.certificate.sha1) {
            Entry::Vacant(slot) => {
                slot.insert(Listed::One(next));
            }
            Entry::Occupied(mut slot) => {
                let listed = slot.get_mut();
                if let Some(i) = listed.find(&self.keys, key.entity_id.as_deref()) {
                    let existing = &mut self.keys[i];
                    for role in key.roles {
                        if !existing.roles.contains(&role) {
                            existing.roles.push(role);
                        }
                    }
                    existing.uses.extend(key.uses);
                    existing.bounds.tighten(&key.bounds);
                    return;
                }
                listed.push(&self.keys, next, key.entity_id.clone());
            }
        }
        self.keys.push(key);
    }
}

/// The keys listed for one certificate: almost always one (no allocation for it); a few
/// searched in order; past [`Listed::FEW`], indexed by entity. The rare cases are boxed:
/// the index holds one of these per certificate (40,000 in an aggregate), and a smaller
/// entry halves the memory its growth writes.
#[allow(clippy::box_collection)]
enum Listed {
    One(usize),
    Few(Box<Vec<usize>>),
    Many(Box<HashMap<Option<String>, usize>>),
}

impl Listed {
    const FEW: usize = 8;

    /// The key of `entity` for this certificate, if listed.
    fn find(&self, keys: &[PublishedKey], entity: Option<&str>) -> Option<usize> {
        match self {
            Listed::One(i) => (keys[*i].entity_id.as_deref() == entity).then_some(*i),
            Listed::Few(all) => all
                .iter()
                .copied()
                .find(|&i| keys[i].entity_id.as_deref() == entity),
            Listed::Many(by_entity) => by_entity.get(&entity.map(str::to_string)).copied(),
        }
    }

    /// Lists key `i` (of `entity`, not yet listed) for this certificate.
    fn push(&mut self, keys: &[PublishedKey], i: usize, entity: Option<String>) {
        match self {
            Listed::One(first) => *self = Listed::Few(Box::new(vec![*first, i])),
            Listed::Few(all) if all.len() < Self::FEW => all.push(i),
            Listed::Few(all) => {
                let mut by_entity: HashMap<Option<String>, usize> = all
                    .iter()
                    .map(|&k| (keys[k].entity_id.clone(), k))
                    .collect();
                by_entity.insert(entity, i);
                *self = Listed::Many(Box::new(by_entity));
            }
            Listed::Many(by_entity) => {
                by_entity.insert(entity, i);
            }
        }
    }
}
