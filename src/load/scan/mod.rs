//! Finding every trusted thumbprint in config files, with exact byte spans and findings.
//!
//! Byte offsets are into the file's bytes as stored (a UTF-8 BOM included), so the patcher
//! can splice the original buffer.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::model::cert::Certificate;
use crate::model::paths::PathError;
use crate::model::rules::Rule;
use crate::model::thumbprint::Thumbprint;

pub const XDT_NS: &str = "http://schemas.microsoft.com/XML-Document-Transform";
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

pub use crate::model::finding::{Code, Severity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    fn new(code: Code, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Trusts a thumbprint.
    Add,
    /// `<remove thumbprint=…>`: withdraws an earlier entry.
    Remove,
}

/// One element that holds entries (a `trustedIssuers`, an authority's `keys`, `appSettings`).
#[derive(Debug, Clone)]
pub struct Registry {
    pub index: usize,
    pub rule: Arc<Rule>,
    /// `identityConfiguration/@name`, `service/@name`, `authority/@name`.
    pub scope: Option<String>,
    /// Issuer name implied by the scope (VINR authority name).
    pub issuer_name: Option<String>,
    pub valid_issuers: Vec<String>,
    /// The container element; `None` when it is missing but the rule says how to create it.
    pub container: Option<ElementSpan>,
    /// Where to create the container when it is missing.
    pub create_under: Option<ElementSpan>,
    pub transform: Option<String>,
    /// In a config transform, the registry (or an ancestor) is `xdt:Transform="Replace"`d:
    /// it holds what the build configuration trusts after publishing, and keyroll edits it
    /// like any registry. A registry of a transform without it only locates, and is never
    /// edited.
    pub replaced: bool,
    pub line: u32,
    /// The container's last child element (any kind: `<add>`, `<remove>`, `<clear/>`): new
    /// entries go after it, so WIF applies them after every earlier `<clear/>`/`<remove>`.
    pub last_child: Option<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementSpan {
    /// The whole element, start tag to end tag.
    pub range: Range<usize>,
    /// Just past the `>` of the start tag.
    pub start_tag_end: usize,
    pub self_closing: bool,
    /// Leading whitespace of the element's line, when the element starts the line.
    pub indent: String,
    /// One level of indentation below this element, as the file writes it.
    pub child_unit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrustedEntry {
    pub file: PathBuf,
    #[serde(skip)]
    pub registry: usize,
    pub dialect: String,
    pub kind: EntryKind,
    pub line: u32,
    pub column: u32,
    /// The whole `<add …/>` element.
    #[serde(skip)]
    pub element: Range<usize>,
    /// The attribute value as stored (between the quotes).
    #[serde(skip)]
    pub value: Range<usize>,
    #[serde(skip)]
    pub value_quote: char,
    /// The whole `name="…"` attribute and its value, when the entry has one.
    #[serde(skip)]
    pub name_attr: Option<(Range<usize>, Range<usize>)>,
    pub scope: Option<String>,
    pub issuer_name: Option<String>,
    pub key: Option<String>,
    /// The value as written in the file.
    pub raw: String,
    /// The value after XML decoding: what WIF compares.
    #[serde(skip)]
    pub decoded: String,
    pub normalized: Option<Thumbprint>,
    pub placeholder: bool,
    /// Line of the earlier entry this one duplicates (WIF refuses to load the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
    /// Still trusted after the `<remove>`/`<clear>` elements that follow it.
    pub effective: bool,
    pub findings: Vec<Finding>,
}

impl TrustedEntry {
    /// What WIF compares: ASCII spaces removed, case folded.
    pub fn wif_key(&self) -> String {
        self.decoded.replace(' ', "").to_ascii_uppercase()
    }

    pub fn has_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// A problem tied to a file position rather than an entry (malformed XML, bad configSource).
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    #[serde(flatten)]
    pub finding: Finding,
}

/// How a config file is stored. keyroll reads and edits UTF-8 text; a UTF-16 file (with its
/// byte-order mark, as Visual Studio writes some) is decoded on read and encoded back, BOM
/// included, on write, so only the intended characters change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    #[default]
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl TextEncoding {
    /// The UTF-8 text of a UTF-16 file with a byte-order mark, or None (not UTF-16, or not
    /// valid UTF-16: then the bytes are read as they are and reported).
    pub fn decode_utf16(bytes: &[u8]) -> Option<(TextEncoding, Vec<u8>)> {
        let encoding = if bytes.starts_with(b"\xFF\xFE") {
            TextEncoding::Utf16Le
        } else if bytes.starts_with(b"\xFE\xFF") {
            TextEncoding::Utf16Be
        } else {
            return None;
        };
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|p| match encoding {
                TextEncoding::Utf16Le => u16::from_le_bytes([p[0], p[1]]),
                _ => u16::from_be_bytes([p[0], p[1]]),
            })
            .collect();
        String::from_utf16(&units)
            .ok()
            .map(|text| (encoding, text.into_bytes()))
    }

    /// Whether the bytes begin with a UTF-32 byte-order mark (little- or big-endian), which
    /// keyroll does not read. Checked before UTF-16: `FF FE 00 00` also begins like UTF-16LE.
    pub fn is_utf32(bytes: &[u8]) -> bool {
        bytes.starts_with(b"\xFF\xFE\0\0") || bytes.starts_with(b"\0\0\xFE\xFF")
    }

    /// The bytes to store for UTF-8 `text` in this encoding.
    pub fn encode(self, text: &[u8]) -> Vec<u8> {
        let units = || {
            String::from_utf8_lossy(text)
                .encode_utf16()
                .collect::<Vec<u16>>()
        };
        match self {
            TextEncoding::Utf8 => text.to_vec(),
            TextEncoding::Utf16Le => {
                let mut out = vec![0xFF, 0xFE];
                out.extend(units().iter().flat_map(|u| u.to_le_bytes()));
                out
            }
            TextEncoding::Utf16Be => {
                let mut out = vec![0xFE, 0xFF];
                out.extend(units().iter().flat_map(|u| u.to_be_bytes()));
                out
            }
        }
    }
}

/// `configSource="…"` as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSourceRef {
    pub reference: String,
    pub line: u32,
    pub column: u32,
}

/// One config file as read: its bytes, its registries and entries.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub registries: Vec<Registry>,
    pub entries: Vec<TrustedEntry>,
    /// `configSource` references as written.
    pub config_source_refs: Vec<ConfigSourceRef>,
    /// Files this one delegates a section to (`configSource`), once resolved by the loader.
    pub config_sources: Vec<PathBuf>,
    pub problems: Vec<FileProblem>,
    pub is_transform: bool,
    /// How the file is stored; `bytes` are always its UTF-8 text.
    pub encoding: TextEncoding,
}

impl ConfigFile {
    /// A file keyroll did not read (a link it refuses to follow, a file it could not open):
    /// nothing in it, and only the `problems` given, so the refusal is the one thing said of it.
    pub fn unread(path: PathBuf, problems: Vec<FileProblem>) -> ConfigFile {
        ConfigFile {
            path,
            bytes: Vec::new(),
            registries: Vec::new(),
            entries: Vec::new(),
            config_source_refs: Vec::new(),
            config_sources: Vec::new(),
            problems,
            is_transform: false,
            encoding: TextEncoding::Utf8,
        }
    }

    pub fn bom_len(&self) -> usize {
        if self.bytes.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        }
    }

    /// The file's text, BOM included (offsets in spans refer to this).
    pub fn text(&self) -> &str {
        // Checked in `parse_config`.
        std::str::from_utf8(&self.bytes).expect("config checked as UTF-8")
    }

    pub fn entries_of(&self, registry: usize) -> impl Iterator<Item = &TrustedEntry> {
        self.entries.iter().filter(move |e| e.registry == registry)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {detail}")]
    Unreadable { path: String, detail: String },
    /// Several paths could not be read or walked: each is named, in path order.
    #[error("{} paths could not be read:\n{}", .0.len(), list_errors(.0))]
    Several(Vec<ScanError>),
}

impl ScanError {
    /// One error for all of `errors` (not empty), in a fixed order whatever order the
    /// walker threads met them in.
    fn of(mut errors: Vec<ScanError>) -> ScanError {
        errors.sort_by_cached_key(|e| e.to_string());
        errors.dedup_by(|a, b| a.to_string() == b.to_string());
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            ScanError::Several(errors)
        }
    }
}

fn list_errors(errors: &[ScanError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Certificates the caller knows (from metadata or the lock file), for expiry findings.
#[derive(Debug, Default, Clone)]
pub struct KnownCertificates {
    pub by_thumbprint: HashMap<Thumbprint, Arc<Certificate>>,
    pub now: Option<OffsetDateTime>,
    pub warn_days: i64,
}

/// Everything a scan found, files in path order.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub files: Vec<ConfigFile>,
    /// Registries whose trusted keys live in a database (also reported as findings).
    pub databases: Vec<databases::DatabaseRegistry>,
}

impl ScanResult {
    pub fn entries(&self) -> impl Iterator<Item = &TrustedEntry> {
        self.files.iter().flat_map(|f| f.entries.iter())
    }

    pub fn problems(&self) -> impl Iterator<Item = &FileProblem> {
        self.files.iter().flat_map(|f| f.problems.iter())
    }

    pub fn worst(&self) -> Option<Severity> {
        let entries = self
            .entries()
            .flat_map(|e| e.findings.iter().map(|f| f.severity));
        let problems = self.problems().map(|p| p.finding.severity);
        entries.chain(problems).max()
    }
}

pub mod databases;
mod parse;
#[cfg(unix)]
mod tree;
mod walk;
mod wif;

pub use parse::{is_placeholder, line_indent, parse_config};
pub use walk::{repository_root, scan_paths, scan_paths_with_threads};
pub use wif::decode_attribute;
