//! Deciding what each target config must trust. A [`Plan`] is data: `plan` prints it, `apply`
//! performs it, `pr` publishes it. Nothing else decides what to change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, rfc3339};
use crate::fetch::Fetcher;
use crate::lock::{Lock, LockedKey};
use crate::metadata::{self, MetadataDocument};
use crate::patch::{self, Change};
use crate::rules::RuleSet;
use crate::scan::{self, ConfigFile, EntryKind, KnownCertificates, TrustedEntry};
use crate::settings::{IssuerSettings, Settings, SourceKind, format_duration};
use crate::thumbprint::Thumbprint;

/// One metadata document as read for an issuer: where, what, when.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub source: String,
    pub sha256: String,
    pub read_at: String,
    pub bytes: usize,
}

/// An issuer's published keys, or why keyroll refuses to act for it.
#[derive(Debug, Clone)]
pub struct IssuerState {
    pub name: String,
    pub loaded: Result<IssuerKeys, String>,
}

#[derive(Debug, Clone)]
pub struct IssuerKeys {
    pub sources: Vec<SourceInfo>,
    /// Counted keys (by `uses`), one per certificate.
    pub published: BTreeMap<Thumbprint, Arc<Certificate>>,
    pub entity_ids: BTreeSet<String>,
}

/// Reads every issuer's sources. A failed source, a wrong entityID or no signing key makes
/// that issuer an error: it never looks like "all keys vanished".
pub async fn load_issuers(
    settings: &Settings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Vec<IssuerState> {
    let mut states = Vec::new();
    for issuer in &settings.issuers {
        let loaded = load_issuer(settings, issuer, fetcher, now).await;
        states.push(IssuerState {
            name: issuer.name.clone(),
            loaded,
        });
    }
    states
}

async fn load_issuer(
    settings: &Settings,
    issuer: &IssuerSettings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<IssuerKeys, String> {
    let mut keys = IssuerKeys {
        sources: Vec::new(),
        published: BTreeMap::new(),
        entity_ids: BTreeSet::new(),
    };
    for source in &issuer.metadata {
        let resolved = settings.resolve_source(source);
        let doc = metadata::load(&resolved, fetcher, now)
            .await
            .map_err(|e| format!("metadata source failed to load: {e}"))?;
        check_kind(issuer, &doc)?;
        add_document(issuer, &doc, &mut keys)?;
    }
    if keys.published.is_empty() {
        return Err(format!(
            "the metadata publishes no {} key: refusing to act (keyroll never treats that as \"every key was withdrawn\")",
            issuer
                .uses
                .iter()
                .map(|u| format!("{u:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join("/")
        ));
    }
    Ok(keys)
}

fn check_kind(issuer: &IssuerSettings, doc: &MetadataDocument) -> Result<(), String> {
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
        Err(format!(
            "{} is {}, not the {:?} document keyroll.toml says",
            doc.source, doc.kind, issuer.kind
        ))
    }
}

fn add_document(
    issuer: &IssuerSettings,
    doc: &MetadataDocument,
    keys: &mut IssuerKeys,
) -> Result<(), String> {
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
                return Err(format!(
                    "entityID mismatch: {} names {}, keyroll.toml expects {expected}; refusing to act",
                    doc.source,
                    entity_ids.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        None if entity_ids.len() > 1 => {
            return Err(format!(
                "{} describes {} entities; set entity_id for issuer \"{}\"",
                doc.source,
                entity_ids.len(),
                issuer.name
            ));
        }
        None => doc.keys.iter().collect(),
    };
    keys.entity_ids
        .extend(relevant.iter().filter_map(|k| k.entity_id.clone()));
    for key in relevant.into_iter().filter(|k| issuer.counts(&k.uses)) {
        keys.published
            .insert(key.thumbprint(), key.certificate.clone());
    }
    keys.sources.push(SourceInfo {
        source: doc.source.clone(),
        sha256: doc.sha256.clone(),
        read_at: rfc3339(doc.fetched_at),
        bytes: doc.bytes,
    });
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Remove,
    Normalize,
    Dedupe,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
            Action::Normalize => "normalize",
            Action::Dedupe => "dedupe",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedChange {
    pub action: Action,
    /// Line of the entry changed; for an addition, of the registry it goes into.
    pub line: u32,
    pub thumbprint: Option<Thumbprint>,
    pub issuer: Option<String>,
    pub reason: String,
    #[serde(skip)]
    pub change: Change,
}

#[derive(Debug, Clone)]
pub struct FilePlan {
    /// Where the file is read and written.
    pub path: PathBuf,
    /// The path relative to keyroll.toml's folder, with `/`: what reports and PRs show.
    pub display: String,
    pub changes: Vec<PlannedChange>,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// What keyroll knows of one key of one issuer, and what the plan does with it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    pub sha1: Thumbprint,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub published: bool,
    /// valid / not-yet-valid / expiring (within `warn_expiring`) / expired.
    pub status: &'static str,
    pub first_seen: Option<String>,
    pub missing_since: Option<String>,
    /// add / keep / remove / ignore (published but not trusted: expired or not yet valid).
    pub action: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuerReport {
    pub name: String,
    pub sources: Vec<SourceInfo>,
    pub entity_ids: Vec<String>,
    pub error: Option<String>,
    pub keys: Vec<KeyReport>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub now: OffsetDateTime,
    pub issuers: Vec<IssuerReport>,
    pub files: Vec<FilePlan>,
    /// Things left alone that a reader should know (unknown entries, placeholders).
    pub notes: Vec<String>,
    pub errors: Vec<String>,
    pub lock_before: Lock,
    pub lock_after: Lock,
}

impl Plan {
    pub fn lock_changed(&self) -> bool {
        self.lock_before != self.lock_after
    }

    pub fn has_changes(&self) -> bool {
        !self.files.is_empty() || self.lock_changed()
    }
}

/// The files the targets name (relative globs under keyroll.toml's folder, `.gitignore` and
/// `bin/`/`obj/` respected), with the targets that apply to each; configSource fragments
/// inherit their parent's targets.
pub fn target_files(
    settings: &Settings,
    rules: &RuleSet,
) -> Result<Vec<(ConfigFile, Vec<usize>)>, String> {
    let matchers: Vec<globset::GlobSet> = settings
        .targets
        .iter()
        .map(|t| {
            let mut set = globset::GlobSetBuilder::new();
            for g in &t.files {
                set.add(
                    globset::GlobBuilder::new(g)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
            set.build().map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut found: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    let walker = ignore::WalkBuilder::new(&settings.root)
        .require_git(false)
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir
                && ["bin", "obj"]
                    .iter()
                    .any(|d| e.file_name().eq_ignore_ascii_case(d)))
        })
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(&settings.root)
            .unwrap_or(entry.path());
        let slashed = relative.to_string_lossy().replace('\\', "/");
        let targets: Vec<usize> = matchers
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_match(&slashed))
            .map(|(i, _)| i)
            .collect();
        if !targets.is_empty() {
            let path = entry.into_path();
            let path = path
                .strip_prefix(".")
                .map(Path::to_path_buf)
                .unwrap_or(path);
            found.insert(path, targets);
        }
    }
    let mut files = Vec::new();
    // Walked paths are already distinct and free of links and `..` (the walker does not
    // follow links): their key is the canonical root joined with the path, one
    // canonicalize for the whole walk instead of one per file. Only configSource fragments,
    // which may say `..`, are canonicalized one by one.
    let canonical_root = std::fs::canonicalize(&settings.root).unwrap_or(settings.root.clone());
    let walked = found.len();
    let mut queue: std::collections::VecDeque<(PathBuf, Vec<usize>)> = found.into_iter().collect();
    let mut seen = BTreeSet::new();
    let mut dequeued = 0;
    while let Some((path, targets)) = queue.pop_front() {
        dequeued += 1;
        let key = match path.strip_prefix(&settings.root) {
            Ok(relative) if dequeued <= walked => canonical_root.join(relative),
            _ => std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()),
        };
        if !seen.insert(key) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = scan::parse_config(&path, bytes, rules, &KnownCertificates::default());
        for fragment in &file.config_sources {
            queue.push_back((fragment.clone(), targets.clone()));
        }
        files.push((file, targets));
    }
    files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(files)
}

/// Per issuer: what is published, what the lock remembers, and what that means now.
struct IssuerView<'a> {
    settings: &'a IssuerSettings,
    keys: &'a IssuerKeys,
    lock: Option<&'a BTreeMap<String, LockedKey>>,
}

enum Verdict {
    /// Should be trusted; add when missing.
    Want(String),
    /// Keep while present; never add (leaving, inside its grace period).
    KeepOnly(String),
    /// Remove when present.
    Drop(String),
    /// Published but not to be trusted yet or any more; never removed while published.
    Ignore(String),
}

impl IssuerView<'_> {
    fn knows(&self, t: &Thumbprint) -> bool {
        self.keys.published.contains_key(t)
            || self.lock.is_some_and(|l| l.contains_key(&t.to_upper_hex()))
    }

    fn verdict(&self, t: &Thumbprint, settings: &Settings, now: OffsetDateTime) -> Verdict {
        let policy = &settings.policy;
        let locked = self.lock.and_then(|l| l.get(&t.to_upper_hex()));
        if let Some(cert) = self.keys.published.get(t) {
            let since = locked.map_or(now, |k| k.first_seen);
            if now > cert.not_after {
                return Verdict::Ignore(format!(
                    "published but expired on {}",
                    rfc3339(cert.not_after)
                ));
            }
            if now < cert.not_before && !policy.add_not_yet_valid {
                return Verdict::Ignore(format!(
                    "published, valid from {} (policy add_not_yet_valid = false)",
                    rfc3339(cert.not_before)
                ));
            }
            let mut reason = format!(
                "published in metadata since {}, valid from {} to {}",
                rfc3339(since),
                rfc3339(cert.not_before),
                rfc3339(cert.not_after)
            );
            if now < cert.not_before {
                reason.push_str(" (not yet valid: the issuer will switch to it later)");
            }
            return Verdict::Want(reason);
        }
        let Some(locked) = locked else {
            return Verdict::Drop("not published by this issuer".into());
        };
        let missing_since = locked.missing_since.unwrap_or(now);
        if policy.remove_expired && now > locked.not_after {
            return Verdict::Drop(format!(
                "expired on {} and no longer published",
                rfc3339(locked.not_after)
            ));
        }
        let grace_end = missing_since + policy.remove_after.0;
        if now >= grace_end {
            Verdict::Drop(format!(
                "absent from metadata since {}, grace of {} elapsed",
                rfc3339(missing_since),
                format_duration(policy.remove_after.0)
            ))
        } else {
            Verdict::KeepOnly(format!(
                "absent from metadata since {}; kept until {} (grace of {})",
                rfc3339(missing_since),
                rfc3339(grace_end),
                format_duration(policy.remove_after.0)
            ))
        }
    }
}

/// Builds the plan for every target file. Reads nothing from the network: the issuers'
/// metadata comes in already loaded.
pub fn build(
    settings: &Settings,
    rules: &RuleSet,
    lock: &Lock,
    issuers: &[IssuerState],
    targets: &[(ConfigFile, Vec<usize>)],
    now: OffsetDateTime,
) -> Plan {
    let mut plan = Plan {
        now,
        issuers: Vec::new(),
        files: Vec::new(),
        notes: Vec::new(),
        errors: Vec::new(),
        lock_before: lock.clone(),
        lock_after: lock.clone(),
    };
    let views: BTreeMap<&str, IssuerView<'_>> = issuers
        .iter()
        .filter_map(|state| {
            let keys = state.loaded.as_ref().ok()?;
            Some((
                state.name.as_str(),
                IssuerView {
                    settings: settings.issuer(&state.name).expect("issuer from settings"),
                    keys,
                    lock: lock.issuers.get(&state.name),
                },
            ))
        })
        .collect();
    for state in issuers {
        if let Err(e) = &state.loaded {
            plan.errors.push(format!("issuer {}: {e}", state.name));
        }
    }

    // Thumbprints still trusted after the plan, per issuer: the lock forgets only keys no
    // target file trusts any more.
    let mut still_trusted: BTreeMap<String, BTreeSet<Thumbprint>> = BTreeMap::new();
    let mut key_actions: BTreeMap<(String, Thumbprint), (&'static str, String)> = BTreeMap::new();

    for (file, target_indices) in targets {
        let mut changes: Vec<PlannedChange> = Vec::new();
        let mut file_error: Option<String> = None;
        let mut touched_registries: BTreeSet<usize> = BTreeSet::new();
        // (registry, issuer) pairs to hold to the lockout guard.
        let mut tracked: Vec<(usize, String)> = Vec::new();

        for &t in target_indices {
            let target = &settings.targets[t];
            let candidates: Vec<&scan::Registry> = file
                .registries
                .iter()
                .filter(|r| target.dialect.as_deref().is_none_or(|d| r.rule.name() == d))
                .filter(|r| {
                    target
                        .authority
                        .as_deref()
                        .is_none_or(|a| r.scope.as_deref() == Some(a))
                })
                .filter(|r| r.rule.spec.entry.key.is_none() || r.container.is_some())
                .collect();
            touched_registries.extend(candidates.iter().map(|r| r.index));
            for issuer_name in &target.issuers {
                let Some(view) = views.get(issuer_name.as_str()) else {
                    continue; // The issuer's error is reported once, above.
                };
                let tracking: Vec<&scan::Registry> = candidates
                    .iter()
                    .copied()
                    .filter(|r| {
                        file.entries_of(r.index).any(|e| {
                            attributable(e) && e.normalized.is_some_and(|t| view.knows(&t))
                        })
                    })
                    .collect();
                let tracking = if !tracking.is_empty() {
                    tracking
                } else {
                    let addable: Vec<&scan::Registry> = candidates
                        .iter()
                        .copied()
                        .filter(|r| r.rule.spec.entry.template.is_some())
                        .collect();
                    match addable.len() {
                        0 => continue,
                        1 => addable,
                        n => {
                            file_error = Some(format!(
                                "{}: {n} registries could take issuer {issuer_name}'s keys and none trusts one yet; set `dialect` or `authority` on the target",
                                file.path.display()
                            ));
                            continue;
                        }
                    }
                };
                for registry in tracking {
                    tracked.push((registry.index, issuer_name.clone()));
                    plan_registry(
                        settings,
                        file,
                        registry,
                        issuer_name,
                        view,
                        now,
                        &mut changes,
                        &mut key_actions,
                    );
                }
            }
        }

        for &r in &touched_registries {
            plan_hygiene(settings, file, r, &views, &mut changes, &mut plan.notes);
        }
        dedupe_changes(&mut changes);

        let result_sets = resulting_sets(file, &changes);
        for (registry, issuer_name) in &tracked {
            let view = &views[issuer_name.as_str()];
            let set = result_sets.get(registry).cloned().unwrap_or_default();
            for t in set.iter().filter(|t| view.knows(t)) {
                still_trusted
                    .entry(issuer_name.clone())
                    .or_default()
                    .insert(*t);
            }
            if changes.is_empty() {
                continue;
            }
            let current_ok = set.iter().any(|t| {
                view.keys
                    .published
                    .get(t)
                    .is_some_and(|c| c.is_current(now))
            });
            if !current_ok {
                file_error = Some(format!(
                    "{}: lockout guard: after these changes the registry at line {} would trust no key that issuer {issuer_name} publishes and that is valid now; nothing written for this file",
                    file.path.display(),
                    file.registries[*registry].line
                ));
            }
        }

        if let Some(e) = file_error {
            plan.errors.push(e);
            continue;
        }
        if changes.is_empty() {
            continue;
        }
        let raw_changes: Vec<Change> = changes.iter().map(|c| c.change.clone()).collect();
        match patch::apply(file, &raw_changes, rules) {
            Ok(after) => plan.files.push(FilePlan {
                display: crate::report::slash_path(
                    file.path.strip_prefix(&settings.root).unwrap_or(&file.path),
                ),
                path: file.path.clone(),
                changes,
                before: file.bytes.clone(),
                after,
            }),
            Err(e) => plan.errors.push(e.to_string()),
        }
    }

    update_lock(settings, &views, &still_trusted, now, &mut plan.lock_after);
    plan.issuers = issuer_reports(
        issuers,
        &plan.lock_after,
        &key_actions,
        now,
        settings.policy.warn_expiring.0,
    );
    plan
}

fn attributable(e: &TrustedEntry) -> bool {
    e.kind == EntryKind::Add && e.effective && !e.placeholder
}

#[allow(clippy::too_many_arguments)]
fn plan_registry(
    settings: &Settings,
    file: &ConfigFile,
    registry: &scan::Registry,
    issuer_name: &str,
    view: &IssuerView<'_>,
    now: OffsetDateTime,
    changes: &mut Vec<PlannedChange>,
    key_actions: &mut BTreeMap<(String, Thumbprint), (&'static str, String)>,
) {
    // The first occurrence stands for the key; later ones are duplicates (hygiene drops them).
    let mut present: BTreeMap<Thumbprint, &TrustedEntry> = BTreeMap::new();
    for entry in file.entries_of(registry.index).filter(|e| attributable(e)) {
        if let Some(t) = entry.normalized.filter(|t| view.knows(t)) {
            present.entry(t).or_insert(entry);
        }
    }
    let mut record = |t: Thumbprint, action: &'static str, reason: &str| {
        let slot = key_actions
            .entry((issuer_name.to_string(), t))
            .or_insert((action, reason.to_string()));
        // add/remove outrank keep in the per-key summary.
        if slot.0 == "keep" {
            *slot = (action, reason.to_string());
        }
    };
    for (t, entry) in &present {
        match view.verdict(t, settings, now) {
            Verdict::Want(reason) | Verdict::KeepOnly(reason) | Verdict::Ignore(reason) => {
                record(*t, "keep", &reason)
            }
            Verdict::Drop(reason) => {
                record(*t, "remove", &reason);
                let index = entry_index(file, entry);
                changes.push(PlannedChange {
                    action: Action::Remove,
                    line: entry.line,
                    thumbprint: Some(*t),
                    issuer: Some(issuer_name.to_string()),
                    reason,
                    change: Change::Remove { entry: index },
                });
            }
        }
    }
    for t in view.keys.published.keys() {
        if present.contains_key(t) {
            continue;
        }
        match view.verdict(t, settings, now) {
            Verdict::Want(reason) => {
                record(*t, "add", &reason);
                changes.push(PlannedChange {
                    action: Action::Add,
                    line: registry.line,
                    thumbprint: Some(*t),
                    issuer: Some(issuer_name.to_string()),
                    reason,
                    change: Change::Add {
                        registry: registry.index,
                        thumbprint: *t,
                        name: new_entry_name(view, registry, &present),
                    },
                });
            }
            Verdict::Ignore(reason) => record(*t, "ignore", &reason),
            Verdict::KeepOnly(_) | Verdict::Drop(_) => {}
        }
    }
}

/// `issuer_name` from keyroll.toml, else the name the registry already uses for this
/// issuer, else the entityID.
fn new_entry_name(
    view: &IssuerView<'_>,
    registry: &scan::Registry,
    present: &BTreeMap<Thumbprint, &TrustedEntry>,
) -> Option<String> {
    if let Some(name) = &view.settings.issuer_name {
        return Some(name.clone());
    }
    if let Some(name) = present.values().find_map(|e| e.issuer_name.clone()) {
        return Some(name);
    }
    registry
        .issuer_name
        .clone()
        .or_else(|| view.keys.entity_ids.iter().next().cloned())
}

fn entry_index(file: &ConfigFile, entry: &TrustedEntry) -> usize {
    file.entries
        .iter()
        .position(|e| e.element == entry.element)
        .expect("entry of this file")
}

/// Duplicates and pasted characters, in every registry a target covers, whoever's keys.
fn plan_hygiene(
    settings: &Settings,
    file: &ConfigFile,
    registry: usize,
    views: &BTreeMap<&str, IssuerView<'_>>,
    changes: &mut Vec<PlannedChange>,
    notes: &mut Vec<String>,
) {
    let mut first_clean: BTreeMap<Thumbprint, u32> = BTreeMap::new();
    for entry in file.entries_of(registry).filter(|e| attributable(e)) {
        if let Some(t) = entry.normalized
            && !entry
                .findings
                .iter()
                .any(|f| f.code == "dirty" || f.code == "spaced" || f.code == "duplicate")
        {
            first_clean.entry(t).or_insert(entry.line);
        }
    }
    for entry in file.entries_of(registry) {
        if entry.placeholder {
            notes.push(format!(
                "{}:{}: placeholder {} left alone",
                file.path.display(),
                entry.line,
                entry.raw
            ));
            continue;
        }
        if !attributable(entry) {
            continue;
        }
        let Some(t) = entry.normalized else {
            notes.push(format!(
                "{}:{}: \"{}\" is not a thumbprint; left alone",
                file.path.display(),
                entry.line,
                entry.raw.escape_debug()
            ));
            continue;
        };
        let index = entry_index(file, entry);
        let known = views.values().any(|v| v.knows(&t));
        let dirt: Vec<&scan::Finding> = entry
            .findings
            .iter()
            .filter(|f| f.code == "dirty" || f.code == "spaced")
            .collect();
        let duplicate_of = entry
            .findings
            .iter()
            .find(|f| f.code == "duplicate")
            .map(|f| {
                f.message
                    .split(':')
                    .next()
                    .unwrap_or("duplicate")
                    .to_string()
            });
        if let Some(of) = duplicate_of {
            changes.push(PlannedChange {
                action: Action::Dedupe,
                line: entry.line,
                thumbprint: Some(t),
                issuer: None,
                reason: format!("{of} (WIF refuses to load duplicate keys)"),
                change: Change::Remove { entry: index },
            });
            continue;
        }
        if !dirt.is_empty() {
            let what = pasted_characters(&entry.decoded);
            match first_clean.get(&t) {
                Some(line) if *line != entry.line => changes.push(PlannedChange {
                    action: Action::Dedupe,
                    line: entry.line,
                    thumbprint: Some(t),
                    issuer: None,
                    reason: format!("{what}; once cleaned it duplicates line {line}"),
                    change: Change::Remove { entry: index },
                }),
                _ => changes.push(PlannedChange {
                    action: Action::Normalize,
                    line: entry.line,
                    thumbprint: Some(t),
                    issuer: None,
                    reason: what,
                    change: Change::Normalize { entry: index },
                }),
            }
        }
        if !known {
            if settings.policy.keep_unknown {
                notes.push(format!(
                    "{}:{}: {t} is not published by any configured issuer and not in keyroll.lock; left alone (keep_unknown)",
                    file.path.display(),
                    entry.line
                ));
            } else {
                changes.push(PlannedChange {
                    action: Action::Remove,
                    line: entry.line,
                    thumbprint: Some(t),
                    issuer: None,
                    reason: "not published by any configured issuer (keep_unknown = false)".into(),
                    change: Change::Remove { entry: index },
                });
            }
        }
    }
}

/// "contained U+200E LEFT-TO-RIGHT MARK at position 1 and spaces", from the checker's notes.
fn pasted_characters(value: &str) -> String {
    let report = crate::thumbprint::check(value);
    let mut parts: Vec<String> = report.breaking_removals().map(|n| n.to_string()).collect();
    let spaces = report.removed.iter().filter(|n| n.is_ascii_space()).count();
    if spaces > 0 {
        parts.push(format!("{spaces} spaces"));
    }
    format!("contained {}", parts.join(", "))
}

/// One change per entry: a removal wins over a normalization of the same entry.
fn dedupe_changes(changes: &mut Vec<PlannedChange>) {
    let removed: BTreeSet<usize> = changes
        .iter()
        .filter_map(|c| match c.change {
            Change::Remove { entry } => Some(entry),
            _ => None,
        })
        .collect();
    let mut seen_entries = BTreeSet::new();
    let mut seen_adds = BTreeSet::new();
    changes.retain(|c| match &c.change {
        Change::Normalize { entry } => !removed.contains(entry) && seen_entries.insert(*entry),
        Change::Remove { entry } => seen_entries.insert(*entry),
        Change::Add {
            registry,
            thumbprint,
            ..
        } => seen_adds.insert((*registry, *thumbprint)),
    });
}

/// What each registry trusts once the changes are made.
fn resulting_sets(
    file: &ConfigFile,
    changes: &[PlannedChange],
) -> BTreeMap<usize, BTreeSet<Thumbprint>> {
    let removed: BTreeSet<usize> = changes
        .iter()
        .filter_map(|c| match c.change {
            Change::Remove { entry } => Some(entry),
            _ => None,
        })
        .collect();
    let mut sets: BTreeMap<usize, BTreeSet<Thumbprint>> = BTreeMap::new();
    for (i, e) in file.entries.iter().enumerate() {
        if attributable(e)
            && !removed.contains(&i)
            && let Some(t) = e.normalized
        {
            sets.entry(e.registry).or_default().insert(t);
        }
    }
    for c in changes {
        if let Change::Add {
            registry,
            thumbprint,
            ..
        } = c.change
        {
            sets.entry(registry).or_default().insert(thumbprint);
        }
    }
    sets
}

fn update_lock(
    settings: &Settings,
    views: &BTreeMap<&str, IssuerView<'_>>,
    still_trusted: &BTreeMap<String, BTreeSet<Thumbprint>>,
    now: OffsetDateTime,
    lock: &mut Lock,
) {
    for (name, view) in views {
        let keys = lock.issuers.entry(name.to_string()).or_default();
        for (t, cert) in &view.keys.published {
            let entry = keys.entry(t.to_upper_hex()).or_insert_with(|| LockedKey {
                sha256: cert.sha256_hex(),
                subject: cert.subject.clone(),
                not_before: cert.not_before,
                not_after: cert.not_after,
                first_seen: now,
                missing_since: None,
            });
            entry.missing_since = None;
        }
        let trusted = still_trusted.get(*name);
        keys.retain(|sha1, key| {
            let published = sha1
                .parse::<Thumbprint>()
                .is_ok_and(|t| view.keys.published.contains_key(&t));
            if published {
                return true;
            }
            let missing_since = *key.missing_since.get_or_insert(now);
            let gone = now >= missing_since + settings.policy.remove_after.0
                || (settings.policy.remove_expired && now > key.not_after);
            let in_use = sha1
                .parse::<Thumbprint>()
                .is_ok_and(|t| trusted.is_some_and(|s| s.contains(&t)));
            !gone || in_use
        });
    }
}

fn issuer_reports(
    issuers: &[IssuerState],
    lock: &Lock,
    key_actions: &BTreeMap<(String, Thumbprint), (&'static str, String)>,
    now: OffsetDateTime,
    warn: time::Duration,
) -> Vec<IssuerReport> {
    issuers
        .iter()
        .map(|state| {
            let mut report = IssuerReport {
                name: state.name.clone(),
                sources: Vec::new(),
                entity_ids: Vec::new(),
                error: state.loaded.as_ref().err().cloned(),
                keys: Vec::new(),
            };
            let Ok(keys) = &state.loaded else {
                return report;
            };
            report.sources = keys.sources.clone();
            report.entity_ids = keys.entity_ids.iter().cloned().collect();
            let locked = lock.issuers.get(&state.name);
            let mut all: BTreeSet<Thumbprint> = keys.published.keys().copied().collect();
            for ((issuer, t), _) in
                key_actions.range((state.name.clone(), Thumbprint::from_bytes([0; 20]))..)
            {
                if issuer != &state.name {
                    break;
                }
                all.insert(*t);
            }
            for t in all {
                let lock_key = locked.and_then(|l| l.get(&t.to_upper_hex()));
                let (subject, not_before, not_after) = match (keys.published.get(&t), lock_key) {
                    (Some(c), _) => (c.subject.clone(), c.not_before, c.not_after),
                    (None, Some(k)) => (k.subject.clone(), k.not_before, k.not_after),
                    (None, None) => continue,
                };
                let (action, reason) = key_actions
                    .get(&(state.name.clone(), t))
                    .cloned()
                    .unwrap_or(("none", "no target file trusts it".into()));
                let status = if now < not_before {
                    "not-yet-valid"
                } else if now > not_after {
                    "expired"
                } else if not_after - now <= warn {
                    "expiring"
                } else {
                    "valid"
                };
                report.keys.push(KeyReport {
                    status,
                    sha1: t,
                    subject,
                    not_before: rfc3339(not_before),
                    not_after: rfc3339(not_after),
                    published: keys.published.contains_key(&t),
                    first_seen: lock_key.map(|k| rfc3339(k.first_seen)),
                    missing_since: lock_key.and_then(|k| k.missing_since).map(rfc3339),
                    action,
                    reason,
                });
            }
            report
        })
        .collect()
}

/// Unified diff of a file's bytes before and after, for people.
pub fn unified_diff(name: &str, before: &[u8], after: &[u8]) -> String {
    let old = String::from_utf8_lossy(before);
    let new = String::from_utf8_lossy(after);
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("finding target files: {0}")]
    Targets(String),
    #[error("the plan has errors; nothing written:\n  {}", .0.join("\n  "))]
    HasErrors(Vec<String>),
    #[error("{path} changed on disk since it was read; nothing written")]
    ChangedOnDisk { path: String },
    #[error(transparent)]
    Write(#[from] patch::PatchError),
}

pub fn lock_path(settings: &Settings) -> PathBuf {
    settings.root.join(crate::lock::FILE_NAME)
}

/// Reads the lock, the issuers' metadata and the target files, and builds the plan.
pub async fn prepare(
    settings: &Settings,
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<Plan, PlanError> {
    let lock = Lock::load(&lock_path(settings))?;
    let issuers = load_issuers(settings, fetcher, now).await;
    let targets = target_files(settings, rules).map_err(PlanError::Targets)?;
    Ok(build(settings, rules, &lock, &issuers, &targets, now))
}

/// What `apply` wrote.
#[derive(Debug, Default)]
pub struct Applied {
    pub files: Vec<PathBuf>,
    pub lock: bool,
}

/// Performs a plan that has no errors: every file is checked unchanged since it was read
/// before any is written, then each is written atomically, then the lock.
pub fn apply(plan: &Plan, settings: &Settings) -> Result<Applied, PlanError> {
    if !plan.errors.is_empty() {
        return Err(PlanError::HasErrors(plan.errors.clone()));
    }
    for file in &plan.files {
        let current = std::fs::read(&file.path).map_err(|e| patch::PatchError::Io {
            file: file.path.display().to_string(),
            detail: e.to_string(),
        })?;
        if current != file.before {
            return Err(PlanError::ChangedOnDisk {
                path: file.path.display().to_string(),
            });
        }
    }
    let writes: Vec<(&Path, &[u8])> = plan
        .files
        .iter()
        .map(|f| (f.path.as_path(), f.after.as_slice()))
        .collect();
    // The lock records only what reached the configs: after a failed write it stays as it was.
    patch::write_many_atomic(&writes)?;
    let mut applied = Applied {
        files: plan.files.iter().map(|f| f.path.clone()).collect(),
        lock: false,
    };
    if plan.lock_changed() {
        patch::write_atomic(&lock_path(settings), plan.lock_after.to_toml().as_bytes())?;
        applied.lock = true;
    }
    Ok(applied)
}
