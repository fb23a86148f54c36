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
use crate::decide::patch::Change;
use crate::decide::plan::{ChangeKind, Owner, PlannedChange, Reason};
use crate::load::scan::{Code, ConfigFile, TrustedEntry};
use crate::model::lock::Lock;
use crate::model::settings::Settings;
use crate::model::thumbprint::Thumbprint;

pub struct HygieneContext<'a, 'v> {
    pub settings: &'a Settings,
    pub views: &'a BTreeMap<&'a str, IssuerView<'v>>,
    /// Issuers tracking this registry, in keyroll.toml's order.
    pub trackers: Vec<&'a str>,
    /// Issuers this file's targets name that failed this run (to load, or the trust
    /// checks): their keys would look unknown.
    pub failed: Vec<&'a str>,
    /// keyroll.lock as read: a key no loaded issuer knows may still be in it (a failed
    /// issuer's, or under a table keyroll.toml no longer names), and the note says so.
    pub lock: &'a Lock,
    pub display: &'a str,
}

impl HygieneContext<'_, '_> {
    /// The keyroll.lock tables that hold `t` (no loaded issuer knows it, so these are
    /// failed issuers' or tables keyroll.toml no longer names).
    fn locked_under(&self, t: &Thumbprint) -> Vec<&str> {
        let sha1 = t.to_upper_hex();
        self.lock
            .issuers
            .iter()
            .filter(|(_, keys)| keys.contains_key(&sha1))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Why a key no loaded issuer knows is left alone, saying truly whether keyroll.lock
    /// holds it: after a refused takeover the old key is in keyroll.lock, under the issuer
    /// that failed, and "not in keyroll.lock" would send the reader the wrong way.
    fn unknown_note(&self, locked: &[&str]) -> String {
        let quoted = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (failed, stale): (Vec<&str>, Vec<&str>) = locked
            .iter()
            .partition(|name| self.settings.issuer(name).is_some());
        if !failed.is_empty() {
            return format!(
                "is in keyroll.lock for issuer {}, which failed this run (see its error); left alone",
                quoted(&failed)
            );
        }
        if !stale.is_empty() {
            return format!(
                "is in keyroll.lock only under issuer {}, which keyroll.toml no longer defines; left alone (delete that table from keyroll.lock if the issuer is gone)",
                quoted(&stale)
            );
        }
        if !self.failed.is_empty() {
            return format!(
                "is not published by any issuer that loaded and not in keyroll.lock; left alone (issuer {} failed, so its keys cannot be told apart)",
                quoted(&self.failed)
            );
        }
        "is not published by any configured issuer and not in keyroll.lock; left alone (keep_unknown)"
            .to_string()
    }

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
    let first_clean = first_clean_lines(file, registry);
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
            changes.push(drop_duplicate(ctx, file, entry, of_line));
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
        let fixes = EntryFixes {
            ctx,
            file,
            entry,
            t,
            single,
        };
        fixes.clean(&first_clean, &mut changes);
        fixes.unknown(notes, &mut changes);
    }
    changes
}

/// The line of the first clean entry of each key (else of its first pasted copy): a pasted
/// copy of it is a duplicate.
fn first_clean_lines(file: &ConfigFile, registry: usize) -> BTreeMap<Thumbprint, u32> {
    let mut first_clean: BTreeMap<Thumbprint, u32> = BTreeMap::new();
    for entry in file.entries_of(registry).filter(|e| attributable(e)) {
        if let Some(t) = entry.normalized
            && !is_dirty(entry)
            && entry.duplicate_of.is_none()
        {
            first_clean.entry(t).or_insert(entry.line);
        }
    }
    // A key with no clean entry: the first pasted copy is the one cleaned, and every later
    // copy of the same key is dropped (two cleaned copies would be two equal `<add>`s, which
    // WIF refuses).
    for entry in file.entries_of(registry).filter(|e| attributable(e)) {
        if let Some(t) = entry.normalized
            && is_dirty(entry)
            && entry.duplicate_of.is_none()
        {
            first_clean.entry(t).or_insert(entry.line);
        }
    }
    first_clean
}

/// Removes a second equal entry of a registry that holds many.
fn drop_duplicate(
    ctx: &HygieneContext<'_, '_>,
    file: &ConfigFile,
    entry: &TrustedEntry,
    of_line: u32,
) -> PlannedChange {
    let t = entry.normalized;
    PlannedChange {
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
    }
}

/// What hygiene does to one attributable entry holding the thumbprint `t`.
struct EntryFixes<'c, 'a, 'v> {
    ctx: &'c HygieneContext<'a, 'v>,
    file: &'c ConfigFile,
    entry: &'c TrustedEntry,
    t: Thumbprint,
    /// The registry holds one value, so duplicates and unknown keys are not hygiene's.
    single: bool,
}

impl EntryFixes<'_, '_, '_> {
    fn change(&self, kind: ChangeKind, reason: Reason) -> PlannedChange {
        let index = entry_index(self.file, self.entry);
        PlannedChange {
            kind,
            owner: Owner::Hygiene,
            published_with: self.ctx.owner_of(&self.t),
            line: self.entry.line,
            thumbprint: Some(self.t),
            reason,
            lockout_window: false,
            note: None,
            change: if kind == ChangeKind::Normalize {
                Change::Normalize { entry: index }
            } else {
                Change::Remove { entry: index }
            },
        }
    }

    /// Pasted characters cleaned (or the entry dropped, when a clean one of the same key
    /// came first); under `tidy`, spaces and lowercase rewritten.
    fn clean(&self, first_clean: &BTreeMap<Thumbprint, u32>, changes: &mut Vec<PlannedChange>) {
        let entry = self.entry;
        let spaced = entry.findings.iter().any(|f| f.code == Code::Spaced);
        let lower = entry.findings.iter().any(|f| f.code == Code::Lowercase)
            && !crate::decide::patch::file_uses_lowercase(self.file);
        if is_dirty(entry) {
            let what = pasted_characters(&entry.decoded);
            match first_clean.get(&self.t) {
                Some(line) if *line != entry.line && !self.single => changes.push(self.change(
                    ChangeKind::Dedupe,
                    Reason::PastedDuplicate {
                        what,
                        of_line: *line,
                    },
                )),
                _ => changes.push(self.change(ChangeKind::Normalize, Reason::Pasted { what })),
            }
        } else if self.ctx.settings.policy.tidy && (spaced || lower) {
            let what = match (spaced, lower) {
                (true, true) => "spaced, lowercase",
                (true, false) => "spaced",
                _ => "lowercase",
            };
            changes.push(self.change(ChangeKind::Normalize, Reason::Untidy { what: what.into() }));
        }
    }

    /// A key no loaded issuer knows: removed under `keep_unknown = false`, unless keyroll
    /// cannot be sure it is unknown (an issuer failed, or keyroll.lock holds it).
    fn unknown(&self, notes: &mut Vec<String>, changes: &mut Vec<PlannedChange>) {
        let (ctx, t) = (self.ctx, self.t);
        let known = ctx.views.values().any(|v| v.knows(&t));
        if !known && !self.single {
            let locked = ctx.locked_under(&t);
            if ctx.settings.policy.keep_unknown || !ctx.failed.is_empty() || !locked.is_empty() {
                notes.push(format!(
                    "{}:{}: {t} {}",
                    ctx.display,
                    self.entry.line,
                    ctx.unknown_note(&locked)
                ));
            } else {
                changes.push(self.change(ChangeKind::Remove, Reason::Unknown));
            }
        }
    }
}

/// "contained U+200E LEFT-TO-RIGHT MARK at position 1 and spaces", from the checker's notes.
fn pasted_characters(value: &str) -> String {
    let report = crate::model::thumbprint::check(value);
    let mut parts: Vec<String> = report.breaking_removals().map(|n| n.to_string()).collect();
    let spaces = report.removed.iter().filter(|n| n.is_ascii_space()).count();
    if spaces > 0 {
        parts.push(format!("{spaces} spaces"));
    }
    format!("contained {}", parts.join(", "))
}
