//! Which config entries and table rows are an issuer's: where the target files trust each
//! key *for this issuer*. Two uses, with different evidence:
//! - continuity (a document must list some key the configs trust for the issuer) may use
//!   the document's own keys and entityIDs to tell which entries are the issuer's;
//! - vouching (a signer the configs trust for the issuer may introduce new keys) may not:
//!   a document signed by another party's key that also lists that key would otherwise
//!   make the key "this issuer's" and so vouch for itself.

use std::collections::BTreeSet;

use crate::decide::registry::{self, attributable, is_dirty};
use crate::decide::trust::TrustedAt;
use crate::load::Inputs;
use crate::load::scan::TrustedEntry;
use crate::model::thumbprint::Thumbprint;

/// What may show that a config entry or table row is this issuer's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Evidence {
    /// keyroll.toml, keyroll.lock and the issuer's documents as read now.
    WithDocument,
    /// Only what was known before the documents were read: keyroll.toml and keyroll.lock.
    History,
}

/// What is known of the issuer and of the others, before looking at one registry.
struct Known<'a> {
    /// Keys this issuer publishes (with [`Evidence::WithDocument`]) or keyroll.lock holds
    /// for it.
    own: BTreeSet<Thumbprint>,
    /// Keys any other issuer publishes or keyroll.lock holds for it: never this issuer's.
    others: BTreeSet<Thumbprint>,
    /// The issuer's entityIDs: keyroll.toml's, and the documents' with WithDocument.
    entity_ids: BTreeSet<&'a str>,
    /// The names entries of keyroll.lock's keys for this issuer carry, in any of its
    /// registries (History only): an entry under another name is not its.
    lock_names: BTreeSet<&'a str>,
    /// Names that say "this issuer" without the document: keyroll.toml's entity_id and the
    /// issuer's own name there.
    hints: BTreeSet<&'a str>,
    evidence: Evidence,
}

/// `file:line` of entries that load and match and that keyroll attributes to the issuer
/// (for [`Evidence::History`]: a signer trusted there vouches for its documents, and only
/// for them). An entry is this issuer's when no other issuer publishes its key or has it in
/// keyroll.lock (another issuer's key in a shared registry never vouches), and:
/// - its key is one this issuer publishes (WithDocument) or keyroll.lock holds for it; or
/// - its `name` is the one the registry's entries of the issuer's known keys carry; or
/// - (History, with keyroll.lock naming none of the registry's entries) its name is one
///   the issuer's locked keys carry elsewhere, or keyroll.toml's entity_id or issuer name;
/// - (History, nothing known yet) its name is such a hint, or its registry is one only this
///   issuer's targets cover and every entry there carries the same name;
/// - (WithDocument, nothing known in the registry) its registry is one only this issuer's
///   targets cover, or its name is one of the issuer's entityIDs.
pub fn trusted_in_configs(inputs: &Inputs, issuer: &str, evidence: Evidence) -> TrustedAt {
    let known = Known::of(inputs, issuer, evidence);
    let mut at = TrustedAt::new();
    for target in &inputs.targets {
        let file = &target.file;
        // Per registry: whether this issuer's targets cover it, and whether others' do.
        let mut mine: BTreeSet<usize> = BTreeSet::new();
        let mut shared: BTreeSet<usize> = BTreeSet::new();
        for &t in &target.targets {
            let spec = &inputs.settings.targets[t];
            let names_me = spec.issuers.iter().any(|i| i == issuer);
            let names_other = spec.issuers.iter().any(|i| i != issuer);
            for r in registry::candidates(spec, file) {
                if names_me {
                    mine.insert(r.index);
                }
                if names_other {
                    shared.insert(r.index);
                }
            }
        }
        for &r in &mine {
            let entries: Vec<&TrustedEntry> = file
                .entries_of(r)
                .filter(|e| attributable(e) && !is_dirty(e))
                .collect();
            for entry in known.attributed(&entries, shared.contains(&r)) {
                if let Some(t) = entry.normalized {
                    at.entry(t)
                        .or_insert_with(|| format!("{}:{}", target.display, entry.line));
                }
            }
        }
    }
    trusted_in_tables(inputs, issuer, &known.entity_ids, &mut at);
    at
}

impl<'a> Known<'a> {
    fn of(inputs: &'a Inputs, issuer: &'a str, evidence: Evidence) -> Known<'a> {
        let settings = &inputs.settings;
        let known_by = |name: &str, published: bool| -> BTreeSet<Thumbprint> {
            let listed = inputs
                .issuers
                .iter()
                .filter(|i| published && i.name == name)
                .filter_map(|i| i.keys.as_ref().ok())
                .flat_map(|k| k.published.keys().copied());
            let locked = inputs
                .lock
                .issuers
                .get(name)
                .into_iter()
                .flat_map(|t| t.keys().filter_map(|k| k.parse::<Thumbprint>().ok()));
            listed.chain(locked).collect()
        };
        let own = known_by(issuer, evidence == Evidence::WithDocument);
        // Another issuer's documents are evidence against an entry being this one's.
        let others: BTreeSet<Thumbprint> = settings
            .issuers
            .iter()
            .map(|i| i.name.as_str())
            .chain(inputs.lock.issuers.keys().map(String::as_str))
            .filter(|name| *name != issuer)
            .flat_map(|name| known_by(name, true))
            .collect();
        let configured = settings.issuer(issuer).and_then(|i| i.entity_id.as_deref());
        let mut entity_ids: BTreeSet<&str> = configured.into_iter().collect();
        if evidence == Evidence::WithDocument {
            entity_ids.extend(
                inputs
                    .issuers
                    .iter()
                    .filter(|i| i.name == issuer)
                    .filter_map(|i| i.keys.as_ref().ok())
                    .flat_map(|k| k.entity_ids.iter().map(String::as_str)),
            );
        }
        let lock_names = if evidence == Evidence::History {
            names_of(inputs, issuer, &own)
        } else {
            BTreeSet::new()
        };
        let hints = configured.into_iter().chain([issuer]).collect();
        Known {
            own,
            others,
            entity_ids,
            lock_names,
            hints,
            evidence,
        }
    }

    /// The entries of one registry (attributable and clean) that are this issuer's.
    fn attributed<'e>(&self, entries: &[&'e TrustedEntry], shared: bool) -> Vec<&'e TrustedEntry> {
        let my_names: BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.normalized.is_some_and(|t| self.own.contains(&t)))
            .filter_map(|e| name_of(e))
            .collect();
        let unclaimed: Vec<&'e TrustedEntry> = entries
            .iter()
            .copied()
            .filter(|e| e.normalized.is_some_and(|t| !self.others.contains(&t)))
            .collect();
        // Every entry no other issuer claims is under one name (or none): the registry is
        // one party's. Under several, nothing but the issuer's history says which is whose.
        let one_name = unclaimed
            .iter()
            .map(|e| name_of(e))
            .collect::<BTreeSet<_>>()
            .len()
            <= 1;
        let history = self.evidence == Evidence::History;
        unclaimed
            .into_iter()
            .filter(|e| {
                let Some(t) = e.normalized else { return false };
                if self.own.contains(&t) {
                    return true;
                }
                match name_of(e) {
                    Some(n) if !my_names.is_empty() => my_names.contains(n),
                    Some(n) if history && !self.lock_names.is_empty() => {
                        self.lock_names.contains(n) || self.hints.contains(n)
                    }
                    Some(n) if history => self.hints.contains(n) || (!shared && one_name),
                    Some(n) => !shared || self.entity_ids.contains(n),
                    None if history => {
                        !shared && my_names.is_empty() && self.lock_names.is_empty() && one_name
                    }
                    None => !shared && my_names.is_empty(),
                }
            })
            .collect()
    }
}

/// An entry's `name`, when it has one.
fn name_of(e: &TrustedEntry) -> Option<&str> {
    e.issuer_name.as_deref().filter(|n| !n.is_empty())
}

/// The names the issuer's entries of `keys` carry, in every registry its targets cover.
fn names_of<'a>(
    inputs: &'a Inputs,
    issuer: &str,
    keys: &BTreeSet<Thumbprint>,
) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    for target in &inputs.targets {
        for &t in &target.targets {
            let spec = &inputs.settings.targets[t];
            if !spec.issuers.iter().any(|i| i == issuer) {
                continue;
            }
            for r in registry::candidates(spec, &target.file) {
                names.extend(
                    target
                        .file
                        .entries_of(r.index)
                        .filter(|e| attributable(e) && !is_dirty(e))
                        .filter(|e| e.normalized.is_some_and(|t| keys.contains(&t)))
                        .filter_map(|e| e.issuer_name.as_deref())
                        .filter(|n| !n.is_empty()),
                );
            }
        }
    }
    names
}

/// The rows a `[[database]]` of this issuer alone holds (live, else keyroll.lock's record)
/// count as trusted, as config entries do: a first run whose metadata lists none of them is
/// an identity change, and a signer found there vouches. K2's shared table counts only the
/// rows whose issuer column is one of the issuer's entityIDs (for vouching, keyroll.toml's).
fn trusted_in_tables(
    inputs: &Inputs,
    issuer: &str,
    entity_ids: &BTreeSet<&str>,
    at: &mut TrustedAt,
) {
    use crate::load::database::Live;
    for db in &inputs.settings.databases {
        if db.issuers.len() != 1 || db.issuers[0] != issuer {
            continue;
        }
        let k2 = db.preset == Some(crate::model::database::Preset::K2ClaimIssuer);
        let rows: Vec<&str> = match inputs.databases.get(&db.name) {
            Some(Live::Read(table)) => table
                .rows
                .iter()
                .filter(|r| !k2 || r.issuer.as_deref().is_some_and(|i| entity_ids.contains(i)))
                .map(|r| r.value.as_str())
                .collect(),
            _ => inputs
                .lock
                .records
                .get(issuer)
                .and_then(|r| r.databases.get(&db.name))
                .map(|rows| rows.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        };
        for value in rows {
            let report = crate::model::thumbprint::check(value);
            if let Some(t) = report.thumbprint()
                && report.breaking_removals().next().is_none()
            {
                at.entry(t)
                    .or_insert_with(|| format!("database {} (table)", db.name));
            }
        }
    }
}
