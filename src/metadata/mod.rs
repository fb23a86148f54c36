//! Issuer metadata: WS-Federation / SAML 2.0 documents (single entities and aggregates) and
//! OIDC JWKS / OpenID configuration documents, read into [`PublishedKey`]s.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use sha2::Digest as _;
use time::OffsetDateTime;

use encoding_rs::{DecoderResult, Encoding, UTF_8, UTF_16BE, UTF_16LE};

use crate::cert::{CertError, Certificate};
use crate::fetch::{FetchError, Fetcher};
use crate::thumbprint::Thumbprint;

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
}

impl PublishedKey {
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
    pub signature_report: Option<crate::signature::SignatureReport>,
    /// Valid only under the legacy policy (SHA-1, or a key under 2048 bits).
    pub weak_signature: bool,
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

/// Reads a source: an `https://` (or, when allowed, `http://`) URL, or a local path.
pub async fn load(
    source: &str,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<MetadataDocument, MetadataError> {
    let bytes = read_source(source, fetcher).await?;
    let mut doc = parse(source, &bytes, now)?;
    if doc.kind == DocumentKind::OpenidConfiguration {
        // The configuration names the key set; its issuer names the entity.
        let text = decode(source, &bytes)?.text;
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| json_error(source, &e))?;
        let jwks_uri = config["jwks_uri"].as_str().unwrap_or_default().to_string();
        let issuer = config["issuer"].as_str().map(str::to_string);
        // A second hop named by a remote document is always fetched, never read from disk:
        // https, or plain http only to a loopback host under --allow-http (tests).
        let lower = jwks_uri.to_ascii_lowercase();
        let loopback = reqwest::Url::parse(&jwks_uri).ok().is_some_and(|u| {
            let host = u.host_str().unwrap_or_default();
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        let allowed = lower.starts_with("https://")
            || (lower.starts_with("http://") && loopback && fetcher.options().allow_http);
        if !allowed {
            return Err(MetadataError::Read {
                source_name: source.to_string(),
                detail: format!(
                    "jwks_uri \"{jwks_uri}\" is not an https:// URL; keyroll follows only https (plain http to a loopback host under --allow-http, for tests), never a path"
                ),
            });
        }
        let jwks_bytes = read_source(&jwks_uri, fetcher).await?;
        let jwks = parse_jwks(&jwks_uri, &jwks_bytes, issuer)?;
        doc.keys = jwks.0;
        doc.notes = jwks.1;
        if doc.keys.is_empty() {
            return Err(MetadataError::NoCertificates {
                source_name: jwks_uri,
            });
        }
    }
    Ok(doc)
}

pub fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

async fn read_source(source: &str, fetcher: &Fetcher) -> Result<Vec<u8>, MetadataError> {
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
/// [`load`] follows its `jwks_uri`.
pub fn parse(
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
        notes: Vec::new(),
    };
    match first {
        Some('<') => {
            let xml = parse_xml(source, text)?;
            doc.keys = xml.keys;
            doc.signature = xml.signature;
            doc.signature_report = xml.signature_report;
            doc.weak_signature = xml.weak_signature;
            doc.notes = xml.notes;
        }
        Some('{') => {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| json_error(source, &e))?;
            if value.get("keys").is_some() {
                doc.kind = DocumentKind::Jwks;
                let (keys, notes) = parse_jwks(source, text.as_bytes(), None)?;
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

/// A document's text and the encoding it was read in.
pub struct Decoded<'a> {
    /// Without the byte-order mark. Borrowed when the bytes were UTF-8 already, so a 60 MB
    /// aggregate is not copied.
    pub text: Cow<'a, str>,
    pub encoding: &'static Encoding,
}

/// Decodes a document as XML 1.0 (appendix F) says a reader finds its encoding: a byte-order
/// mark first, then UTF-16 recognised by the bytes of `<?`, then the `encoding` its XML
/// declaration names, else UTF-8. JSON documents take the same path (a BOM, else UTF-8).
///
/// Labels are looked up as browsers do (the WHATWG Encoding Standard, via encoding_rs): so
/// `iso-8859-1` and `us-ascii` read as windows-1252, which differs from ISO-8859-1 only in
/// 0x80–0x9F, C1 control codes no metadata holds as text. Bytes that are not valid in the
/// encoding are an error at their line and column in the decoded text, never replaced.
pub fn decode<'a>(source: &str, bytes: &'a [u8]) -> Result<Decoded<'a>, MetadataError> {
    let read_error = |detail: String| MetadataError::Read {
        source_name: source.into(),
        detail,
    };
    if bytes.starts_with(b"\x00\x00\xFE\xFF") || bytes.starts_with(b"\xFF\xFE\x00\x00") {
        return Err(read_error(
            "UTF-32 documents are not supported; save it as UTF-8".into(),
        ));
    }
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        return decode_strict(source, &bytes[bom_length..], encoding);
    }
    if bytes.starts_with(b"<\x00?\x00") {
        return decode_strict(source, bytes, UTF_16LE);
    }
    if bytes.starts_with(b"\x00<\x00?") {
        return decode_strict(source, bytes, UTF_16BE);
    }
    let Some((label, offset)) = declared_encoding(bytes) else {
        return decode_strict(source, bytes, UTF_8);
    };
    let at_label = |detail: String| {
        let (line, column) = line_column(&bytes[..offset]);
        MetadataError::Malformed {
            source_name: source.into(),
            line,
            column,
            detail,
        }
    };
    let Some(encoding) = Encoding::for_label_no_replacement(label) else {
        return Err(at_label(format!(
            "the XML declaration names encoding \"{}\", which keyroll cannot decode",
            String::from_utf8_lossy(label)
        )));
    };
    if encoding == UTF_16LE || encoding == UTF_16BE {
        return Err(at_label(format!(
            "the XML declaration names encoding \"{}\", but the document has no byte-order mark and is stored in single bytes",
            String::from_utf8_lossy(label)
        )));
    }
    decode_strict(source, bytes, encoding)
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start, and its byte
/// offset. The declaration is ASCII in every encoding this reads without a BOM.
fn declared_encoding(bytes: &[u8]) -> Option<(&[u8], usize)> {
    if !bytes.starts_with(b"<?xml") {
        return None;
    }
    let window = &bytes[..bytes.len().min(1024)];
    let end = window.windows(2).position(|w| w == b"?>")?;
    let declaration = &window[..end];
    let key = declaration.windows(8).position(|w| w == b"encoding")?;
    let mut i = key + "encoding".len();
    let skip_space = |i: &mut usize| {
        while declaration.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
            *i += 1;
        }
    };
    skip_space(&mut i);
    if declaration.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    skip_space(&mut i);
    let quote = *declaration.get(i).filter(|q| matches!(q, b'"' | b'\''))?;
    let start = i + 1;
    let length = declaration[start..].iter().position(|&b| b == quote)?;
    Some((&declaration[start..start + length], start))
}

fn decode_strict<'a>(
    source: &str,
    body: &'a [u8],
    encoding: &'static Encoding,
) -> Result<Decoded<'a>, MetadataError> {
    if encoding == UTF_8 {
        return Ok(Decoded {
            text: Cow::Borrowed(utf8(source, body)?),
            encoding,
        });
    }
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(body.len())
        .ok_or_else(|| MetadataError::Read {
            source_name: source.into(),
            detail: "document too large to decode".into(),
        })?;
    let mut text = String::with_capacity(capacity);
    let (result, _read) = decoder.decode_to_string_without_replacement(body, &mut text, true);
    match result {
        DecoderResult::InputEmpty => Ok(Decoded {
            text: Cow::Owned(text),
            encoding,
        }),
        DecoderResult::Malformed(bad, _) => {
            // The text decoded so far ends where the bad bytes start.
            let (line, column) = line_column(text.as_bytes());
            Err(MetadataError::Malformed {
                source_name: source.into(),
                line,
                column,
                detail: format!(
                    "{} byte{} not valid {}",
                    bad,
                    if bad == 1 { " is" } else { "s are" },
                    encoding.name()
                ),
            })
        }
        DecoderResult::OutputFull => Err(MetadataError::Read {
            source_name: source.into(),
            detail: format!("could not decode the {} text", encoding.name()),
        }),
    }
}

fn utf8<'a>(source: &str, body: &'a [u8]) -> Result<&'a str, MetadataError> {
    std::str::from_utf8(body).map_err(|e| {
        let offset = e.valid_up_to();
        let (line, column) = line_column(&body[..offset]);
        MetadataError::Malformed {
            source_name: source.into(),
            line,
            column,
            detail: "not valid UTF-8".into(),
        }
    })
}

/// Line starts of a text, so that many positions can be turned into line and column without
/// rescanning from the start each time (roxmltree's `text_pos_at` does, which made reading a
/// 60 MB aggregate quadratic).
///
/// Columns count characters, so a line index alone is not enough: AD FS writes its whole
/// document on one line, and counting the characters from the line start for each of 20,000
/// KeyDescriptors was quadratic again. The index also keeps the number of characters before
/// every `BLOCK`-byte checkpoint; a column is then counted from the nearest checkpoint.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
    chars_before_block: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    const BLOCK: usize = 4096;

    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1));
        let mut chars_before_block = Vec::with_capacity(bytes.len() / Self::BLOCK + 2);
        let mut chars = 0;
        for block in bytes.chunks(Self::BLOCK) {
            chars_before_block.push(chars);
            // ASCII (checked word by word) is one character per byte.
            chars += if block.is_ascii() {
                block.len()
            } else {
                count_chars(block)
            };
        }
        chars_before_block.push(chars);
        LineIndex {
            text,
            starts,
            chars_before_block,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self.chars_before(offset) - self.chars_before(start);
        (line as u32, column as u32 + 1)
    }

    /// Characters that start before a byte offset.
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / Self::BLOCK;
        self.chars_before_block[block]
            + count_chars(&self.text.as_bytes()[block * Self::BLOCK..offset])
    }
}

/// UTF-8 characters in a byte slice: every byte that is not a continuation byte starts one.
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

pub fn line_column(prefix: &[u8]) -> (u32, u32) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&prefix[line_start..])
        .chars()
        .count()
        + 1;
    (line as u32, column as u32)
}

fn json_error(source: &str, e: &serde_json::Error) -> MetadataError {
    MetadataError::Malformed {
        source_name: source.into(),
        line: e.line() as u32,
        column: e.column() as u32,
        detail: format!("invalid JSON: {e}"),
    }
}

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

fn is_md(node: &roxmltree::Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && matches!(node.tag_name().namespace(), Some(NS_MD) | None)
}

fn is_ds(node: &roxmltree::Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && node.tag_name().namespace() == Some(NS_DS)
}

struct XmlKeys {
    keys: Vec<PublishedKey>,
    signature: Option<SignatureInfo>,
    signature_report: Option<crate::signature::SignatureReport>,
    weak_signature: bool,
    notes: Vec<String>,
}

fn parse_xml(source: &str, text: &str) -> Result<XmlKeys, MetadataError> {
    let doc = roxmltree::Document::parse_with_options(text, xml_options())
        .map_err(|e| xml_error(source, text, &e))?;
    let lines = LineIndex::new(text);
    let root = doc.root_element();
    if !is_md(&root, "EntityDescriptor") && !is_md(&root, "EntitiesDescriptor") {
        let (line, column) = lines.position(root.range().start);
        return Err(MetadataError::Malformed {
            source_name: source.into(),
            line,
            column,
            detail: format!(
                "root element is <{}>, not a SAML EntityDescriptor or EntitiesDescriptor",
                root.tag_name().name()
            ),
        });
    }

    let reader = XmlReader {
        source,
        lines: &lines,
    };
    let signature = match root.descendants().find(|n| is_ds(n, "Signature")) {
        None => None,
        Some(sig) => {
            let reference_uri = sig
                .descendants()
                .find(|n| is_ds(n, "Reference"))
                .and_then(|r| r.attribute("URI"))
                .map(str::to_string);
            let signer = reader
                .certificate_groups(sig, &|| "in ds:Signature/ds:KeyInfo".to_string())?
                .into_iter()
                .next()
                .and_then(|chain| chain.leaves.into_iter().next());
            Some(SignatureInfo {
                reference_uri,
                signer_sha1: signer.map(|(_, c)| c.sha1),
                verified: false,
            })
        }
    };
    // Verified on the very tree the keys are read from (the signed element is the root).
    // Strict first; a signature refused only for SHA-1 or a short key is verified again
    // under the legacy policy and marked weak, so the issuer's `allow_sha1` decides.
    let (signature_report, weak_signature) = if signature.is_some() {
        use crate::signature::{Policy, Refusal, Verdict, verify_document};
        let strict = verify_document(&doc, Policy::STRICT);
        match &strict.verdict {
            Verdict::Refused(Refusal::Sha1NotAllowed { .. } | Refusal::WeakKey { .. }) => {
                let legacy = verify_document(&doc, Policy::LEGACY);
                let weak = legacy.is_valid();
                (Some(if weak { legacy } else { strict }), weak)
            }
            _ => (Some(strict), false),
        }
    } else {
        (None, false)
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

    let mut keys = KeyCollector::default();
    let mut notes = Vec::new();
    let mut noted_chains = BTreeSet::new();
    for key_descriptor in root.descendants().filter(|n| is_md(n, "KeyDescriptor")) {
        let role_node = key_descriptor.parent_element();
        let role = role_node.map(role_name).unwrap_or_default();
        let entity_id = key_descriptor
            .ancestors()
            .find(|n| is_md(n, "EntityDescriptor"))
            .and_then(|e| e.attribute("entityID"))
            .map(str::to_string);
        let key_use = match key_descriptor.attribute("use") {
            None => KeyUse::Unspecified,
            Some("signing") => KeyUse::Signing,
            Some("encryption") => KeyUse::Encryption,
            Some(other) => {
                let (line, column) = lines.position(key_descriptor.range().start);
                return Err(MetadataError::Malformed {
                    source_name: source.into(),
                    line,
                    column,
                    detail: format!(
                        "KeyDescriptor use=\"{other}\" (expected \"signing\" or \"encryption\")"
                    ),
                });
            }
        };
        // Built only for an error or a note: 40,000 keys need none.
        let what = || {
            format!(
                "of {} in {}",
                entity_id.as_deref().unwrap_or("(no entityID)"),
                role
            )
        };
        for chain in reader.certificate_groups(key_descriptor, &what)? {
            if !chain.issuers.is_empty() {
                let leaves: Vec<&Certificate> = chain.leaves.iter().map(|(_, c)| c).collect();
                let seen = (
                    entity_id.clone(),
                    leaves.iter().map(|c| c.sha1).collect::<Vec<_>>(),
                    chain.issuers.iter().map(|c| c.sha1).collect::<Vec<_>>(),
                );
                if noted_chains.insert(seen) {
                    let (line, column) = lines.position(chain.leaves[0].0.range().start);
                    notes.push(chain_note(&what(), line, column, &leaves, &chain.issuers));
                }
            }
            for (cert_node, certificate) in chain.leaves {
                let (line, column) = lines.position(cert_node.range().start);
                keys.add(
                    entity_id.clone(),
                    &role,
                    key_use,
                    None,
                    format!("line {line}, column {column}"),
                    certificate,
                );
            }
        }
    }
    Ok(XmlKeys {
        keys: keys.keys,
        signature,
        signature_report,
        weak_signature,
        notes,
    })
}

/// Reads certificates out of a parsed document, with positions for errors.
struct XmlReader<'s, 't> {
    source: &'s str,
    lines: &'s LineIndex<'t>,
}

/// The text of an `X509Certificate`: one text node (the usual case) is read where it lies;
/// only a certificate split by comments or CDATA is joined into a new string.
fn certificate_text<'a>(node: roxmltree::Node<'a, '_>) -> Cow<'a, str> {
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
    fn cert_at(
        &self,
        node: roxmltree::Node<'_, '_>,
        what: &dyn Fn() -> String,
    ) -> Result<Certificate, MetadataError> {
        Certificate::from_base64(&certificate_text(node)).map_err(|error| {
            let (line, column) = self.lines.position(node.range().start);
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
        node: roxmltree::Node<'a, 'input>,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<Chain<'a, 'input>>, MetadataError> {
        let mut groups: Vec<(roxmltree::Node<'a, 'input>, Vec<_>)> = Vec::new();
        for cert_node in node.descendants().filter(|n| is_ds(n, "X509Certificate")) {
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
                    let (line, column) = self.lines.position(group.range().start);
                    MetadataError::Malformed {
                        source_name: self.source.into(),
                        line,
                        column,
                        detail: format!(
                            "the X509Data {} holds certificates that each issued another: no leaf certificate to take as the key",
                            what()
                        ),
                    }
                })
            })
            .collect()
    }
}

/// The certificates of one `X509Data`: XML-DSig allows a key's certificate together with the
/// chain that issued it. Only the leaves are keys.
struct Chain<'a, 'input> {
    /// Certificates no other certificate of the same X509Data names as its issuer, in
    /// document order.
    leaves: Vec<(roxmltree::Node<'a, 'input>, Certificate)>,
    /// The others: CA certificates that issued one of the leaves (or another CA). Never keys.
    issuers: Vec<Certificate>,
}

/// Splits an X509Data's certificates into leaves and issuers; `None` when every certificate
/// issued another (a cycle), so that no key can be named.
fn split_chain<'a, 'input>(
    members: Vec<(roxmltree::Node<'a, 'input>, Certificate)>,
) -> Option<Chain<'a, 'input>> {
    // The same certificate twice is one certificate (a self-signed one would otherwise
    // "issue" its copy and stop being a leaf).
    let mut seen = BTreeSet::new();
    let members: Vec<_> = members
        .into_iter()
        .filter(|(_, c)| seen.insert(c.sha1))
        .collect();
    if members.len() == 1 {
        return Some(Chain {
            leaves: members,
            issuers: Vec::new(),
        });
    }
    let issuer_names: HashMap<&str, usize> =
        members.iter().fold(HashMap::new(), |mut names, (_, c)| {
            *names.entry(c.issuer.as_str()).or_default() += 1;
            names
        });
    let issued_another: Vec<bool> = members
        .iter()
        .map(|(_, c)| {
            // Its own issuer name (self-signed) does not count: another certificate must
            // name it.
            let own = usize::from(c.issuer == c.subject);
            issuer_names.get(c.subject.as_str()).copied().unwrap_or(0) > own
        })
        .collect();
    let mut leaves = Vec::new();
    let mut issuers = Vec::new();
    for (member, issued) in members.into_iter().zip(issued_another) {
        if issued {
            issuers.push(member.1);
        } else {
            leaves.push(member);
        }
    }
    if leaves.is_empty() {
        return None;
    }
    Some(Chain { leaves, issuers })
}

fn chain_note(
    what: &str,
    line: u32,
    column: u32,
    leaves: &[&Certificate],
    issuers: &[Certificate],
) -> String {
    let describe = |c: &Certificate| format!("{} ({})", c.sha1, c.subject);
    format!(
        "line {line}, column {column}: the X509Data {what} holds {} certificates; the key is the leaf {}; not counted as a key, as it issued another certificate there: {}",
        leaves.len() + issuers.len(),
        leaves
            .iter()
            .map(|c| describe(c))
            .collect::<Vec<_>>()
            .join(", "),
        issuers.iter().map(describe).collect::<Vec<_>>().join(", ")
    )
}

/// `RoleDescriptor xsi:type="fed:SecurityTokenServiceType"` is named by its type.
fn role_name(node: roxmltree::Node<'_, '_>) -> String {
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

/// Keys in document order, one per (entity, certificate) pair, with an index so that a
/// 40,000-certificate aggregate is not merged in quadratic time.
#[derive(Default)]
struct KeyCollector {
    keys: Vec<PublishedKey>,
    index: HashMap<(Option<String>, Thumbprint), usize>,
}

impl KeyCollector {
    fn add(
        &mut self,
        entity_id: Option<String>,
        role: &str,
        key_use: KeyUse,
        kid: Option<String>,
        location: String,
        certificate: Certificate,
    ) {
        let slot = (entity_id, certificate.sha1);
        if let Some(&i) = self.index.get(&slot) {
            let existing = &mut self.keys[i];
            if !role.is_empty() && !existing.roles.iter().any(|r| r == role) {
                existing.roles.push(role.to_string());
            }
            existing.uses.insert(key_use);
            return;
        }
        self.keys.push(PublishedKey {
            entity_id: slot.0.clone(),
            roles: if role.is_empty() {
                Vec::new()
            } else {
                vec![role.to_string()]
            },
            uses: BTreeSet::from([key_use]),
            kid,
            location,
            certificate: Arc::new(certificate),
        });
        self.index.insert(slot, self.keys.len() - 1);
    }
}

type JwksKeys = (Vec<PublishedKey>, Vec<String>);

fn parse_jwks(
    source: &str,
    body: &[u8],
    issuer: Option<String>,
) -> Result<JwksKeys, MetadataError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| json_error(source, &e))?;
    let Some(array) = value.get("keys").and_then(|k| k.as_array()) else {
        return Err(MetadataError::Key {
            source_name: source.into(),
            what: "keys".into(),
            detail: "missing or not an array".into(),
        });
    };
    let mut keys = KeyCollector::default();
    let mut notes = Vec::new();
    for (index, jwk) in array.iter().enumerate() {
        let kid = jwk.get("kid").and_then(|v| v.as_str()).map(str::to_string);
        let what = format!(
            "keys[{index}]{}",
            kid.as_deref()
                .map(|k| format!(" (kid {k})"))
                .unwrap_or_default()
        );
        let key_error = |detail: String| MetadataError::Key {
            source_name: source.into(),
            what: what.clone(),
            detail,
        };
        let key_use = match jwk.get("use").and_then(|v| v.as_str()) {
            None => KeyUse::Unspecified,
            Some("sig") => KeyUse::Signing,
            Some("enc") => KeyUse::Encryption,
            Some(other) => return Err(key_error(format!("unknown use \"{other}\""))),
        };
        let Some(x5c) = jwk.get("x5c").and_then(|v| v.as_array()) else {
            notes.push(format!("{what}: no x5c certificate; skipped"));
            continue;
        };
        // The first x5c entry is the key's own certificate; the rest is its chain.
        let Some(leaf) = x5c.first().and_then(|v| v.as_str()) else {
            return Err(key_error("x5c is empty or not a string array".into()));
        };
        let certificate = Certificate::from_base64(leaf)
            .map_err(|e| key_error(format!("x5c[0] certificate: {e}")))?;
        if let Some(x5t) = jwk.get("x5t").and_then(|v| v.as_str()) {
            match Thumbprint::from_x5t(x5t) {
                Some(t) if t == certificate.sha1 => {}
                _ => {
                    return Err(key_error(format!(
                        "x5t {x5t} does not match the certificate's SHA-1 {} (x5t {})",
                        certificate.sha1,
                        certificate.sha1.to_x5t()
                    )));
                }
            }
        }
        keys.add(
            issuer.clone(),
            "",
            key_use,
            kid,
            format!("keys[{index}]"),
            certificate,
        );
    }
    Ok((keys.keys, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset of a text with multi-byte characters across checkpoints: the index agrees
    /// with counting from the start.
    #[test]
    fn line_index_agrees_with_a_rescan() {
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(["a", "ä", "東", "😀", "\n", "x\r\n"][i % 6]);
            if i % 7 == 0 {
                text.push_str(&"b".repeat(i % 1500));
            }
        }
        let index = LineIndex::new(&text);
        // Walk the text once, counting as a person reading it would.
        let (mut line, mut column) = (1, 1);
        for (n, (offset, ch)) in text.char_indices().enumerate() {
            // Every 5th character: each look-up counts up to a checkpoint's width.
            if n % 5 == 0 {
                assert_eq!(index.position(offset), (line, column), "offset {offset}");
            }
            if ch == '\n' {
                (line, column) = (line + 1, 1);
            } else {
                column += 1;
            }
        }
        assert_eq!(index.position(text.len()), (line, column));
        assert_eq!(line_column(text.as_bytes()), (line, column));
    }

    /// One line of 16 MB, as AD FS writes its documents, and 20,000 positions on it: counting
    /// each column from the line start took minutes; from the nearest checkpoint, milliseconds.
    #[test]
    fn positions_on_one_long_line_are_not_rescanned() {
        let unit = "<md:KeyDescriptor use=\"signing\">é</md:KeyDescriptor>";
        let text = unit.repeat(16_000_000 / unit.len());
        let started = std::time::Instant::now();
        let index = LineIndex::new(&text);
        let step = text.len() / 20_000;
        let mut last = (0, 0);
        for i in 0..20_000 {
            let offset = (i * step) / unit.len() * unit.len();
            last = index.position(offset);
        }
        let elapsed = started.elapsed();
        let offset = (19_999 * step) / unit.len() * unit.len();
        let chars_per_unit = unit.chars().count();
        assert_eq!(last, (1, (offset / unit.len() * chars_per_unit) as u32 + 1));
        assert!(
            elapsed < std::time::Duration::from_secs(10),
            "20,000 positions on one 16 MB line took {elapsed:?}"
        );
    }
}
