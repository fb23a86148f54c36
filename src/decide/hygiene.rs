//! Hygiene: what a registry needs so that WIF loads it and its entries match, whoever's
//! keys they hold — duplicates dropped, pasted characters cleaned, (under `tidy`) spaces and
//! lowercase rewritten, and (under `keep_unknown = false`) keys no issuer publishes removed.
//!
//! Hygiene is decided once, with every issuer loaded, and published in exactly one pull
//! request: that of the issuer whose key the entry holds, else that of the first issuer
//! (in keyroll.toml's order) that tracks the registry.

use std::collections::BTreeMap;

use super::keys::IssuerView;
use super::registry::{attributable, entry_index, is_dirty, single_value};
use crate::patch::Change;
use crate::plan::{ChangeKind, Owner, PlannedChange, Reason};
use crate::scan::{Code, ConfigFile};
use crate::settings::Settings;
use crate::thumbprint::Thumbprint;

pub struct HygieneContext<'a, 'v> {
    pub settings: &'a Settings,
    pub views: &'a BTreeMap<&'a str, IssuerView<'v>>,
    /// Issuers tracking this registry, in keyroll.toml's order.
    pub trackers: Vec<&'a str>,
    /// An issuer this file's targets name failed to load: its keys would look unknown.
    pub an_issuer_failed: bool,
    pub display: &'a str,
}

impl HygieneContext<'_, '_> {
    fn owner_of(&self, t: &Thumbprint) -> Option<String> {
        self.trackers
            .iter()
            .find(|i| self.views.get(*i).is_some_and(|v| v.knows(t)))
            .or(self.trackers.first())
            .map(|i| i.to_string())
    }
}

pub fn hygiene(
    ctx: &HygieneContext<'_, '_>,
    file: &ConfigFile,
    registry: usize,
    notes: &mut Vec<String>,
) -> Vec<PlannedChange> {
    let mut changes = Vec::new();
    let single = single_value(&file.registries[registry]);
    let tidy = ctx.settings.policy.tidy;
    let mut first_clean: BTreeMap<Thumbprint, u32> = BTreeMap::new();
    for entry in file.entries_of(registry).filter(|e| attributable(e)) {
        if let Some(t) = entry.normalized
            && !is_dirty(entry)
            && entry.duplicate_of.is_none()
        {
            first_clean.entry(t).or_insert(entry.line);
        }
    }
    for entry in file.entries_of(registry) {
        if entry.placeholder {
            notes.push(format!(
                "{}:{}: placeholder {} left alone",
                ctx.display, entry.line, entry.raw
            ));
            continue;
        }
        if let (Some(of_line), false) = (entry.duplicate_of, single) {
            // Dropped whether or not a later `<remove>` withdraws it: WIF fails at the
            // second equal `<add>` before it reads the `<remove>`.
            let t = entry.normalized;
            changes.push(PlannedChange {
                kind: ChangeKind::Dedupe,
                owner: Owner::Hygiene,
                published_with: t
                    .and_then(|t| ctx.owner_of(&t))
                    .or_else(|| ctx.trackers.first().map(|i| i.to_string())),
                line: entry.line,
                thumbprint: t,
                reason: Reason::Duplicate { of_line },
                lockout_window: false,
                note: None,
                change: Change::Remove {
                    entry: entry_index(file, entry),
                },
            });
            continue;
        }
        if !attributable(entry) {
            continue;
        }
        let Some(t) = entry.normalized else {
            notes.push(format!(
                "{}:{}: \"{}\" is not a thumbprint; left alone",
                ctx.display,
                entry.line,
                entry.raw.escape_debug()
            ));
            continue;
        };
        let index = entry_index(file, entry);
        let change = |kind, reason| PlannedChange {
            kind,
            owner: Owner::Hygiene,
            published_with: ctx.owner_of(&t),
            line: entry.line,
            thumbprint: Some(t),
            reason,
            lockout_window: false,
            note: None,
            change: if kind == ChangeKind::Normalize {
                Change::Normalize { entry: index }
            } else {
                Change::Remove { entry: index }
            },
        };
        let spaced = entry.findings.iter().any(|f| f.code == Code::Spaced);
        let lower = entry.findings.iter().any(|f| f.code == Code::Lowercase)
            && !crate::patch::file_uses_lowercase(file);
        if is_dirty(entry) {
            let what = pasted_characters(&entry.decoded);
            match first_clean.get(&t) {
                Some(line) if *line != entry.line && !single => changes.push(change(
                    ChangeKind::Dedupe,
                    Reason::PastedDuplicate {
                        what,
                        of_line: *line,
                    },
                )),
                _ => changes.push(change(ChangeKind::Normalize, Reason::Pasted { what })),
            }
        } else if tidy && (spaced || lower) {
            let what = match (spaced, lower) {
                (true, true) => "spaced, lowercase",
                (true, false) => "spaced",
                _ => "lowercase",
            };
            changes.push(change(
                ChangeKind::Normalize,
                Reason::Untidy { what: what.into() },
            ));
        }
        let known = ctx.views.values().any(|v| v.knows(&t));
        if !known && !single {
            if ctx.settings.policy.keep_unknown || ctx.an_issuer_failed {
                notes.push(format!(
                    "{}:{}: {t} is not published by any configured issuer and not in keyroll.lock; left alone ({})",
                    ctx.display,
                    entry.line,
                    if ctx.an_issuer_failed {
                        "an issuer failed to load, so its keys cannot be told apart"
                    } else {
                        "keep_unknown"
                    }
                ));
            } else {
                changes.push(change(ChangeKind::Remove, Reason::Unknown));
            }
        }
    }
    changes
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
