//! `keyroll init`: match the thumbprints a repository trusts to the given metadata and write a
//! starter keyroll.toml (and lock) for a person to review.
//!
//! init never goes quiet: every metadata source becomes an issuer, whether or not a config
//! trusts its keys yet (a config trusting only stale keys is exactly the case keyroll exists
//! for); an issuer no config trusts gets a commented `[[target]]` to fill in, and every config
//! whose thumbprints no source publishes is listed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use time::OffsetDateTime;

use crate::load::fetch::Fetcher;
use crate::load::metadata::{self, MetadataDocument};
use crate::load::scan::{self, KnownCertificates};
use crate::model::lock::{Lock, LockedKey};
use crate::model::paths::slash_path;
use crate::model::rules::RuleSet;

mod text;
use text::{databases_text, issuers_text, relative_source, targets_text};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(String),
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    #[error(transparent)]
    Scan(#[from] scan::ScanError),
    #[error(transparent)]
    Write(#[from] crate::act::write::WriteError),
}

/// What init found and wrote, for the summary it prints ([`InitSummary::to_text`]).
#[derive(Debug, Default)]
pub struct InitSummary {
    pub settings_path: PathBuf,
    pub lock_path: PathBuf,
    pub issuers: Vec<IssuerSummary>,
    /// `file:line value → issuer` for every trusted thumbprint a source publishes.
    pub matched: Vec<String>,
    /// `file:line value` for every trusted thumbprint no source publishes.
    pub unmatched: Vec<String>,
    /// Configs none of whose trusted thumbprints a source publishes, with how many they hold.
    pub configs_without_match: Vec<(String, usize)>,
    /// Sources that became no issuer: aggregates naming several entities, none trusted yet.
    /// Each has a commented `[[issuer]]` in keyroll.toml.
    pub unpicked_sources: Vec<UnpickedSource>,
    /// `[[database]]` targets written for registries whose keys live in a table.
    pub databases: Vec<String>,
}

/// One `[[issuer]]` written.
#[derive(Debug, Clone)]
pub struct IssuerSummary {
    pub name: String,
    /// As written in keyroll.toml: a URL, or a path relative to its folder.
    pub metadata: String,
    pub entity_id: Option<String>,
    pub signing_keys: usize,
    /// Configs that trust one of its keys; empty: a commented `[[target]]` was written.
    pub trusted_by: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct UnpickedSource {
    pub metadata: String,
    pub entities: usize,
}

impl InitSummary {
    /// The lines `keyroll init` prints.
    pub fn to_text(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let mut out = format!(
            "wrote {} and {}: {}, {} matched\n",
            self.settings_path.display(),
            self.lock_path.display(),
            plural(self.issuers.len(), "issuer"),
            plural(self.matched.len(), "trusted thumbprint"),
        );
        for issuer in &self.issuers {
            let entity = issuer
                .entity_id
                .as_deref()
                .map(|e| format!("entity {e}, "))
                .unwrap_or_default();
            out.push_str(&format!(
                "  issuer    {} from {} ({entity}{})\n",
                issuer.name,
                issuer.metadata,
                plural(issuer.signing_keys, "signing key"),
            ));
        }
        for line in &self.matched {
            out.push_str(&format!("  matched   {line}\n"));
        }
        for line in &self.unmatched {
            out.push_str(&format!(
                "  unmatched {line} (no given metadata publishes it: stale, or another issuer)\n"
            ));
        }
        for issuer in self.issuers.iter().filter(|i| {
            i.trusted_by.is_empty()
                && !self
                    .databases
                    .iter()
                    .any(|d| d.contains(&format!("issuer {}", i.name)))
        }) {
            out.push_str(&format!(
                "  untrusted {}: no config here trusts any of its {} yet; fill in the commented [[target]] for it in keyroll.toml\n",
                issuer.name,
                plural(issuer.signing_keys, "signing key"),
            ));
        }
        for (file, count) in &self.configs_without_match {
            out.push_str(&format!(
                "  no match  {file}: none of its {} is published by the given metadata\n",
                plural(*count, "trusted thumbprint"),
            ));
        }
        for line in &self.databases {
            out.push_str(&format!("  database  {line}\n"));
        }
        for source in &self.unpicked_sources {
            out.push_str(&format!(
                "  skipped   {}: it lists {} entities and no config trusts a key of any; pick one in the commented [[issuer]] in keyroll.toml\n",
                source.metadata, source.entities,
            ));
        }
        out.push_str("review keyroll.toml, then run `keyroll plan`\n");
        out
    }
}

struct Issuer {
    name: String,
    metadata: String,
    entity_id: Option<String>,
    doc_index: usize,
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

/// Readable names from an identifier (an entityID, an OpenID issuer, a JWKS URL), shortest
/// first: `http://fs.contoso.com/adfs/…` → `fs-contoso-com`, then
/// `fs-contoso-com-adfs-services-trust` when the host is taken. A bare `localhost` says
/// nothing of the issuer, so it only comes with its port and path.
fn identifier_names(identifier: &str) -> Vec<String> {
    let (host, path) = match identifier.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        None => (identifier, ""),
    };
    let bare_host = host.split(':').next().unwrap_or(host);
    let mut out = Vec::new();
    let short = slugify(bare_host);
    if !short.is_empty() && !matches!(short.as_str(), "localhost" | "127-0-0-1") {
        out.push(short);
    }
    let full = slugify(&format!("{host} {path}"));
    if !full.is_empty() && !out.contains(&full) {
        out.push(full);
    }
    out
}

/// Candidate names for an issuer: from its entityID, else from its source's URL, else from
/// the source file's name; never the bare word `issuer`.
fn name_candidates(entity_id: Option<&str>, source: &str, index: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(entity_id) = entity_id {
        out.extend(identifier_names(entity_id));
    }
    if metadata::is_url(source) {
        out.extend(identifier_names(source));
    } else if let Some(stem) = Path::new(source).file_stem() {
        out.push(slugify(&stem.to_string_lossy()));
    }
    out.retain(|n| !n.is_empty() && n != "issuer");
    out.dedup();
    if out.is_empty() {
        out.push(format!("source-{}", index + 1));
    }
    out
}

fn free_name(candidates: &[String], names: &BTreeSet<String>) -> String {
    if let Some(name) = candidates.iter().find(|c| !names.contains(*c)) {
        return name.clone();
    }
    let base = candidates.last().expect("one candidate at least");
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !names.contains(c))
        .expect("a free name")
}

pub async fn run(
    root: &Path,
    sources: &[String],
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
    force: bool,
) -> Result<InitSummary, InitError> {
    let settings_path = root.join(crate::model::settings::FILE_NAME);
    if settings_path.exists() && !force {
        return Err(InitError::Exists(settings_path.display().to_string()));
    }
    let rendered = prepare(root, sources, rules, fetcher, now, false).await?;
    crate::act::write::write_atomic(&settings_path, rendered.settings.as_bytes())?;
    crate::act::write::write_atomic(&rendered.summary.lock_path, rendered.lock.as_bytes())?;
    Ok(rendered.summary)
}

/// keyroll.toml and keyroll.lock as init writes them, and what it found.
#[derive(Debug)]
pub struct Rendered {
    pub summary: InitSummary,
    /// keyroll.toml's text.
    pub settings: String,
    /// keyroll.lock's text.
    pub lock: String,
}

/// What [`run`] writes, without writing it (`keyroll onboard` commits it instead): the sources
/// fetched and the root scanned ([`load`]), the scanned thumbprints matched to the sources
/// ([`match_trust`]), keyroll.toml and keyroll.lock written as text ([`render_files`]).
/// `only_trusted`: when some config trusts a source's keys, the sources no config trusts are
/// left out (an organisation's run passes every issuer of the estate; a repository's
/// keyroll.toml should name the ones it trusts). When none is trusted, every source stays,
/// with its commented `[[target]]`, for a person to pick.
pub async fn prepare(
    root: &Path,
    sources: &[String],
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
    only_trusted: bool,
) -> Result<Rendered, InitError> {
    let loaded = load(root, sources, rules, fetcher, now).await?;
    let matched = match_trust(&loaded, only_trusted);
    Ok(render_files(&loaded, matched, now))
}

/// The sources init read and the configs it scanned.
struct Loaded<'a> {
    root: &'a Path,
    sources: &'a [String],
    /// One per source, in order.
    docs: Vec<MetadataDocument>,
    scanned: scan::ScanResult,
}

async fn load<'a>(
    root: &'a Path,
    sources: &'a [String],
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<Loaded<'a>, InitError> {
    let mut docs: Vec<MetadataDocument> = Vec::new();
    for source in sources {
        docs.push(metadata::load(source, fetcher, now).await?);
    }
    let scanned = scan::scan_paths(&[root.to_path_buf()], rules, &KnownCertificates::default())?;
    Ok(Loaded {
        root,
        sources,
        docs,
        scanned,
    })
}

/// (file, dialect, authority) → the issuers it trusts.
type Trusts = BTreeMap<(String, String, Option<String>), BTreeSet<String>>;
/// (dialect, authority, issuers) → the files trusting those issuers that way.
type Targets = BTreeMap<(String, Option<String>, Vec<String>), Vec<String>>;

/// What matching the scanned thumbprints to the sources found.
struct Matched {
    issuers: Vec<Issuer>,
    /// Every name given so far, so a suggested one is free too.
    names: BTreeSet<String>,
    trusts: Trusts,
    /// file → (entries, entries matched, dialect), for the configs no source speaks for.
    per_file: BTreeMap<String, (usize, usize, String)>,
    /// With `matched`, `unmatched` and `unpicked_sources` filled in.
    summary: InitSummary,
}

impl Matched {
    fn add_issuer(
        &mut self,
        loaded: &Loaded<'_>,
        doc_index: usize,
        entity_id: Option<String>,
    ) -> String {
        let candidates =
            name_candidates(entity_id.as_deref(), &loaded.sources[doc_index], doc_index);
        let name = free_name(&candidates, &self.names);
        self.names.insert(name.clone());
        self.issuers.push(Issuer {
            name: name.clone(),
            metadata: relative_source(loaded.root, &loaded.sources[doc_index]),
            entity_id,
            doc_index,
        });
        name
    }
}

fn match_trust(loaded: &Loaded<'_>, only_trusted: bool) -> Matched {
    let root = loaded.root;
    // Which entity publishes each thumbprint (signing keys only).
    let mut publisher: BTreeMap<_, (usize, Option<String>)> = BTreeMap::new();
    for (i, doc) in loaded.docs.iter().enumerate() {
        for key in doc.keys.iter().filter(|k| k.is_signing()) {
            publisher
                .entry(key.thumbprint())
                .or_insert((i, key.entity_id.clone()));
        }
    }

    let mut m = Matched {
        issuers: Vec::new(),
        names: BTreeSet::new(),
        trusts: BTreeMap::new(),
        per_file: BTreeMap::new(),
        summary: InitSummary {
            settings_path: root.join(crate::model::settings::FILE_NAME),
            lock_path: root.join(crate::model::lock::FILE_NAME),
            ..Default::default()
        },
    };
    for entry in loaded
        .scanned
        .entries()
        .filter(|e| e.kind == scan::EntryKind::Add)
    {
        let relative = slash_path(entry.file.strip_prefix(root).unwrap_or(&entry.file));
        let place = format!("{relative}:{}", entry.line);
        let counts = m
            .per_file
            .entry(relative.clone())
            .or_insert((0, 0, entry.dialect.clone()));
        counts.0 += 1;
        let Some((doc_index, entity_id)) =
            entry.normalized.and_then(|t| publisher.get(&t)).cloned()
        else {
            m.summary.unmatched.push(format!("{place} {}", entry.raw));
            continue;
        };
        counts.1 += 1;
        let name = match m
            .issuers
            .iter()
            .find(|i| i.doc_index == doc_index && i.entity_id == entity_id)
        {
            Some(i) => i.name.clone(),
            None => m.add_issuer(loaded, doc_index, entity_id),
        };
        m.summary
            .matched
            .push(format!("{place} {} → {name}", entry.raw));
        let authority = (entry.dialect == "vinr")
            .then(|| entry.scope.clone())
            .flatten();
        m.trusts
            .entry((relative, entry.dialect.clone(), authority))
            .or_default()
            .insert(name);
    }

    // Every source no config trusts yet is an issuer too, unless it is an aggregate: which of
    // its entities the app trusts is for a person to pick.
    let trusted_any = !m.issuers.is_empty();
    for (doc_index, doc) in loaded.docs.iter().enumerate() {
        if m.issuers.iter().any(|i| i.doc_index == doc_index) || (only_trusted && trusted_any) {
            continue;
        }
        let entity_ids = doc.entity_ids();
        if entity_ids.len() > 1 {
            m.summary.unpicked_sources.push(UnpickedSource {
                metadata: relative_source(root, &loaded.sources[doc_index]),
                entities: entity_ids.len(),
            });
            continue;
        }
        let entity_id = entity_ids.into_iter().next().map(str::to_string);
        m.add_issuer(loaded, doc_index, entity_id);
    }
    m
}

/// keyroll.toml and keyroll.lock as text, from what [`match_trust`] found; no I/O.
fn render_files(loaded: &Loaded<'_>, matched: Matched, now: OffsetDateTime) -> Rendered {
    let Matched {
        issuers,
        names,
        trusts,
        per_file,
        mut summary,
    } = matched;
    // Files that trust the same issuers the same way share one target.
    let mut targets: Targets = BTreeMap::new();
    for ((file, dialect, authority), issuers) in trusts {
        targets
            .entry((dialect, authority, issuers.into_iter().collect()))
            .or_default()
            .push(file);
    }
    summary.configs_without_match = per_file
        .iter()
        .filter(|(_, (_, matched, _))| *matched == 0)
        .map(|(file, (entries, _, _))| (file.clone(), *entries))
        .collect();
    // The configs trusting only unpublished thumbprints are the likeliest targets of an issuer
    // no config trusts yet: their keys may be its old ones.
    let stale_files: Vec<(&String, &String)> = per_file
        .iter()
        .filter(|(_, (_, matched, _))| *matched == 0)
        .map(|(file, (_, _, dialect))| (file, dialect))
        .collect();

    let mut text = issuers_text(loaded, &issuers, &names, &summary.unpicked_sources);
    let (databases, db_issuers) = databases_text(loaded, &issuers, &mut summary);
    text.push_str(&targets_text(&targets, &issuers, &stale_files, &db_issuers));
    text.push_str(&databases);
    text.push_str(
        "\n[policy]\n\
         # add_not_yet_valid = true   # add keys published before they become valid (AD FS: ~20 days ahead)\n\
         # remove_after = \"7d\"        # keep a key this long after it left the metadata\n\
         # remove_expired = true      # drop an expired key at once once it is no longer published\n\
         # keep_unknown = true        # leave entries no configured issuer publishes alone\n\
         # warn_expiring = \"30d\"\n",
    );

    let lock = lock_of(&loaded.docs, &issuers, now);
    summary.issuers = issuers
        .iter()
        .map(|i| IssuerSummary {
            name: i.name.clone(),
            metadata: i.metadata.clone(),
            entity_id: i.entity_id.clone(),
            signing_keys: signing_keys(&loaded.docs, i).len(),
            trusted_by: trusted_by(&targets, &i.name),
        })
        .collect();
    Rendered {
        summary,
        settings: text,
        lock: lock.to_toml(),
    }
}

fn signing_keys<'d>(
    docs: &'d [MetadataDocument],
    issuer: &Issuer,
) -> Vec<&'d metadata::PublishedKey> {
    docs[issuer.doc_index]
        .keys
        .iter()
        .filter(|k| k.is_signing() && k.entity_id == issuer.entity_id)
        .collect::<Vec<_>>()
}

/// The files of the targets naming `name`.
fn trusted_by(targets: &Targets, name: &str) -> Vec<String> {
    targets
        .iter()
        .filter(|((_, _, issuers), _)| issuers.iter().any(|i| i == name))
        .flat_map(|(_, files)| files.iter().cloned())
        .collect()
}

/// keyroll.lock: every issuer's signing keys, first seen `now`.
fn lock_of(docs: &[MetadataDocument], issuers: &[Issuer], now: OffsetDateTime) -> Lock {
    let mut lock = Lock::default();
    for issuer in issuers {
        let keys = lock.issuers.entry(issuer.name.clone()).or_default();
        for key in signing_keys(docs, issuer) {
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
    lock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_entity_or_the_source_never_the_bare_word_issuer() {
        assert_eq!(
            name_candidates(
                Some("http://fs.contoso.com/adfs/services/trust"),
                "md.xml",
                0
            ),
            ["fs-contoso-com", "fs-contoso-com-adfs-services-trust", "md"]
        );
        assert_eq!(
            name_candidates(
                None,
                "https://login.microsoftonline.com/common/discovery/keys",
                0
            )[0],
            "login-microsoftonline-com"
        );
        assert_eq!(
            name_candidates(Some("http://localhost:3008/STSWebSite1/"), "x.xml", 0)[0],
            "localhost-3008-stswebsite1"
        );
        assert_eq!(
            name_candidates(None, "keys/azure-jwks.json", 0),
            ["azure-jwks"]
        );
        assert_eq!(name_candidates(None, "issuer.json", 2), ["source-3"]);
    }

    #[test]
    fn relative_paths_climb_out_of_the_root_when_needed() {
        use super::text::relative_path;
        let rel = |base: &str, path: &str| {
            relative_path(Path::new(base), Path::new(path)).map(|p| slash_path(&p))
        };
        assert_eq!(
            rel("/repo", "/repo/idp/md.xml").as_deref(),
            Some("idp/md.xml")
        );
        assert_eq!(
            rel("/repo/app", "/repo/idp/md.xml").as_deref(),
            Some("../idp/md.xml")
        );
        assert_eq!(
            rel("/repo", "/elsewhere/md.xml").as_deref(),
            Some("../elsewhere/md.xml")
        );
    }
}
