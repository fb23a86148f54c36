//! Issuer metadata: WS-Federation / SAML 2.0 documents (single entities and aggregates) and
//! OIDC JWKS / OpenID configuration documents, read into [`PublishedKey`]s.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use sha2::Digest as _;
use time::OffsetDateTime;

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
    pub sha256: String,
    pub fetched_at: OffsetDateTime,
    pub keys: Vec<PublishedKey>,
    pub signature: Option<SignatureInfo>,
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
        let config: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| json_error(source, &e))?;
        let jwks_uri = config["jwks_uri"].as_str().unwrap_or_default().to_string();
        let issuer = config["issuer"].as_str().map(str::to_string);
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
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let mut doc = MetadataDocument {
        source: source.to_string(),
        kind: DocumentKind::SamlMetadata,
        bytes: bytes.len(),
        sha256: hex::encode_upper(sha2::Sha256::digest(bytes)),
        fetched_at,
        keys: Vec::new(),
        signature: None,
        notes: Vec::new(),
    };
    match first {
        Some(b'<') => {
            let text = utf8(source, body)?;
            let (keys, signature) = parse_xml(source, text)?;
            doc.keys = keys;
            doc.signature = signature;
        }
        Some(b'{') => {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| json_error(source, &e))?;
            if value.get("keys").is_some() {
                doc.kind = DocumentKind::Jwks;
                let (keys, notes) = parse_jwks(source, body, None)?;
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
            if body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF") {
                return Err(MetadataError::Read {
                    source_name: source.into(),
                    detail: "UTF-16 documents are not supported; save it as UTF-8".into(),
                });
            }
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
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line as u32, column as u32 + 1)
    }
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

/// roxmltree reports a DTD without a position; find the `<!DOCTYPE` ourselves.
pub fn xml_error_position(text: &str, e: &roxmltree::Error) -> (u32, u32) {
    match e {
        roxmltree::Error::DtdDetected => text
            .find("<!DOCTYPE")
            .map_or((1, 1), |offset| line_column(&text.as_bytes()[..offset])),
        other => (other.pos().row, other.pos().col),
    }
}

pub fn xml_error_detail(e: &roxmltree::Error) -> String {
    match e {
        roxmltree::Error::DtdDetected => {
            "the document has a DTD (<!DOCTYPE>); keyroll refuses DTDs and entity declarations"
                .to_string()
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

type XmlKeys = (Vec<PublishedKey>, Option<SignatureInfo>);

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

    let cert_at = |node: roxmltree::Node<'_, '_>, what: &str| {
        let text: String = node
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        Certificate::from_base64(&text).map_err(|error| {
            let (line, column) = lines.position(node.range().start);
            MetadataError::Certificate {
                source_name: source.into(),
                line,
                column,
                what: what.to_string(),
                error,
            }
        })
    };

    let signature = match root.descendants().find(|n| is_ds(n, "Signature")) {
        None => None,
        Some(sig) => {
            let reference_uri = sig
                .descendants()
                .find(|n| is_ds(n, "Reference"))
                .and_then(|r| r.attribute("URI"))
                .map(str::to_string);
            let signer = sig
                .descendants()
                .find(|n| is_ds(n, "X509Certificate"))
                .map(|c| cert_at(c, "in ds:Signature/ds:KeyInfo"))
                .transpose()?;
            Some(SignatureInfo {
                reference_uri,
                signer_sha1: signer.map(|c| c.sha1),
                verified: false,
            })
        }
    };

    let mut keys = KeyCollector::default();
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
        for cert_node in key_descriptor
            .descendants()
            .filter(|n| is_ds(n, "X509Certificate"))
        {
            let (line, column) = lines.position(cert_node.range().start);
            let what = format!(
                "of {} in {}",
                entity_id.as_deref().unwrap_or("(no entityID)"),
                role
            );
            let certificate = cert_at(cert_node, &what)?;
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
    Ok((keys.keys, signature))
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
