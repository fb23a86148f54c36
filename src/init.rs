//! `keyroll init`: match the thumbprints a repository trusts to the given metadata and write a
//! starter keyroll.toml (and lock) for a person to review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::fetch::Fetcher;
use crate::lock::{Lock, LockedKey};
use crate::metadata::{self, MetadataDocument};
use crate::report::slash_path;
use crate::rules::RuleSet;
use crate::scan::{self, KnownCertificates};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(String),
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    #[error(transparent)]
    Scan(#[from] scan::ScanError),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
}

/// What init found, for the summary it prints.
#[derive(Debug, Default)]
pub struct InitSummary {
    pub settings_path: PathBuf,
    pub lock_path: PathBuf,
    pub issuers: Vec<String>,
    pub matched: Vec<String>,
    pub unmatched: Vec<String>,
}

struct Issuer {
    name: String,
    source: String,
    entity_id: Option<String>,
    doc_index: usize,
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn slugify(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Readable issuer names from an entityID, shortest first: `http://fs.contoso.com/adfs/…`
/// → `fs-contoso-com`, then `fs-contoso-com-adfs-services-trust` when the host is taken.
fn name_candidates(entity_id: Option<&str>) -> Vec<String> {
    let Some(entity_id) = entity_id else {
        return vec!["issuer".into()];
    };
    let (host, path) = match entity_id.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        None => (entity_id, ""),
    };
    let host = slugify(host);
    let full = slugify(&format!("{host} {path}"));
    let mut out = Vec::new();
    if !host.is_empty() && host != "localhost" {
        out.push(host);
    }
    if !full.is_empty() {
        out.push(full);
    }
    if out.is_empty() {
        out.push("issuer".into());
    }
    out
}

pub async fn run(
    root: &Path,
    sources: &[String],
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
    force: bool,
) -> Result<InitSummary, InitError> {
    let settings_path = root.join(crate::settings::FILE_NAME);
    let lock_path = root.join(crate::lock::FILE_NAME);
    if settings_path.exists() && !force {
        return Err(InitError::Exists(settings_path.display().to_string()));
    }
    let mut docs: Vec<MetadataDocument> = Vec::new();
    for source in sources {
        docs.push(metadata::load(source, fetcher, now).await?);
    }
    let scanned = scan::scan_paths(&[root.to_path_buf()], rules, &KnownCertificates::default())?;

    // Which entity publishes each thumbprint (signing keys only).
    let mut publisher: BTreeMap<_, (usize, Option<String>)> = BTreeMap::new();
    for (i, doc) in docs.iter().enumerate() {
        for key in doc.keys.iter().filter(|k| k.is_signing()) {
            publisher
                .entry(key.thumbprint())
                .or_insert((i, key.entity_id.clone()));
        }
    }

    // One issuer per entity that a config trusts; an entity-less JWKS is one issuer.
    let mut issuers: Vec<Issuer> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    // (file, dialect, authority) → the issuers it trusts.
    let mut trusts: BTreeMap<(String, String, Option<String>), BTreeSet<String>> = BTreeMap::new();
    let mut summary = InitSummary {
        settings_path: settings_path.clone(),
        lock_path: lock_path.clone(),
        ..Default::default()
    };
    for entry in scanned.entries().filter(|e| e.kind == scan::EntryKind::Add) {
        let relative = entry.file.strip_prefix(root).unwrap_or(&entry.file);
        let place = format!("{}:{}", slash_path(relative), entry.line);
        let Some((doc_index, entity_id)) =
            entry.normalized.and_then(|t| publisher.get(&t)).cloned()
        else {
            summary.unmatched.push(format!("{place} {}", entry.raw));
            continue;
        };
        let name = match issuers
            .iter()
            .find(|i| i.doc_index == doc_index && i.entity_id == entity_id)
        {
            Some(i) => i.name.clone(),
            None => {
                let candidates = name_candidates(entity_id.as_deref());
                let name = candidates
                    .iter()
                    .find(|c| !names.contains(*c))
                    .cloned()
                    .unwrap_or_else(|| {
                        let base = candidates.last().expect("one candidate at least");
                        (2..)
                            .map(|n| format!("{base}-{n}"))
                            .find(|c| !names.contains(c))
                            .expect("a free name")
                    });
                names.insert(name.clone());
                issuers.push(Issuer {
                    name: name.clone(),
                    source: sources[doc_index].clone(),
                    entity_id: entity_id.clone(),
                    doc_index,
                });
                name
            }
        };
        summary
            .matched
            .push(format!("{place} {} → {name}", entry.raw));
        let relative = entry.file.strip_prefix(root).unwrap_or(&entry.file);
        let authority = (entry.dialect == "vinr")
            .then(|| entry.scope.clone())
            .flatten();
        trusts
            .entry((slash_path(relative), entry.dialect.clone(), authority))
            .or_default()
            .insert(name);
    }
    // Files that trust the same issuers the same way share one target.
    let mut targets: BTreeMap<(String, Option<String>, Vec<String>), Vec<String>> = BTreeMap::new();
    for ((file, dialect, authority), issuers) in trusts {
        targets
            .entry((dialect, authority, issuers.into_iter().collect()))
            .or_default()
            .push(file);
    }

    let mut text = String::from(
        "# keyroll.toml — written by `keyroll init`; review it, then run `keyroll plan`.\n\
         # Reference: README.md, section \"keyroll.toml\".\n",
    );
    for issuer in &issuers {
        text.push_str(&format!(
            "\n[[issuer]]\nname = {}\nmetadata = [{}]\n",
            toml_string(&issuer.name),
            toml_string(&relative_source(root, &issuer.source))
        ));
        if let Some(entity_id) = &issuer.entity_id {
            text.push_str(&format!("entity_id = {}\n", toml_string(entity_id)));
        }
    }
    for ((dialect, authority, issuers), files) in &targets {
        let files: Vec<String> = files.iter().map(|f| toml_string(f)).collect();
        let issuers: Vec<String> = issuers.iter().map(|i| toml_string(i)).collect();
        text.push_str(&format!(
            "\n[[target]]\nfiles = [{}]\ndialect = {}\nissuers = [{}]\n",
            files.join(", "),
            toml_string(dialect),
            issuers.join(", ")
        ));
        if let Some(authority) = authority {
            text.push_str(&format!("authority = {}\n", toml_string(authority)));
        }
    }
    text.push_str(
        "\n[policy]\n\
         # add_not_yet_valid = true   # add keys published before they become valid (AD FS: ~20 days ahead)\n\
         # remove_after = \"7d\"        # keep a key this long after it left the metadata\n\
         # remove_expired = true      # drop an expired key at once once it is no longer published\n\
         # keep_unknown = true        # leave entries no configured issuer publishes alone\n\
         # warn_expiring = \"30d\"\n",
    );

    let mut lock = Lock::default();
    for issuer in &issuers {
        let keys = lock.issuers.entry(issuer.name.clone()).or_default();
        for key in docs[issuer.doc_index]
            .keys
            .iter()
            .filter(|k| k.is_signing() && k.entity_id == issuer.entity_id)
        {
            let cert = &key.certificate;
            keys.insert(
                cert.sha1.to_upper_hex(),
                LockedKey {
                    sha256: cert.sha256_hex(),
                    subject: cert.subject.clone(),
                    not_before: cert.not_before,
                    not_after: cert.not_after,
                    first_seen: now,
                    missing_since: None,
                },
            );
        }
    }
    crate::write::write_atomic(&settings_path, text.as_bytes())?;
    crate::write::write_atomic(&lock_path, lock.to_toml().as_bytes())?;
    summary.issuers = issuers.into_iter().map(|i| i.name).collect();
    Ok(summary)
}

/// Paths in keyroll.toml are relative to its folder.
fn relative_source(root: &Path, source: &str) -> String {
    if metadata::is_url(source) {
        return source.to_string();
    }
    let path = Path::new(source);
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    match absolute.strip_prefix(&root) {
        Ok(relative) => slash_path(relative),
        Err(_) => slash_path(&absolute),
    }
}
