//! Step 1, load: everything the decision needs, read once — keyroll.lock, every issuer's
//! metadata (fetched and parsed), and every target file (from the work tree, or from the
//! commit a pull request targets), scanned with `configSource` followed. All I/O of a run
//! happens here or in [`crate::act`]; [`crate::decide`] reads none.

pub mod database;
pub mod fetch;
pub mod git;
mod lock;
pub mod metadata;
pub mod paths;
mod rules;
pub mod scan;
mod settings;
pub mod signature;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::load::fetch::Fetcher;
use crate::load::git::GitRepo;
use crate::model::cert::{Certificate, rfc3339};
use crate::model::lock::Lock;
use crate::model::paths::{PathError, join_relative, resolve_in_list};
use crate::model::rules::RuleSet;
use crate::model::settings::{IssuerSettings, Settings, SourceKind};
use crate::model::source::SourceInfo;
use crate::model::thumbprint::Thumbprint;
use metadata::MetadataDocument;
use scan::{ConfigFile, KnownCertificates};

/// Why an issuer's keys could not be loaded. The issuer is then left alone: a failed
/// source never reads as "every key was withdrawn".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("metadata source failed to load: {0}")]
    Source(String),
    #[error("{document} is {found}, not the {expected} document keyroll.toml says")]
    Kind {
        document: String,
        found: String,
        expected: String,
    },
    #[error(
        "entityID mismatch: {document} names {found}, keyroll.toml expects {expected}; refusing to act"
    )]
    EntityMismatch {
        document: String,
        found: String,
        expected: String,
    },
    #[error("{document} describes {count} entities; set entity_id for issuer \"{issuer}\"")]
    ManyEntities {
        document: String,
        count: usize,
        issuer: String,
    },
    #[error(
        "the metadata publishes no {uses} key: refusing to act (keyroll never treats that as \"every key was withdrawn\")"
    )]
    NoKey { uses: String },
}

/// An issuer's published keys as read.
#[derive(Debug, Clone)]
pub struct IssuerKeys {
    pub sources: Vec<SourceInfo>,
    /// Counted keys (by `uses`), one per certificate.
    pub published: BTreeMap<Thumbprint, Arc<Certificate>>,
    pub entity_ids: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct LoadedIssuer {
    pub name: String,
    pub keys: Result<IssuerKeys, IssuerError>,
}

/// The DER of the certificate with this SHA-1 as the issuer's metadata publishes it, read
/// again: keys are held without their DER once loaded, and `entra apply` sends the
/// certificate itself. Its SHA-1 is checked, so only the key decided on can be sent.
pub async fn published_der(
    settings: &Settings,
    issuer: &IssuerSettings,
    fetcher: &Fetcher,
    sha1: Thumbprint,
) -> Result<Vec<u8>, String> {
    for source in &issuer.metadata {
        let resolved = settings.resolve_source(source);
        let bytes = metadata::read_source(&resolved, fetcher)
            .await
            .map_err(|e| crate::model::secret::redact(&e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        for piece in text.split("X509Certificate>").skip(1) {
            let base64 = piece.split('<').next().unwrap_or("");
            if let Ok(certificate) = Certificate::from_base64(base64)
                && certificate.sha1 == sha1
            {
                return Ok(certificate.der);
            }
        }
    }
    Err(format!(
        "issuer {}'s metadata no longer holds the certificate {sha1}",
        issuer.name
    ))
}

/// Reads every issuer's sources, in keyroll.toml's order.
pub async fn load_issuers(
    settings: &Settings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Vec<LoadedIssuer> {
    let mut loaded = Vec::new();
    for issuer in &settings.issuers {
        loaded.push(LoadedIssuer {
            name: issuer.name.clone(),
            keys: load_issuer(settings, issuer, fetcher, now).await,
        });
    }
    loaded
}

async fn load_issuer(
    settings: &Settings,
    issuer: &IssuerSettings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<IssuerKeys, IssuerError> {
    let mut keys = IssuerKeys {
        sources: Vec::new(),
        published: BTreeMap::new(),
        entity_ids: BTreeSet::new(),
    };
    for source in &issuer.metadata {
        let resolved = settings.resolve_source(source);
        // Errors and reports name the source without its user information: they end up
        // in saved plans and artifacts; the fetch above alone uses the credentials.
        let doc = metadata::load(&resolved, fetcher, now)
            .await
            .map_err(|e| IssuerError::Source(crate::model::secret::redact(&e.to_string())))?;
        check_kind(issuer, &doc)?;
        add_document(issuer, &doc, &mut keys)?;
    }
    if keys.published.is_empty() {
        return Err(IssuerError::NoKey {
            uses: issuer
                .uses
                .iter()
                .map(|u| format!("{u:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join("/"),
        });
    }
    Ok(keys)
}

fn check_kind(issuer: &IssuerSettings, doc: &MetadataDocument) -> Result<(), IssuerError> {
    use metadata::DocumentKind as K;
    let ok = match issuer.kind {
        SourceKind::Auto => true,
        SourceKind::Saml => doc.kind == K::SamlMetadata,
        SourceKind::Jwks => doc.kind == K::Jwks,
        SourceKind::Openid => doc.kind == K::OpenidConfiguration,
    };
    if ok {
        Ok(())
    } else {
        Err(IssuerError::Kind {
            document: crate::model::secret::redact_urls(&doc.source),
            found: doc.kind.to_string(),
            expected: format!("{:?}", issuer.kind),
        })
    }
}

fn add_document(
    issuer: &IssuerSettings,
    doc: &MetadataDocument,
    keys: &mut IssuerKeys,
) -> Result<(), IssuerError> {
    let entity_ids: BTreeSet<&str> = doc.entity_ids();
    let relevant: Vec<&metadata::PublishedKey> = match &issuer.entity_id {
        Some(expected) => {
            if doc.kind == metadata::DocumentKind::Jwks && entity_ids.is_empty() {
                doc.keys.iter().collect()
            } else if entity_ids.contains(expected.as_str()) {
                doc.keys
                    .iter()
                    .filter(|k| k.entity_id.as_deref() == Some(expected.as_str()))
                    .collect()
            } else {
                return Err(IssuerError::EntityMismatch {
                    document: crate::model::secret::redact_urls(&doc.source),
                    found: entity_ids.iter().cloned().collect::<Vec<_>>().join(", "),
                    expected: expected.clone(),
                });
            }
        }
        None if entity_ids.len() > 1 => {
            return Err(IssuerError::ManyEntities {
                document: crate::model::secret::redact_urls(&doc.source),
                count: entity_ids.len(),
                issuer: issuer.name.clone(),
            });
        }
        None => doc.keys.iter().collect(),
    };
    keys.entity_ids
        .extend(relevant.iter().filter_map(|k| k.entity_id.clone()));
    // Signed or not: the tightest validUntil / cacheDuration over the root, any aggregate
    // and the entity holding the keys this issuer uses.
    let mut bounds = crate::load::signature::Bounds::default();
    for key in &relevant {
        bounds.tighten(&key.bounds);
    }
    for key in relevant.into_iter().filter(|k| issuer.counts(&k.uses)) {
        keys.published
            .insert(key.thumbprint(), key.certificate.clone());
    }
    keys.sources.push(SourceInfo {
        // As every report and stored plan shows it: `https://user:pw@host/…` as
        // `https://***@host/…`.
        source: crate::model::secret::redact_urls(&doc.source),
        sha256: doc.sha256.clone(),
        read_at: rfc3339(doc.fetched_at),
        bytes: doc.bytes,
        signature: signature_of(doc),
        valid_until: bounds.valid_until,
        cache_duration: bounds.cache_duration.map(|c| c.text),
        signer_trust: None,
    });
    Ok(())
}

/// The document's signature as verified when it was parsed.
fn signature_of(doc: &MetadataDocument) -> crate::model::source::DocumentSignature {
    use crate::load::signature::Verdict;
    use crate::model::source::DocumentSignature as S;
    if doc.kind != metadata::DocumentKind::SamlMetadata {
        return S::TlsOnly;
    }
    let Some(report) = &doc.signature_report else {
        return S::Unsigned;
    };
    let details = report.signature.as_ref();
    match &report.verdict {
        Verdict::Unsigned => S::Unsigned,
        Verdict::Valid => {
            let details = details.expect("a valid signature has details");
            S::Valid {
                signer: details
                    .signer_sha1
                    .unwrap_or(Thumbprint::from_bytes([0; 20])),
                method: details
                    .signature_method
                    .as_deref()
                    .map_or("unknown", crate::load::signature::short_name)
                    .to_string(),
                weak: doc.weak_signature,
            }
        }
        Verdict::Refused(refusal) => S::Refused {
            reason: refusal.to_string(),
            claimed_signer: details.and_then(|d| d.signer_sha1),
        },
    }
}

/// Where target files are read from.
pub enum Tree<'a> {
    /// keyroll.toml's folder on disk (`plan`, `apply`).
    Work,
    /// A commit's tree (`pr`: the base the pull request targets). `prefix` is keyroll.toml's
    /// folder relative to the repository's root.
    Git {
        repo: &'a GitRepo,
        commit: git2::Oid,
        prefix: String,
    },
}

/// Why the targets could not be listed at all (the run stops: nothing is decided).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Lock(#[from] crate::model::lock::LockError),
    #[error("{file}:{line}: target dialect \"{dialect}\" is not a known rule (known: {known})")]
    UnknownDialect {
        file: String,
        line: usize,
        dialect: String,
        known: String,
    },
    #[error(
        "{file}: no [[issuer]] is configured, so there is nothing to track. Add one (`keyroll init --metadata URL` writes it for you) with name and metadata = [\"URL or path\"]"
    )]
    NoIssuers { file: String },
    #[error(
        "{file}: no target is configured ([[target]] for config files, [[database]] for tables, [[federated_domain]] for Entra ID), so nothing would ever change. Add one, e.g. [[target]] with files = [\"src/**/Web.config\"] and issuers = [\"NAME\"]"
    )]
    NoTargets { file: String },
    #[error("listing target files under {root}: {detail}")]
    Walk { root: String, detail: String },
    #[error(transparent)]
    Git(#[from] crate::load::git::GitError),
}

/// One target file as read and scanned, with the targets that apply to it.
#[derive(Debug, Clone)]
pub struct TargetFile {
    pub file: ConfigFile,
    pub targets: Vec<usize>,
    /// Relative to keyroll.toml's folder, with `/`.
    pub display: String,
    /// Where `apply` writes it.
    pub path: PathBuf,
    /// Why keyroll will not change it (a link), beside any scan problem of the file itself.
    pub refused: Option<String>,
}

/// Everything the decision reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub settings: Settings,
    pub lock: Lock,
    pub issuers: Vec<LoadedIssuer>,
    pub targets: Vec<TargetFile>,
    pub warnings: Vec<String>,
    /// Issuers whose identity change this run accepts (`--accept-identity-change`).
    pub accept_identity_change: BTreeSet<String>,
    /// Per `[[database]]` target, its live rows when `url_env` gives a connection.
    pub databases: BTreeMap<String, database::Live>,
}

/// Checks keyroll.toml against the rules: targets name known dialects, and there is
/// something to do.
pub fn check_settings(settings: &Settings, rules: &RuleSet) -> Result<(), LoadError> {
    let file = settings.path.display().to_string();
    if settings.issuers.is_empty() {
        return Err(LoadError::NoIssuers { file });
    }
    // Every kind of target counts: a keyroll.toml may hold only tables, or only federated
    // domains (whose Entra ID copy of the keys keyroll checks).
    if settings.targets.is_empty()
        && settings.databases.is_empty()
        && settings.federated_domains.is_empty()
    {
        return Err(LoadError::NoTargets { file });
    }
    for target in &settings.targets {
        if let Some(dialect) = &target.dialect
            && rules.get(dialect).is_none()
        {
            return Err(LoadError::UnknownDialect {
                line: settings.line_of(&format!("\"{dialect}\"")),
                file,
                dialect: dialect.clone(),
                known: rules
                    .rules
                    .iter()
                    .map(|r| r.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// A listed file: its path relative to the root, and whether it is a symbolic link.
struct Listed {
    relative: String,
    link: bool,
}

fn in_build_output(relative: &str) -> bool {
    relative
        .split('/')
        .rev()
        .skip(1)
        .any(|d| d.eq_ignore_ascii_case("bin") || d.eq_ignore_ascii_case("obj"))
}

impl Tree<'_> {
    fn list(&self, settings: &Settings) -> Result<Vec<Listed>, LoadError> {
        let walk_error = |detail: String| LoadError::Walk {
            root: settings.root.display().to_string(),
            detail,
        };
        let mut listed = Vec::new();
        match self {
            Tree::Work => {
                let walker = ignore::WalkBuilder::new(&settings.root)
                    .require_git(false)
                    .build();
                for entry in walker {
                    let entry = entry.map_err(|e| walk_error(e.to_string()))?;
                    let Some(kind) = entry.file_type() else {
                        continue;
                    };
                    if kind.is_dir() {
                        continue;
                    }
                    let relative = entry
                        .path()
                        .strip_prefix(&settings.root)
                        .unwrap_or(entry.path());
                    listed.push(Listed {
                        relative: relative.to_string_lossy().replace('\\', "/"),
                        link: kind.is_symlink(),
                    });
                }
            }
            Tree::Git {
                repo,
                commit,
                prefix,
            } => {
                for (relative, link) in repo.list_files(*commit, prefix)? {
                    listed.push(Listed { relative, link });
                }
            }
        }
        Ok(listed)
    }

    fn read(&self, settings: &Settings, relative: &str) -> Result<Vec<u8>, String> {
        match self {
            Tree::Work => std::fs::read(settings.root.join(relative)).map_err(|e| e.to_string()),
            Tree::Git {
                repo,
                commit,
                prefix,
            } => {
                let path = if prefix.is_empty() {
                    relative.to_string()
                } else {
                    format!("{prefix}/{relative}")
                };
                repo.blob_at(*commit, &path)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("not in the base commit {commit}"))
            }
        }
    }

    /// Where the symbolic link `relative` leads, relative to the root, when that stays
    /// inside it; otherwise why keyroll refuses the link.
    fn follow_link(
        &self,
        settings: &Settings,
        relative: &str,
        all: &BTreeSet<String>,
        links: &BTreeSet<&str>,
    ) -> Result<String, String> {
        let outside = |target: &str| {
            format!(
                "is a symbolic link to {target}, outside keyroll.toml's folder; keyroll does not write outside it"
            )
        };
        match self {
            Tree::Work => {
                let root = std::fs::canonicalize(&settings.root).map_err(|e| e.to_string())?;
                let real = std::fs::canonicalize(settings.root.join(relative))
                    .map_err(|_| "is a symbolic link to a file that does not exist".to_string())?;
                match real.strip_prefix(&root) {
                    Ok(inside) => Ok(inside.to_string_lossy().replace('\\', "/")),
                    Err(_) => Err(outside(&real.display().to_string())),
                }
            }
            Tree::Git { .. } => {
                let mut at = relative.to_string();
                for _ in 0..40 {
                    let target = String::from_utf8_lossy(&self.read(settings, &at)?).into_owned();
                    let dir = at.rsplit_once('/').map_or("", |(d, _)| d);
                    at = join_relative(dir, &target).map_err(|_| outside(&target))?;
                    if !links.contains(at.as_str()) {
                        return if all.contains(&at) {
                            Ok(at)
                        } else {
                            Err(format!(
                                "is a symbolic link to {target}, which the commit does not hold"
                            ))
                        };
                    }
                }
                Err("is a chain of symbolic links too long to follow".into())
            }
        }
    }

    /// keyroll.lock as the tree holds it.
    pub fn lock(&self, settings: &Settings) -> Result<Lock, LoadError> {
        let path = settings.root.join(crate::model::lock::FILE_NAME);
        match self {
            Tree::Work => Ok(Lock::load(&path)?),
            Tree::Git { .. } => match self.read(settings, crate::model::lock::FILE_NAME) {
                Ok(bytes) => Ok(Lock::parse(&path, &String::from_utf8_lossy(&bytes))?),
                Err(_) => Ok(Lock::default()),
            },
        }
    }
}

/// Reads and scans the files the targets name (globs relative to keyroll.toml's folder,
/// matched ignoring case as Windows does; `bin/`, `obj/` and `.gitignore`d files skipped),
/// following `configSource` fragments, which inherit their parent's targets.
pub fn load_targets(
    settings: &Settings,
    rules: &RuleSet,
    tree: &Tree<'_>,
) -> Result<(Vec<TargetFile>, Vec<String>), LoadError> {
    let listed = tree.list(settings)?;
    let all: BTreeSet<String> = listed.iter().map(|l| l.relative.clone()).collect();
    let links: BTreeSet<&str> = listed
        .iter()
        .filter(|l| l.link)
        .map(|l| l.relative.as_str())
        .collect();
    let (mut queue, matched_any) = matched_by_globs(settings, &listed);
    queue_transforms(&mut queue, &listed);
    let warnings = unmatched_globs(settings, &matched_any);

    let mut files: BTreeMap<String, TargetFile> = BTreeMap::new();
    while let Some((relative, targets)) = queue.pop_front() {
        // A link whose target stays inside the root is edited through: the file loaded (and
        // written) is its target, so the link stays a link (and a target reached both ways
        // is one file). Its configSource references resolve from the target's folder. A link
        // leaving the root is refused.
        let (relative, refused) = if links.contains(relative.as_str()) {
            match tree.follow_link(settings, &relative, &all, &links) {
                Ok(real) => (real, None),
                Err(why) => (relative, Some(why)),
            }
        } else {
            (relative, None)
        };
        if let Some(seen) = files.get_mut(&relative) {
            for t in targets {
                if !seen.targets.contains(&t) {
                    seen.targets.push(t);
                }
            }
            continue;
        }
        let (file, fragments) = read_target(
            settings,
            rules,
            tree,
            &all,
            relative.clone(),
            targets,
            refused,
        );
        for fragment in fragments {
            queue.push_back((fragment, file.targets.clone()));
        }
        files.insert(relative, file);
    }
    Ok((files.into_values().collect(), warnings))
}

/// The listed files (build output skipped) each target's globs match, in listing order, with
/// the targets matching each, and whether each target matched anything.
fn matched_by_globs(
    settings: &Settings,
    listed: &[Listed],
) -> (VecDeque<(String, Vec<usize>)>, Vec<bool>) {
    let matchers = target_matchers(settings);
    let mut matched_any = vec![false; settings.targets.len()];
    let mut queue: VecDeque<(String, Vec<usize>)> = VecDeque::new();
    for l in listed.iter().filter(|l| !in_build_output(&l.relative)) {
        let targets: Vec<usize> = matchers
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_match(&l.relative))
            .map(|(i, _)| i)
            .collect();
        for &t in &targets {
            matched_any[t] = true;
        }
        if !targets.is_empty() {
            queue.push_back((l.relative.clone(), targets));
        }
    }
    (queue, matched_any)
}

/// Queues each matched base config's transforms with the base's targets.
fn queue_transforms(queue: &mut VecDeque<(String, Vec<usize>)>, listed: &[Listed]) {
    // A base config's transforms (`Web.Release.config` beside `Web.config`) decide what the
    // app trusts once published: they go with the base, whatever the globs say.
    let bases: Vec<(String, Vec<usize>)> = queue.iter().cloned().collect();
    for (base, targets) in bases {
        for sibling in transforms_of(&base, listed) {
            if !queue.iter().any(|(q, _)| *q == sibling) {
                queue.push_back((sibling, targets.clone()));
            }
        }
    }
}

/// Reads and scans one target file (`relative`, a link already followed), and resolves its
/// `configSource` references: the fragments found are returned for the caller to queue with
/// the same targets. `refused` is why the file was refused so far (a link leaving the root).
fn read_target(
    settings: &Settings,
    rules: &RuleSet,
    tree: &Tree<'_>,
    all: &BTreeSet<String>,
    relative: String,
    targets: Vec<usize>,
    mut refused: Option<String>,
) -> (TargetFile, Vec<String>) {
    let path = settings.root.join(&relative);
    // A refused link is not read through (its target lies outside, or nowhere; in a commit
    // its blob is the link's text), and an unreadable file is not parsed as empty: the
    // refusal is the one error said of it, not followed by "malformed XML".
    let bytes = match refused {
        Some(_) => None,
        None => match tree.read(settings, &relative) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                refused = Some(format!("cannot be read: {e}"));
                None
            }
        },
    };
    let Some(bytes) = bytes else {
        let file = TargetFile {
            file: ConfigFile::unread(relative.clone().into(), Vec::new()),
            targets,
            display: relative,
            path,
            refused,
        };
        return (file, Vec::new());
    };
    let mut file = scan::parse_config(
        std::path::Path::new(&relative),
        bytes,
        rules,
        &KnownCertificates::default(),
    );
    let dir = relative.rsplit_once('/').map_or("", |(d, _)| d);
    let mut fragments = Vec::new();
    for at in file.config_source_refs.clone() {
        let resolved = resolve_fragment(settings, tree, all, dir, &at.reference);
        match resolved {
            Ok(fragment) => {
                file.config_sources.push(settings.root.join(&fragment));
                fragments.push(fragment);
            }
            Err(e) => file.config_source_problem(&at, &e),
        }
    }
    let file = TargetFile {
        file,
        targets,
        display: relative,
        path,
        refused,
    };
    (file, fragments)
}

/// One glob set per target, matched ignoring case as Windows does.
fn target_matchers(settings: &Settings) -> Vec<globset::GlobSet> {
    settings
        .targets
        .iter()
        .map(|t| {
            let mut set = globset::GlobSetBuilder::new();
            for g in &t.files {
                // Checked when keyroll.toml was read.
                if let Ok(glob) = globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .case_insensitive(true)
                    .build()
                {
                    set.add(glob);
                }
            }
            set.build().unwrap_or_else(|_| globset::GlobSet::empty())
        })
        .collect()
}

/// A target whose globs match no file is likely a typo: a warning naming its line.
fn unmatched_globs(settings: &Settings, matched_any: &[bool]) -> Vec<String> {
    matched_any
        .iter()
        .enumerate()
        .filter(|(_, matched)| !**matched)
        .map(|(i, _)| {
            let files = &settings.targets[i].files;
            format!(
                "{}:{}: target files = {:?} match no file under {}",
                settings.path.display(),
                settings.line_of(&format!(
                    "\"{}\"",
                    files.first().cloned().unwrap_or_default()
                )),
                files,
                settings.root.display()
            )
        })
        .collect()
}

/// A `configSource` reference of the file in folder `dir`, as the app's host resolves it:
/// among the tree's files (ignoring case when the exact name is missing), else — in the
/// work tree — on disk (a `.gitignore`d fragment the app still reads), never outside the root.
fn resolve_fragment(
    settings: &Settings,
    tree: &Tree<'_>,
    all: &BTreeSet<String>,
    dir: &str,
    reference: &str,
) -> Result<String, PathError> {
    let rel = join_relative(dir, reference)?;
    match resolve_in_list(all, &rel, reference) {
        Err(PathError::Missing { .. }) if matches!(tree, Tree::Work) => {
            let found = paths::resolve_on_disk(&settings.root, &rel, reference)?;
            let root = std::fs::canonicalize(&settings.root).unwrap_or(settings.root.clone());
            match std::fs::canonicalize(&found) {
                Ok(real) if real.starts_with(&root) => Ok(found
                    .strip_prefix(&settings.root)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or(rel)),
                _ => Err(PathError::Outside {
                    reference: reference.to_string(),
                }),
            }
        }
        other => other,
    }
}

/// `Web.<Configuration>.config` / `App.<Configuration>.config` beside a `Web.config` /
/// `App.config` (names compared ignoring case, as Visual Studio and msbuild do).
fn transforms_of(base: &str, listed: &[Listed]) -> Vec<String> {
    let (dir, name) = base.rsplit_once('/').map_or(("", base), |(d, n)| (d, n));
    let lower = name.to_ascii_lowercase();
    let Some(stem) = lower.strip_suffix(".config") else {
        return Vec::new();
    };
    if stem != "web" && stem != "app" {
        return Vec::new();
    }
    listed
        .iter()
        .filter(|l| !l.link)
        .filter_map(|l| {
            let (d, n) = l
                .relative
                .rsplit_once('/')
                .map_or(("", l.relative.as_str()), |(d, n)| (d, n));
            let n = n.to_ascii_lowercase();
            let middle = n
                .strip_prefix(stem)?
                .strip_prefix('.')?
                .strip_suffix(".config")?;
            (d == dir && !middle.is_empty() && !middle.contains('.')).then(|| l.relative.clone())
        })
        .collect()
}

/// Loads everything for one run.
pub async fn load(
    settings: &Settings,
    rules: &RuleSet,
    fetcher: &Fetcher,
    tree: &Tree<'_>,
    now: OffsetDateTime,
) -> Result<Inputs, LoadError> {
    check_settings(settings, rules)?;
    let lock = tree.lock(settings)?;
    let (targets, warnings) = load_targets(settings, rules, tree)?;
    let issuers = load_issuers(settings, fetcher, now).await;
    let databases = database::load_live(settings).await;
    Ok(Inputs {
        settings: settings.clone(),
        lock,
        issuers,
        targets,
        warnings,
        accept_identity_change: BTreeSet::new(),
        databases,
    })
}

impl Inputs {
    /// The targets (by their display path) whose file in the work tree is not what was read:
    /// for inputs read from a commit (`Tree::Git`), the files the work tree changed since.
    /// A file the work tree lacks or cannot read differs too.
    pub fn differing_from_work_tree(&self) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|t| std::fs::read(&t.path).ok() != Some(t.file.encoding.encode(&t.file.bytes)))
            .map(|t| t.display.as_str())
            .collect()
    }
}
