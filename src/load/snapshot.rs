//! `keyroll snapshot`: every issuer's metadata read once, written to a folder with its exact
//! bytes, and read back by `--snapshot DIR` instead of the network. A run over many
//! repositories then sees one set of documents (the identity provider is read once, and a
//! rollover in the middle of the run cannot give two repositories two different answers).
//!
//! Layout of DIR:
//! - `manifest.json` ([`Manifest`], `schema` = [`SCHEMA`]): per document the URL asked for,
//!   the URL it came from after redirects, its file, SHA-256, size and read time, or the
//!   error that stopped it; per issuer and source the kind of document and the signature's
//!   verdict as parsing verified it.
//! - `documents/<SHA-256>.<xml|json|bin>`: the bytes as served, never re-encoded.
//!
//! A document's bytes are checked against the manifest's SHA-256 each time they are read: a
//! file changed after the snapshot was taken is an error, not a different answer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::load::fetch::{Fetched, Fetcher};
use crate::model::settings::Settings;

/// The manifest's schema name; a reader refuses any other.
pub const SCHEMA: &str = "keyroll-snapshot/1";
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{path}: not a keyroll snapshot manifest: {detail}")]
    Manifest { path: String, detail: String },
    #[error("{url}: not in the snapshot {dir}")]
    Missing { url: String, dir: String },
    #[error("{url}: the snapshot recorded a failure: {error}")]
    Failed { url: String, error: String },
    #[error(
        "{file}: SHA-256 is {actual}, the manifest says {expected}: the snapshot was changed after it was taken"
    )]
    Digest {
        file: String,
        expected: String,
        actual: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub schema: String,
    pub keyroll_version: String,
    /// The keyroll.toml the snapshot was taken from, as given.
    pub config: String,
    /// The run's time (`--now` replaces it).
    pub taken_at: String,
    pub documents: Vec<DocumentEntry>,
    pub issuers: Vec<IssuerEntry>,
}

/// One URL as read (or as it failed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DocumentEntry {
    /// The URL asked for, its user information (a password perhaps) shown as `***`: the
    /// manifest is uploaded as an artifact. [`Snapshot::get`] compares URLs so redacted.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// Relative to the snapshot folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
    /// Why the document could not be read; every reader of the snapshot gets this error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IssuerEntry {
    pub name: String,
    pub sources: Vec<SourceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceEntry {
    /// As keyroll.toml names it.
    pub source: String,
    /// `saml-metadata`, `jwks`, `openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Signing keys the document publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<usize>,
    /// The document's signature as parsing verified it (SAML documents only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureEntry>,
    /// The source could not be loaded (fetch or parse): the same error every repository sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not snapshotted: a local path names a file of each repository, read from its tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureEntry {
    /// `unsigned`, `valid` or `refused`.
    pub status: String,
    /// `valid: signed by <SHA-1> (…)`, `refused: <reason>`, `unsigned`.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_sha1: Option<String>,
    /// Valid only under the legacy policy (SHA-1 or a key under 2048 bits).
    pub weak: bool,
}

/// A snapshot opened for reading.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dir: PathBuf,
    manifest: Manifest,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode_upper(sha2::Sha256::digest(bytes))
}

impl Snapshot {
    pub fn open(dir: &Path) -> Result<Snapshot, SnapshotError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| SnapshotError::Manifest {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        if manifest.schema != SCHEMA {
            return Err(SnapshotError::Manifest {
                path: path.display().to_string(),
                detail: format!(
                    "schema is \"{}\"; this keyroll reads \"{SCHEMA}\"",
                    manifest.schema
                ),
            });
        }
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The document recorded for `url`, its bytes checked against the manifest.
    ///
    /// The manifest holds URLs without their user information, so `url` is compared as
    /// redacted: `https://user:pw@host/m.xml` finds the document recorded for it (as
    /// `https://***@host/m.xml`), and so does any other user of the same host and path,
    /// which reads the same document.
    pub fn get(&self, url: &str) -> Result<Fetched, SnapshotError> {
        let wanted = crate::model::secret::redact_urls(url);
        let url = wanted.as_str();
        let entry = self
            .manifest
            .documents
            .iter()
            .find(|d| crate::model::secret::redact_urls(&d.url) == wanted)
            .ok_or_else(|| SnapshotError::Missing {
                url: url.to_string(),
                dir: self.dir.display().to_string(),
            })?;
        if let Some(error) = &entry.error {
            return Err(SnapshotError::Failed {
                url: url.to_string(),
                error: error.clone(),
            });
        }
        let (Some(file), Some(expected)) = (&entry.file, &entry.sha256) else {
            return Err(SnapshotError::Manifest {
                path: self.dir.join(MANIFEST).display().to_string(),
                detail: format!(
                    "the document for {url} has neither a file and SHA-256 nor an error"
                ),
            });
        };
        // A manifest names files inside its folder only.
        if file.contains("..") || Path::new(file).is_absolute() {
            return Err(SnapshotError::Manifest {
                path: self.dir.join(MANIFEST).display().to_string(),
                detail: format!("document file \"{file}\" is outside the snapshot folder"),
            });
        }
        let path = self.dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(SnapshotError::Digest {
                file: path.display().to_string(),
                expected: expected.clone(),
                actual,
            });
        }
        let fetched_at = entry
            .read_at
            .as_deref()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(Fetched {
            final_url: entry.final_url.clone().unwrap_or_else(|| url.to_string()),
            bytes,
            fetched_at,
        })
    }
}

/// Reads every issuer's metadata through `fetcher` (made with [`Fetcher::recording`]) and
/// writes the snapshot into `out`. A source that fails is recorded, not fatal: every
/// repository of the run then reports the same failure for that issuer.
/// Reading ([`read_sources`]) comes first; then writing: the documents as fetched
/// ([`write_documents`]) and the manifest ([`write_manifest`]).
pub async fn take(
    settings: &Settings,
    config_shown: &str,
    fetcher: &Fetcher,
    now: OffsetDateTime,
    out: &Path,
) -> Result<Manifest, SnapshotError> {
    let (issuers, failed) = read_sources(settings, fetcher, now).await;
    let documents = write_documents(out, fetcher.take_recorded(), failed)?;
    let manifest = Manifest {
        schema: SCHEMA.into(),
        keyroll_version: env!("CARGO_PKG_VERSION").into(),
        config: config_shown.into(),
        taken_at: rfc3339(now),
        documents,
        issuers,
    };
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

/// Every issuer's sources read, and the (redacted URL, error) of each that failed.
async fn read_sources(
    settings: &Settings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> (Vec<IssuerEntry>, Vec<(String, String)>) {
    let mut issuers = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for issuer in &settings.issuers {
        let mut sources = Vec::new();
        for source in &issuer.metadata {
            sources.push(source_entry(settings, source, fetcher, now, &mut failed).await);
        }
        issuers.push(IssuerEntry {
            name: issuer.name.clone(),
            sources,
        });
    }
    (issuers, failed)
}

/// One source as read: what it is, or why it was skipped or failed (pushed to `failed` too).
async fn source_entry(
    settings: &Settings,
    source: &str,
    fetcher: &Fetcher,
    now: OffsetDateTime,
    failed: &mut Vec<(String, String)>,
) -> SourceEntry {
    let resolved = settings.resolve_source(source);
    let mut entry = SourceEntry {
        source: crate::model::secret::redact_urls(source),
        kind: None,
        sha256: None,
        keys: None,
        signature: None,
        error: None,
        skipped: None,
    };
    if !crate::load::metadata::is_url(&resolved) {
        entry.skipped =
            Some("a local path: each repository reads its own copy, not the snapshot".into());
        return entry;
    }
    match crate::load::metadata::load(&resolved, fetcher, now).await {
        Ok(doc) => {
            entry.kind = serde_json::to_value(doc.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            entry.sha256 = Some(doc.sha256.clone());
            entry.keys = Some(doc.keys.iter().filter(|k| k.is_signing()).count());
            entry.signature = signature_entry(&doc);
        }
        Err(e) => {
            let error = crate::model::secret::redact(&e.to_string());
            failed.push((crate::model::secret::redact_urls(&resolved), error.clone()));
            entry.error = Some(error);
        }
    }
    entry
}

/// The document's signature as parsing verified it; None without a report unless it is SAML.
fn signature_entry(doc: &crate::load::metadata::MetadataDocument) -> Option<SignatureEntry> {
    // An XML document without a report carries no signature at all.
    let unsigned =
        (doc.kind == crate::load::metadata::DocumentKind::SamlMetadata).then(|| SignatureEntry {
            status: "unsigned".into(),
            summary: "unsigned".into(),
            signer_sha1: None,
            weak: false,
        });
    doc.signature_report
        .as_ref()
        .map(|r| {
            let status = match r.verdict {
                crate::load::signature::Verdict::Unsigned => "unsigned",
                crate::load::signature::Verdict::Valid => "valid",
                crate::load::signature::Verdict::Refused(_) => "refused",
            };
            SignatureEntry {
                status: status.into(),
                summary: r.summary(),
                signer_sha1: r
                    .signature
                    .as_ref()
                    .and_then(|s| s.signer_sha1)
                    .filter(|_| r.is_valid())
                    .map(|t| t.to_string()),
                weak: doc.weak_signature,
            }
        })
        .or(unsigned)
}

/// Writes every document `recorded` (URL, as fetched) to `out/documents/`, named by its
/// SHA-256; the entries list them, then the `failed` sources no document stands for.
fn write_documents(
    out: &Path,
    recorded: Vec<(String, Fetched)>,
    failed: Vec<(String, String)>,
) -> Result<Vec<DocumentEntry>, SnapshotError> {
    let docs_dir = out.join("documents");
    std::fs::create_dir_all(&docs_dir).map_err(|e| io_error(&docs_dir, e))?;
    let mut documents = Vec::new();
    for (url, fetched) in recorded {
        let sha256 = sha256_hex(&fetched.bytes);
        let ext = match fetched.bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => "xml",
            Some(b'{') => "json",
            _ => "bin",
        };
        let file = format!("documents/{sha256}.{ext}");
        let path = out.join(&file);
        std::fs::write(&path, &fetched.bytes).map_err(|e| io_error(&path, e))?;
        // Stored without user information: the fetch used the credentials, the artifact
        // does not keep them (a redirect's URL may carry them too).
        documents.push(DocumentEntry {
            url: crate::model::secret::redact_urls(&url),
            final_url: Some(crate::model::secret::redact_urls(&fetched.final_url)),
            file: Some(file),
            sha256: Some(sha256),
            bytes: Some(fetched.bytes.len() as u64),
            read_at: Some(rfc3339(fetched.fetched_at)),
            error: None,
        });
    }
    // A source that could not even be read: recorded so that readers get its error, not
    // "not in the snapshot".
    for (url, error) in failed {
        if !documents.iter().any(|d| d.url == url) {
            documents.push(DocumentEntry {
                url,
                final_url: None,
                file: None,
                sha256: None,
                bytes: None,
                read_at: None,
                error: Some(error),
            });
        }
    }
    Ok(documents)
}

fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), SnapshotError> {
    let path = out.join(MANIFEST);
    let text = serde_json::to_string_pretty(manifest).expect("manifest serializes") + "\n";
    std::fs::write(&path, text).map_err(|e| io_error(&path, e))
}
