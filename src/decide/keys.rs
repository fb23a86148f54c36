//! Per issuer: what is published, what keyroll.lock remembers, and what that means now —
//! the rollover policy (add early, keep through a grace period, remove after), the lock's
//! update and the per-key report.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::decide::plan::{IssuerReport, KeyAction, KeyReport, KeyStatus, Reason};
use crate::load::IssuerKeys;
use crate::model::cert::rfc3339;
use crate::model::lock::{Lock, LockedKey};
use crate::model::settings::{IssuerSettings, Settings};
use crate::model::thumbprint::Thumbprint;

pub struct IssuerView<'a> {
    pub settings: &'a IssuerSettings,
    pub keys: &'a IssuerKeys,
    pub lock: Option<&'a BTreeMap<String, LockedKey>>,
    /// The run accepts an identity change for this issuer (`--accept-identity-change`): a
    /// key it withdrew may be trusted again.
    pub accepted: bool,
}

pub enum Verdict {
    /// Should be trusted; add when missing.
    Want(Reason),
    /// Keep while present; never add (leaving, inside its grace period).
    KeepOnly(String),
    /// Remove when present.
    Drop(Reason),
    /// Published but not to be trusted yet or any more; never removed while published.
    Ignore(String),
}

/// `t + d`, or the end of representable time: comparisons stay right and nothing panics
/// (out-of-range settings are refused before deciding; see [`super::check_time`]).
pub fn plus(t: OffsetDateTime, d: time::Duration) -> OffsetDateTime {
    t.checked_add(d)
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

/// When a key keyroll.lock records as gone from the metadata left it, and when its grace
/// period ended, if it has: the issuer withdrew it.
pub fn grace_ended(
    key: &LockedKey,
    remove_after: time::Duration,
    now: OffsetDateTime,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let missing_since = key.missing_since?;
    let grace_end = plus(missing_since, remove_after);
    (now >= grace_end).then_some((missing_since, grace_end))
}

impl IssuerView<'_> {
    pub fn knows(&self, t: &Thumbprint) -> bool {
        self.keys.published.contains_key(t)
            || self.lock.is_some_and(|l| l.contains_key(&t.to_upper_hex()))
    }

    pub fn is_current(&self, t: &Thumbprint, now: OffsetDateTime) -> bool {
        self.keys
            .published
            .get(t)
            .is_some_and(|c| c.is_current(now))
    }

    /// Why a published key is not trusted again: the issuer withdrew it (it left the
    /// metadata and its grace period ended; keyroll.lock keeps it until it expires), so a
    /// document listing it again is most likely an old one replayed by whoever serves the
    /// metadata. Only a run that accepts an identity change trusts it again.
    pub fn withdrawn(
        &self,
        t: &Thumbprint,
        settings: &Settings,
        now: OffsetDateTime,
    ) -> Option<String> {
        let locked = self.lock.and_then(|l| l.get(&t.to_upper_hex()))?;
        let (missing_since, grace_end) = grace_ended(locked, settings.policy.remove_after.0, now)?;
        (!self.accepted).then(|| {
            format!(
                "published again, but the issuer withdrew it: absent from its metadata since {}, grace period ended {} (keyroll.lock); an old document replayed? keyroll does not trust it again unless the run accepts it: --accept-identity-change {}",
                rfc3339(missing_since),
                rfc3339(grace_end),
                self.settings.name
            )
        })
    }

    pub fn verdict(&self, t: &Thumbprint, settings: &Settings, now: OffsetDateTime) -> Verdict {
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
            if let Some(why) = self.withdrawn(t, settings, now) {
                return Verdict::Ignore(why);
            }
            if now < cert.not_before && !policy.add_not_yet_valid {
                return Verdict::Ignore(format!(
                    "published, valid from {} (policy add_not_yet_valid = false)",
                    rfc3339(cert.not_before)
                ));
            }
            return Verdict::Want(Reason::Published {
                since,
                not_before: cert.not_before,
                not_after: cert.not_after,
                not_yet_valid: now < cert.not_before,
            });
        }
        let Some(locked) = locked else {
            return Verdict::Drop(Reason::Unknown);
        };
        let missing_since = locked.missing_since.unwrap_or(now);
        if policy.remove_expired && now > locked.not_after {
            return Verdict::Drop(Reason::ExpiredUnpublished {
                not_after: locked.not_after,
            });
        }
        let grace = policy.remove_after.0;
        let grace_end = plus(missing_since, grace);
        if now >= grace_end {
            Verdict::Drop(Reason::GraceElapsed {
                missing_since,
                grace,
            })
        } else {
            Verdict::KeepOnly(format!(
                "absent from metadata since {}; kept until {} (grace of {})",
                rfc3339(missing_since),
                rfc3339(grace_end),
                crate::model::settings::format_duration(grace)
            ))
        }
    }
}

/// What the decision learns about keys while it walks the files.
#[derive(Default)]
pub struct Ledger {
    /// (issuer, key) → what the plan does with it and why.
    pub actions: BTreeMap<(String, Thumbprint), (KeyAction, String)>,
    /// Per issuer, the keys some target file still trusts once the plan is applied: the
    /// lock forgets only keys no file trusts any more.
    pub still_trusted: BTreeMap<String, BTreeSet<Thumbprint>>,
}

impl Ledger {
    /// add/remove outrank keep and ignore in the per-key summary.
    pub fn record(&mut self, issuer: &str, t: Thumbprint, action: KeyAction, reason: String) {
        let slot = self
            .actions
            .entry((issuer.to_string(), t))
            .or_insert((action, reason.clone()));
        if matches!(slot.0, KeyAction::Keep | KeyAction::Ignore)
            && matches!(action, KeyAction::Add | KeyAction::Remove)
        {
            *slot = (action, reason);
        }
    }

    pub fn trusts(&mut self, issuer: &str, keys: impl IntoIterator<Item = Thumbprint>) {
        self.still_trusted
            .entry(issuer.to_string())
            .or_default()
            .extend(keys);
    }
}

pub fn update_lock(
    settings: &Settings,
    views: &BTreeMap<&str, IssuerView<'_>>,
    ledger: &Ledger,
    now: OffsetDateTime,
    lock: &mut Lock,
) {
    for (name, view) in views {
        let withdrawn: BTreeSet<Thumbprint> = view
            .keys
            .published
            .keys()
            .filter(|t| view.withdrawn(t, settings, now).is_some())
            .copied()
            .collect();
        let keys = lock.issuers.entry(name.to_string()).or_default();
        for (t, cert) in &view.keys.published {
            if withdrawn.contains(t) {
                continue; // Still withdrawn: its date stands.
            }
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
        let trusted = ledger.still_trusted.get(*name);
        keys.retain(|sha1, key| {
            let parsed = sha1.parse::<Thumbprint>().ok();
            if parsed.is_some_and(|t| view.keys.published.contains_key(&t)) {
                return true;
            }
            let missing_since = *key.missing_since.get_or_insert(now);
            let gone = now >= plus(missing_since, settings.policy.remove_after.0)
                || (settings.policy.remove_expired && now > key.not_after);
            let in_use = parsed.is_some_and(|t| trusted.is_some_and(|s| s.contains(&t)));
            // A withdrawn key is remembered until it expires, so a document that lists it
            // again (an old one, replayed) is recognised; after that it cannot be trusted.
            !gone || in_use || now <= key.not_after
        });
    }
}

fn status(
    now: OffsetDateTime,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    warn: time::Duration,
) -> KeyStatus {
    if now < not_before {
        KeyStatus::NotYetValid
    } else if now > not_after {
        KeyStatus::Expired
    } else if not_after - now <= warn {
        KeyStatus::Expiring
    } else {
        KeyStatus::Valid
    }
}

/// When a key's grace period ends (it left the metadata) and when keyroll will remove it:
/// now when this plan removes it; otherwise at the grace period's end, or at its expiry when
/// `remove_expired` comes first. A published key has neither: its clock has not started.
fn planned_removal(
    action: KeyAction,
    missing_since: Option<OffsetDateTime>,
    not_after: OffsetDateTime,
    policy: &crate::model::settings::Policy,
    now: OffsetDateTime,
) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let grace_end = missing_since.map(|m| plus(m, policy.remove_after.0));
    let removal = if action == KeyAction::Remove {
        Some(now)
    } else {
        grace_end.map(|end| {
            let end = if policy.remove_expired {
                end.min(not_after)
            } else {
                end
            };
            end.max(now)
        })
    };
    (grace_end, removal)
}

pub fn reports(
    issuers: &[crate::load::LoadedIssuer],
    errors: &BTreeMap<String, String>,
    lock: &Lock,
    lock_before: &Lock,
    ledger: &Ledger,
    now: OffsetDateTime,
    policy: &crate::model::settings::Policy,
) -> Vec<IssuerReport> {
    issuers
        .iter()
        .map(|state| {
            let mut report = IssuerReport {
                name: state.name.clone(),
                identity_change: false,
                sources: Vec::new(),
                entity_ids: Vec::new(),
                error: errors.get(&state.name).cloned(),
                keys: Vec::new(),
            };
            let Ok(keys) = &state.keys else {
                return report;
            };
            report.sources = keys.sources.clone();
            report.entity_ids = keys.entity_ids.iter().cloned().collect();
            let locked = lock.issuers.get(&state.name);
            // A key this plan removes is already forgotten by the new lock: its dates come
            // from the lock as it was read.
            let locked_before = lock_before.issuers.get(&state.name);
            let mut all: BTreeSet<Thumbprint> = keys.published.keys().copied().collect();
            all.extend(
                ledger
                    .actions
                    .keys()
                    .filter(|(issuer, _)| issuer == &state.name)
                    .map(|(_, t)| *t),
            );
            for t in all {
                let lock_key = locked
                    .and_then(|l| l.get(&t.to_upper_hex()))
                    .or_else(|| locked_before.and_then(|l| l.get(&t.to_upper_hex())));
                let (subject, not_before, not_after) = match (keys.published.get(&t), lock_key) {
                    (Some(c), _) => (c.subject.clone(), c.not_before, c.not_after),
                    (None, Some(k)) => (k.subject.clone(), k.not_before, k.not_after),
                    (None, None) => continue,
                };
                let (action, reason) = ledger
                    .actions
                    .get(&(state.name.clone(), t))
                    .cloned()
                    .unwrap_or((KeyAction::None, "no target file trusts it".into()));
                let missing_since = lock_key.and_then(|k| k.missing_since);
                let (grace_end, removal) =
                    planned_removal(action, missing_since, not_after, policy, now);
                report.keys.push(KeyReport {
                    status: status(now, not_before, not_after, policy.warn_expiring.0),
                    sha1: t,
                    subject,
                    not_before: rfc3339(not_before),
                    not_after: rfc3339(not_after),
                    published: keys.published.contains_key(&t),
                    first_seen: lock_key.map(|k| rfc3339(k.first_seen)),
                    missing_since: missing_since.map(rfc3339),
                    grace_end: grace_end.map(rfc3339),
                    removal: removal.map(rfc3339),
                    action,
                    reason,
                });
            }
            report
        })
        .collect()
}
