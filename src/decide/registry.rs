//! Per registry and issuer: which registries of a file track which issuer, and the
//! rollover changes for each (add / remove, or a switch of a single-value setting).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::keys::{IssuerView, Ledger, Verdict};
use crate::decide::patch::Change;
use crate::decide::plan::{ChangeKind, KeyAction, Owner, PlanError, PlannedChange, Reason};
use crate::load::TargetFile;
use crate::load::scan::{self, ConfigFile, EntryKind, Registry, TrustedEntry};
use crate::model::settings::Settings;
use crate::model::thumbprint::Thumbprint;

/// An entry WIF reads as trusting its key: an `<add>` not withdrawn later, not a placeholder.
pub fn attributable(e: &TrustedEntry) -> bool {
    e.kind == EntryKind::Add && e.effective && !e.placeholder
}

/// A setting that holds one thumbprint (appSettings): the app trusts one key at a time.
pub fn single_value(r: &Registry) -> bool {
    r.rule.spec.entry.key.is_some()
}

pub fn entry_index(file: &ConfigFile, entry: &TrustedEntry) -> usize {
    file.entries
        .iter()
        .position(|e| e.element == entry.element && e.value == entry.value)
        .unwrap_or(0)
}

/// Which issuer each registry of the file tracks: a registry that already trusts one of an
/// issuer's keys, else the one registry that could take them.
pub struct Assignment {
    /// (registry, issuer) pairs, in keyroll.toml's issuer order.
    pub tracked: Vec<(usize, String)>,
    /// Every registry a target covers (hygiene looks at all of them).
    pub touched: Vec<usize>,
}

/// The registries of `file` a target covers: of its dialect and authority, holding a set
/// (or a setting that exists), and in a config transform only a Replace'd one.
pub fn candidates<'f>(
    spec: &crate::model::settings::TargetSettings,
    file: &'f ConfigFile,
) -> Vec<&'f Registry> {
    file.registries
        .iter()
        .filter(|r| spec.dialect.as_deref().is_none_or(|d| r.rule.name() == d))
        .filter(|r| {
            spec.authority
                .as_deref()
                .is_none_or(|a| r.scope.as_deref() == Some(a))
        })
        .filter(|r| !single_value(r) || r.container.is_some())
        // In a config transform only a Replace'd registry holds a trusted set.
        .filter(|r| !file.is_transform || r.replaced)
        .collect()
}

pub fn assign(
    settings: &Settings,
    target: &TargetFile,
    views: &BTreeMap<&str, IssuerView<'_>>,
    errors: &mut Vec<PlanError>,
) -> Assignment {
    let file = &target.file;
    let mut tracked: Vec<(usize, String)> = Vec::new();
    let mut touched: Vec<usize> = Vec::new();
    for &t in &target.targets {
        let spec = &settings.targets[t];
        let candidates = candidates(spec, file);
        for r in &candidates {
            if !touched.contains(&r.index) {
                touched.push(r.index);
            }
        }
        for issuer in &spec.issuers {
            let Some(view) = views.get(issuer.as_str()) else {
                continue; // The issuer's error is reported once.
            };
            let knowing: Vec<&Registry> = candidates
                .iter()
                .copied()
                .filter(|r| {
                    file.entries_of(r.index)
                        .any(|e| attributable(e) && e.normalized.is_some_and(|t| view.knows(&t)))
                })
                .collect();
            let chosen = if !knowing.is_empty() {
                knowing
            } else {
                let addable: Vec<&Registry> = candidates
                    .iter()
                    .copied()
                    .filter(|r| !single_value(r) && r.rule.spec.entry.template.is_some())
                    .collect();
                if addable.len() > 1 {
                    errors.push(PlanError::AmbiguousRegistry {
                        file: target.display.clone(),
                        issuer: issuer.clone(),
                        count: addable.len(),
                    });
                    continue;
                }
                addable
            };
            for r in chosen {
                if !tracked.contains(&(r.index, issuer.clone())) {
                    tracked.push((r.index, issuer.clone()));
                }
            }
        }
    }
    Assignment { tracked, touched }
}

/// The line of a `<remove>` in the registry that withdraws `t`, if any.
fn withdrawn_by(file: &ConfigFile, registry: usize, t: &Thumbprint) -> Option<u32> {
    file.entries_of(registry)
        .find(|e| e.kind == EntryKind::Remove && e.normalized == Some(*t))
        .map(|e| e.line)
}

/// The file being decided, and when.
pub struct Cx<'a> {
    pub settings: &'a Settings,
    pub file: &'a ConfigFile,
    pub display: &'a str,
    pub now: OffsetDateTime,
}

/// Where decisions about one file report what they learn besides changes.
pub struct Sink<'a> {
    pub ledger: &'a mut Ledger,
    pub notes: &'a mut Vec<String>,
    pub errors: &'a mut Vec<PlanError>,
}

/// Rollover changes for one issuer in one multi-value registry.
pub fn rollover(
    cx: &Cx<'_>,
    registry: &Registry,
    issuer: &str,
    view: &IssuerView<'_>,
    sink: &mut Sink<'_>,
) -> Vec<PlannedChange> {
    let (settings, file, now, display) = (cx.settings, cx.file, cx.now, cx.display);
    let (ledger, notes) = (&mut *sink.ledger, &mut *sink.notes);
    let mut changes = Vec::new();
    // Every entry holding a key (a clean one and a pasted copy can both be there): a key
    // that goes, goes with all of them.
    let mut present: BTreeMap<Thumbprint, Vec<&TrustedEntry>> = BTreeMap::new();
    for entry in file.entries_of(registry.index).filter(|e| attributable(e)) {
        if let Some(t) = entry.normalized.filter(|t| view.knows(t)) {
            present.entry(t).or_default().push(entry);
        }
    }
    for (t, entries) in &present {
        match view.verdict(t, settings, now) {
            Verdict::Want(reason) => ledger.record(issuer, *t, KeyAction::Keep, reason.to_string()),
            Verdict::KeepOnly(reason) | Verdict::Ignore(reason) => {
                ledger.record(issuer, *t, KeyAction::Keep, reason)
            }
            Verdict::Drop(reason) => {
                ledger.record(issuer, *t, KeyAction::Remove, reason.to_string());
                for entry in entries {
                    changes.push(PlannedChange {
                        kind: ChangeKind::Remove,
                        owner: Owner::Issuer(issuer.to_string()),
                        published_with: Some(issuer.to_string()),
                        line: entry.line,
                        thumbprint: Some(*t),
                        reason: reason.clone(),
                        lockout_window: false,
                        note: None,
                        change: Change::Remove {
                            entry: entry_index(file, entry),
                        },
                    });
                }
            }
        }
    }
    // A registry whose keys a deploy tool fills in (`#{AdfsThumbprint}`): a key added beside
    // the placeholder becomes a second equal `<add>` once the deploy puts the same key there,
    // and WIF refuses the config. Nothing is added to it; the note says what to set instead.
    let placeholder = file.entries_of(registry.index).find(|e| e.placeholder);
    for t in view.keys.published.keys() {
        if present.contains_key(t) {
            continue;
        }
        match view.verdict(t, settings, now) {
            Verdict::Want(reason) if placeholder.is_some() => {
                let p = placeholder.expect("checked");
                let why = format!(
                    "not added: this registry's keys are filled in at deploy time (placeholder {} at {display}:{}), and an added key would be a duplicate WIF refuses once the deploy sets the same one; set it in the deploy's variables",
                    p.raw, p.line
                );
                notes.push(format!("{display}:{}: {t} ({issuer}) {why}", registry.line));
                ledger.record(issuer, *t, KeyAction::Ignore, format!("{reason}; {why}"));
            }
            Verdict::Want(reason) => {
                if let Some(line) = withdrawn_by(file, registry.index, t) {
                    // A person removed it on purpose; keyroll reports and never overrides.
                    let why = format!(
                        "published, but withdrawn by <remove> at {display}:{line}; keyroll does not override a deliberate removal"
                    );
                    notes.push(format!("{display}:{line}: {t} ({issuer}) {why}"));
                    ledger.record(issuer, *t, KeyAction::Ignore, why);
                    continue;
                }
                ledger.record(issuer, *t, KeyAction::Add, reason.to_string());
                let (name, why) = new_entry_name(file, registry, view);
                let note = registry.rule.spec.entry.name.as_ref().map(|_| match &name {
                    Some(n) => format!("name \"{n}\": {why}"),
                    None => format!("no name: {why}"),
                });
                changes.push(PlannedChange {
                    kind: ChangeKind::Add,
                    owner: Owner::Issuer(issuer.to_string()),
                    published_with: Some(issuer.to_string()),
                    line: registry.line,
                    thumbprint: Some(*t),
                    reason,
                    lockout_window: false,
                    note,
                    change: Change::Add {
                        registry: registry.index,
                        thumbprint: *t,
                        name: name.clone(),
                    },
                });
            }
            Verdict::Ignore(reason) => ledger.record(issuer, *t, KeyAction::Ignore, reason),
            Verdict::KeepOnly(_) | Verdict::Drop(_) => {}
        }
    }
    changes
}

/// The `name` a new entry gets, so the app keeps seeing the same issuer name: the name the
/// registry already uses for this issuer's keys; else the one name every entry of the
/// registry uses; else `issuer_name` from keyroll.toml; else the scope's issuer name (VINR
/// authority); else the entityID.
pub fn new_entry_name(
    file: &ConfigFile,
    registry: &Registry,
    view: &IssuerView<'_>,
) -> (Option<String>, String) {
    let entries: Vec<&TrustedEntry> = file
        .entries_of(registry.index)
        .filter(|e| attributable(e))
        .collect();
    let own: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.normalized.is_some_and(|t| view.knows(&t)))
        .filter_map(|e| e.issuer_name.as_deref())
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(name) = own.iter().next() {
        let why = if own.len() > 1 {
            format!(
                "the first of the names this registry gives the issuer's keys, which disagree ({}): check which one the app expects",
                own.iter().copied().collect::<Vec<_>>().join(", ")
            )
        } else {
            "the name this registry already gives the issuer's other keys".to_string()
        };
        return (Some(name.to_string()), why);
    }
    let names: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.issuer_name.as_deref())
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() == 1 {
        return (
            names.into_iter().next().map(str::to_string),
            "the one name every entry of this registry uses".into(),
        );
    }
    if let Some(name) = &view.settings.issuer_name {
        return (Some(name.clone()), "issuer_name in keyroll.toml".into());
    }
    if let Some(name) = &registry.issuer_name {
        return (Some(name.clone()), "the authority's name".into());
    }
    (
        view.keys.entity_ids.iter().next().cloned(),
        "the issuer's entityID (the registry names no key of it yet)".into(),
    )
}

/// A setting that holds one thumbprint cannot trust the old and the new key at once: it is
/// left alone while its key is published, and switched to the issuer's current key only
/// when its key leaves the metadata — a lockout window the plan says out loud.
pub fn single_value_roll(
    cx: &Cx<'_>,
    registry: &Registry,
    issuers: &[&str],
    views: &BTreeMap<&str, IssuerView<'_>>,
    sink: &mut Sink<'_>,
) -> Vec<PlannedChange> {
    let (file, now, display) = (cx.file, cx.now, cx.display);
    let (ledger, notes, errors) = (&mut *sink.ledger, &mut *sink.notes, &mut *sink.errors);
    let mut changes = Vec::new();
    for entry in file.entries_of(registry.index).filter(|e| attributable(e)) {
        let Some(t) = entry.normalized else { continue };
        let Some((issuer, view)) = issuers
            .iter()
            .filter_map(|i| views.get(i).map(|v| (*i, v)))
            .find(|(_, v)| v.knows(&t))
        else {
            continue;
        };
        let newest_current = view
            .keys
            .published
            .iter()
            .filter(|(_, c)| c.is_current(now))
            .max_by_key(|(_, c)| c.not_before)
            .map(|(k, _)| *k);
        if view.keys.published.contains_key(&t) {
            ledger.record(
                issuer,
                t,
                KeyAction::Keep,
                "held by a single-value setting".into(),
            );
            for other in view.keys.published.keys().filter(|k| **k != t) {
                notes.push(format!(
                    "{display}:{}: {} holds one thumbprint, so the app cannot trust {other} ({issuer}) beside {t}; keyroll switches it when {t} leaves the metadata",
                    entry.line,
                    entry.key.as_deref().unwrap_or("the setting")
                ));
            }
            continue;
        }
        let Some(new) = newest_current else {
            errors.push(PlanError::NoReplacement {
                file: display.to_string(),
                line: entry.line,
                issuer: issuer.to_string(),
                old: t,
            });
            continue;
        };
        let reason = Reason::SingleValueRoll { old: t };
        ledger.record(issuer, t, KeyAction::Remove, reason.to_string());
        ledger.record(issuer, new, KeyAction::Add, reason.to_string());
        changes.push(PlannedChange {
            kind: ChangeKind::Replace,
            owner: Owner::Issuer(issuer.to_string()),
            published_with: Some(issuer.to_string()),
            line: entry.line,
            thumbprint: Some(new),
            reason,
            lockout_window: true,
            note: None,
            change: Change::Replace {
                entry: entry_index(file, entry),
                thumbprint: new,
            },
        });
    }
    changes
}

/// True when the file's registries use `scan`'s notion of a dirty value for `entry`.
pub fn is_dirty(entry: &TrustedEntry) -> bool {
    entry.findings.iter().any(|f| f.code == scan::Code::Dirty)
}
