//! Step 2, decide: a pure function of what [`crate::load`] read and `now` → [`Plan`].
//! No I/O, no clock. The only place policy lives: rollover and grace ([`keys`]), which
//! registry tracks which issuer ([`registry`]), hygiene ([`hygiene`]), and the lockout
//! guard (here), which every file and every issuer's slice of it must pass.

pub mod database;
pub mod federation;
pub mod patch;
pub mod plan;
pub mod sql;

pub mod attribution;
pub mod hygiene;
pub mod keys;
pub mod registry;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::decide::plan::{ChangeKind, FilePlan, Plan, PlanError, PlannedChange};
use crate::load::scan::{ConfigFile, Severity};
use crate::load::{Inputs, TargetFile};
use crate::model::rules::RuleSet;
use crate::model::thumbprint::Thumbprint;
use attribution::Evidence;
use keys::{IssuerView, Ledger};
use patch::Change;
use registry::{Assignment, attributable, is_dirty, single_value};

/// Decides what every target file must trust. Every issuer is loaded, so one issuer's
/// keys are never mistaken for unknown ones; a file or issuer keyroll cannot handle is an
/// error in the plan and never stops the others.
pub fn decide(inputs: &Inputs, rules: &RuleSet, now: OffsetDateTime) -> Plan {
    let mut plan = empty_plan(inputs, now);
    let Some(mut issuer_errors) = check_lock_and_time(inputs, now, &mut plan) else {
        return plan;
    };
    let (views, mut trust_verdicts) = check_issuers(inputs, now, &mut issuer_errors);
    // A withdrawn key published again is not trusted again: never without a word, since
    // tokens the issuer may really sign with it would fail.
    for (name, view) in &views {
        for t in view.keys.published.keys() {
            if let Some(why) = view.withdrawn(t, &inputs.settings, now) {
                plan.warnings.push(format!("issuer {name}: {t} is {why}"));
            }
        }
    }
    for (issuer, detail) in &issuer_errors {
        plan.errors.push(PlanError::Issuer {
            issuer: issuer.clone(),
            detail: detail.clone(),
        });
    }

    let mut ledger = Ledger::default();
    for target in &inputs.targets {
        let mut ctx = FileContext {
            inputs,
            rules,
            views: &views,
            now,
            ledger: &mut ledger,
            notes: &mut plan.notes,
        };
        match ctx.decide_file(target) {
            Ok(Some(file_plan)) => plan.files.push(file_plan),
            Ok(None) => {}
            Err(errors) => plan.errors.extend(errors),
        }
    }
    let database_rows = database::decide_all(
        inputs,
        &views,
        now,
        &mut ledger,
        &mut plan.databases,
        &mut plan.errors,
    );
    note_live_rows(inputs, &mut plan);
    keys::update_lock(&inputs.settings, &views, &ledger, now, &mut plan.lock_after);
    record_verdicts(&mut trust_verdicts, &mut plan);
    record_database_rows(database_rows, &mut plan);
    plan.issuers = keys::reports(
        &inputs.issuers,
        &issuer_errors,
        &plan.lock_after,
        &plan.lock_before,
        &ledger,
        now,
        &inputs.settings.policy,
    );
    for report in &mut plan.issuers {
        if let Some(verdict) = trust_verdicts.get(&report.name) {
            report.identity_change = verdict.identity_change;
            for (source, trust) in report.sources.iter_mut().zip(&verdict.signer_trust) {
                source.signer_trust = trust.clone();
            }
        }
    }
    plan
}

/// keyroll.lock records a table's rows once keyroll proposes a change to it: the migration
/// and the record travel in one commit, so a merged pull request leaves both.
fn record_database_rows(rows: BTreeMap<(String, String), BTreeSet<String>>, plan: &mut Plan) {
    for ((issuer, database), rows) in rows {
        let changed = plan
            .databases
            .iter()
            .any(|d| d.issuer == issuer && d.database == database);
        if changed {
            plan.lock_after
                .records
                .entry(issuer)
                .or_default()
                .databases
                .insert(database, rows);
        }
    }
}

/// Says where a table's rows came from when a connection was configured but not used.
fn note_live_rows(inputs: &Inputs, plan: &mut Plan) {
    for (name, live) in &inputs.databases {
        if let crate::load::database::Live::Unset { var } = live {
            plan.notes.push(format!(
                "database \"{name}\": {var} is not set here, so its rows are known from keyroll.lock only"
            ));
        }
    }
}

/// The plan before anything is decided: keyroll.lock as read, the loader's warnings, and
/// the issuers each target file names.
fn empty_plan(inputs: &Inputs, now: OffsetDateTime) -> Plan {
    Plan {
        now,
        issuers: Vec::new(),
        files: Vec::new(),
        databases: Vec::new(),
        notes: Vec::new(),
        warnings: inputs.warnings.clone(),
        errors: Vec::new(),
        lock_before: inputs.lock.clone(),
        lock_after: inputs.lock.clone(),
        issuers_of_file: inputs
            .targets
            .iter()
            .map(|t| {
                let names = issuers_named(&inputs.settings, t);
                (
                    t.display.clone(),
                    names.into_iter().map(str::to_string).collect(),
                )
            })
            .collect(),
        federation: Vec::new(),
    }
}

/// keyroll.lock's problems (warnings into the plan, errors per issuer, returned) and the
/// clock. `None` when the run stops here: the clock's error is then in the plan.
fn check_lock_and_time(
    inputs: &Inputs,
    now: OffsetDateTime,
    plan: &mut Plan,
) -> Option<BTreeMap<String, String>> {
    let mut issuer_errors: BTreeMap<String, String> = BTreeMap::new();
    // keyroll.lock against what the metadata holds: a row that disagrees with the
    // certificate (a hand-edited not_after, say) leaves that issuer alone with an error
    // naming the line, never a silent removal; tables of undefined issuers are a warning.
    // Checked first, so that the warning is given even when the run stops below.
    let lock_problems = inputs.lock.check_loaded(&inputs.settings, &inputs.issuers);
    for problem in lock_problems.iter().filter(|p| !p.is_error()) {
        plan.warnings.push(problem.to_string());
    }
    if let Err(e) = check_time(inputs, now) {
        plan.errors.push(e);
        return None;
    }
    for problem in lock_problems.into_iter().filter(|p| p.is_error()) {
        let entry = issuer_errors.entry(problem.issuer.clone()).or_default();
        if !entry.is_empty() {
            entry.push_str("; ");
        }
        entry.push_str(&problem.to_string());
    }
    Some(issuer_errors)
}

/// Each loaded issuer without an error yet: its keys not all expired, and its documents
/// trusted ([`trust::check`]). Those that pass are viewed for the files; the others get
/// their error in `issuer_errors`.
fn check_issuers<'i>(
    inputs: &'i Inputs,
    now: OffsetDateTime,
    issuer_errors: &mut BTreeMap<String, String>,
) -> (
    BTreeMap<&'i str, IssuerView<'i>>,
    BTreeMap<String, trust::Verdict>,
) {
    let mut views: BTreeMap<&str, IssuerView<'_>> = BTreeMap::new();
    let mut trust_verdicts: BTreeMap<String, trust::Verdict> = BTreeMap::new();
    for state in &inputs.issuers {
        let Some(issuer_settings) = inputs.settings.issuer(&state.name) else {
            continue;
        };
        if issuer_errors.contains_key(&state.name) {
            continue;
        }
        match &state.keys {
            Err(e) => {
                issuer_errors.insert(state.name.clone(), e.to_string());
            }
            Ok(keys) if keys.published.values().all(|c| now > c.not_after) => {
                issuer_errors.insert(
                    state.name.clone(),
                    "every key the issuer publishes has expired: refusing to act (is the metadata stale, or the issuer broken?)".into(),
                );
            }
            Ok(keys) => {
                let history = trust::History {
                    keys: inputs.lock.issuers.get(&state.name),
                    record: inputs.lock.records.get(&state.name),
                    remove_after: inputs.settings.policy.remove_after.0,
                };
                let in_configs = trust::InConfigs {
                    listed: attribution::trusted_in_configs(
                        inputs,
                        &state.name,
                        Evidence::WithDocument,
                    ),
                    vouching: attribution::trusted_in_configs(
                        inputs,
                        &state.name,
                        Evidence::History,
                    ),
                };
                match trust::check(
                    issuer_settings,
                    keys,
                    history,
                    &in_configs,
                    inputs.accept_identity_change.contains(&state.name),
                    now,
                ) {
                    Ok(verdict) => {
                        trust_verdicts.insert(state.name.clone(), verdict);
                    }
                    Err(why) => {
                        issuer_errors.insert(state.name.clone(), why);
                        continue;
                    }
                }
                views.insert(
                    state.name.as_str(),
                    IssuerView {
                        settings: issuer_settings,
                        keys,
                        lock: inputs.lock.issuers.get(&state.name),
                        accepted: inputs.accept_identity_change.contains(&state.name),
                    },
                );
            }
        }
    }
    (views, trust_verdicts)
}

/// Each trusted issuer's document warnings into the plan, and its record into keyroll.lock
/// (an empty record removes the issuer's).
fn record_verdicts(trust_verdicts: &mut BTreeMap<String, trust::Verdict>, plan: &mut Plan) {
    for (issuer, verdict) in trust_verdicts {
        plan.warnings.append(&mut verdict.warnings);
        let record = std::mem::take(&mut verdict.record);
        if record.is_empty() {
            plan.lock_after.records.remove(issuer);
        } else {
            plan.lock_after.records.insert(issuer.clone(), record);
        }
    }
}

/// Dates the decision computes must stay within the calendar: `--now` near year 9999 plus
/// a grace period cannot be represented. A clear error instead of a panic.
fn check_time(inputs: &Inputs, now: OffsetDateTime) -> Result<(), PlanError> {
    let policy = &inputs.settings.policy;
    for (what, d) in [
        ("remove_after", policy.remove_after.0),
        ("warn_expiring", policy.warn_expiring.0),
    ] {
        if now.checked_add(d).is_none() {
            return Err(PlanError::Time(format!(
                "the time {} plus {what} ({}) is past the year 9999; check --now and [policy] {what}",
                crate::model::cert::rfc3339(now),
                crate::model::settings::format_duration(d)
            )));
        }
    }
    Ok(())
}

struct FileContext<'a, 'v> {
    inputs: &'a Inputs,
    rules: &'a RuleSet,
    views: &'a BTreeMap<&'a str, IssuerView<'v>>,
    now: OffsetDateTime,
    ledger: &'a mut Ledger,
    notes: &'a mut Vec<String>,
}

impl FileContext<'_, '_> {
    fn decide_file(&mut self, target: &TargetFile) -> Result<Option<FilePlan>, Vec<PlanError>> {
        let settings = &self.inputs.settings;
        let file = &target.file;
        let mut errors = unreadable(target);
        let assignment = registry::assign(settings, target, self.views, &mut errors);
        if !errors.is_empty() {
            self.record_trusted(file, &assignment, &[]);
            return Err(errors);
        }
        let changes = self.changes_for(target, &assignment, &mut errors);
        let all: Vec<&PlannedChange> = changes.iter().collect();
        errors.extend(self.guard(target, &assignment, &all));
        let publishers: BTreeSet<&str> = changes
            .iter()
            .filter_map(|c| c.published_with.as_deref())
            .collect();
        for publisher in &publishers {
            let slice: Vec<&PlannedChange> = changes
                .iter()
                .filter(|c| c.published_with.as_deref() == Some(publisher))
                .collect();
            for e in self.guard(target, &assignment, &slice) {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
        if !errors.is_empty() {
            self.record_trusted(file, &assignment, &[]);
            return Err(errors);
        }
        if changes.is_empty() {
            self.record_trusted(file, &assignment, &[]);
            return Ok(None);
        }
        let patch_error = |e: patch::PatchError| vec![PlanError::Patch(e.to_string())];
        let raw = |subset: &[&PlannedChange]| -> Vec<Change> {
            subset.iter().map(|c| c.change.clone()).collect()
        };
        let after = match patch::apply(file, &raw(&all), self.rules) {
            Ok(after) => after,
            Err(e) => {
                self.record_trusted(file, &assignment, &[]);
                return Err(patch_error(e));
            }
        };
        let mut slices = BTreeMap::new();
        for publisher in publishers {
            let slice: Vec<&PlannedChange> = changes
                .iter()
                .filter(|c| c.published_with.as_deref() == Some(publisher))
                .collect();
            match patch::apply(file, &raw(&slice), self.rules) {
                Ok(bytes) => {
                    slices.insert(publisher.to_string(), bytes);
                }
                Err(e) => {
                    self.record_trusted(file, &assignment, &[]);
                    return Err(patch_error(e));
                }
            }
        }
        self.record_trusted(file, &assignment, &all);
        Ok(Some(FilePlan {
            path: target.path.clone(),
            display: target.display.clone(),
            changes,
            before: file.bytes.clone(),
            after,
            slices,
            encoding: file.encoding,
        }))
    }

    fn changes_for(
        &mut self,
        target: &TargetFile,
        assignment: &Assignment,
        errors: &mut Vec<PlanError>,
    ) -> Vec<PlannedChange> {
        let settings = &self.inputs.settings;
        let file = &target.file;
        let mut changes = Vec::new();
        let cx = registry::Cx {
            settings,
            file,
            display: &target.display,
            now: self.now,
        };
        let mut sink = registry::Sink {
            ledger: self.ledger,
            notes: self.notes,
            errors,
        };
        for (r, issuer) in &assignment.tracked {
            let registry = &file.registries[*r];
            if single_value(registry) {
                continue;
            }
            let view = &self.views[issuer.as_str()];
            changes.extend(registry::rollover(&cx, registry, issuer, view, &mut sink));
        }
        let named: Vec<&str> = issuers_named(&self.inputs.settings, target);
        for &r in &assignment.touched {
            let registry = &file.registries[r];
            if single_value(registry) {
                changes.extend(registry::single_value_roll(
                    &cx, registry, &named, self.views, &mut sink,
                ));
            }
            let mut trackers: Vec<&str> = assignment
                .tracked
                .iter()
                .filter(|(tr, _)| *tr == r)
                .map(|(_, i)| i.as_str())
                .collect();
            if trackers.is_empty() {
                trackers = named
                    .iter()
                    .copied()
                    .filter(|i| self.views.contains_key(i))
                    .collect();
            }
            trackers.sort_by_key(|i| settings.issuers.iter().position(|s| s.name == *i));
            let ctx = hygiene::HygieneContext {
                settings,
                views: self.views,
                trackers,
                failed: named
                    .iter()
                    .copied()
                    .filter(|i| !self.views.contains_key(i))
                    .collect(),
                lock: &self.inputs.lock,
                display: &target.display,
            };
            changes.extend(hygiene::hygiene(&ctx, file, r, sink.notes));
        }
        one_change_per_entry(&mut changes);
        changes
    }
}

/// The issuers this file's targets name, in keyroll.toml's order.
fn issuers_named<'s>(
    settings: &'s crate::model::settings::Settings,
    target: &TargetFile,
) -> Vec<&'s str> {
    {
        settings
            .issuers
            .iter()
            .map(|i| i.name.as_str())
            .filter(|name| {
                target
                    .targets
                    .iter()
                    .any(|&t| settings.targets[t].issuers.iter().any(|i| i == name))
            })
            .collect()
    }
}

impl FileContext<'_, '_> {
    /// The lockout guard: after `changes`, every tracked registry still trusts a key its
    /// issuer publishes and that is valid now — unless it trusted none before and the
    /// changes remove nothing from it (then keyroll made nothing worse).
    fn guard(
        &self,
        target: &TargetFile,
        assignment: &Assignment,
        changes: &[&PlannedChange],
    ) -> Vec<PlanError> {
        let file = &target.file;
        let before = trusted_sets(file, &[]);
        let after = trusted_sets(file, changes);
        let mut errors = Vec::new();
        for (r, issuer) in &assignment.tracked {
            let view = &self.views[issuer.as_str()];
            let current = |sets: &BTreeMap<usize, BTreeSet<Thumbprint>>| {
                sets.get(r)
                    .is_some_and(|s| s.iter().any(|t| view.is_current(t, self.now)))
            };
            // Keys of this issuer the registry trusted before and no longer does. A dedupe
            // or another issuer's change takes none away.
            let empty = BTreeSet::new();
            let (was, now_set) = (
                before.get(r).unwrap_or(&empty),
                after.get(r).unwrap_or(&empty),
            );
            let lost = was.iter().any(|t| view.knows(t) && !now_set.contains(t));
            if !current(&after) && (current(&before) || lost) {
                errors.push(PlanError::Lockout {
                    file: target.display.clone(),
                    line: file.registries[*r].line,
                    issuer: issuer.clone(),
                });
            }
        }
        errors
    }

    /// Tells the ledger which keys each tracked registry trusts after `changes`.
    fn record_trusted(
        &mut self,
        file: &ConfigFile,
        assignment: &Assignment,
        changes: &[&PlannedChange],
    ) {
        let sets = trusted_sets(file, changes);
        for (r, issuer) in &assignment.tracked {
            let view = &self.views[issuer.as_str()];
            if let Some(set) = sets.get(r) {
                self.ledger
                    .trusts(issuer, set.iter().copied().filter(|t| view.knows(t)));
            }
        }
        // Single-value settings trust their one key too.
        for &r in &assignment.touched {
            if let Some(set) = sets.get(&r) {
                for (name, view) in self.views.iter() {
                    self.ledger
                        .trusts(name, set.iter().copied().filter(|t| view.knows(t)));
                }
            }
        }
    }
}

/// A file keyroll must not change: a link, unreadable bytes, or a scan error of the file
/// itself (encoding, malformed XML, a configSource it cannot follow).
fn unreadable(target: &TargetFile) -> Vec<PlanError> {
    let mut errors = Vec::new();
    if let Some(why) = &target.refused {
        errors.push(PlanError::Unreadable {
            file: target.display.clone(),
            line: 1,
            column: 1,
            code: "refused".into(),
            detail: why.clone(),
        });
    }
    for p in target
        .file
        .problems
        .iter()
        .filter(|p| p.finding.severity == Severity::Error)
    {
        errors.push(PlanError::Unreadable {
            file: target.display.clone(),
            line: p.line,
            column: p.column,
            code: p.finding.code.to_string(),
            detail: p.finding.message.clone(),
        });
    }
    errors
}

/// What each registry trusts as WIF will read it once `changes` are made: entries that load
/// and match (clean, or cleaned by the changes), minus removals, plus additions.
pub fn trusted_sets(
    file: &ConfigFile,
    changes: &[&PlannedChange],
) -> BTreeMap<usize, BTreeSet<Thumbprint>> {
    let mut removed = BTreeSet::new();
    let mut cleaned = BTreeSet::new();
    let mut replaced = BTreeMap::new();
    for c in changes {
        match c.change {
            Change::Remove { entry } => {
                removed.insert(entry);
            }
            Change::Normalize { entry } => {
                cleaned.insert(entry);
            }
            Change::Replace { entry, thumbprint } => {
                replaced.insert(entry, thumbprint);
            }
            Change::Add { .. } => {}
        }
    }
    let mut sets: BTreeMap<usize, BTreeSet<Thumbprint>> = BTreeMap::new();
    for (i, e) in file.entries.iter().enumerate() {
        if !attributable(e) || removed.contains(&i) {
            continue;
        }
        let value = match replaced.get(&i) {
            Some(t) => Some(*t),
            None if is_dirty(e) && !cleaned.contains(&i) => None,
            None => e.normalized,
        };
        if let Some(t) = value {
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

/// One change per entry: a removal wins over a normalization of the same entry, and one
/// key is added once per registry.
fn one_change_per_entry(changes: &mut Vec<PlannedChange>) {
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
        Change::Remove { entry } | Change::Replace { entry, .. } => seen_entries.insert(*entry),
        Change::Add {
            registry,
            thumbprint,
            ..
        } => seen_adds.insert((*registry, *thumbprint)),
    });
    // Stable order for reports: by line, then kind.
    changes.sort_by_key(|c| (c.line, c.kind != ChangeKind::Add));
}
