//! Entra ID's copy of an AD FS issuer's keys (`[[federated_domain]]`): whether the
//! certificates Entra ID holds for a federated domain (`signingCertificate`,
//! `nextSigningCertificate`) are the ones AD FS signs with now and will promote next.
//! Pure: the issuer's keys as loaded and checked ([`crate::decide::trust`]), Entra's state as
//! read by `act::entra`, and `now`.
//!
//! AD FS publishes its next certificate (NotBefore = the day it is generated, 20 days
//! before the current one expires) and makes it primary `promotion_threshold` later (5 days
//! by default). Entra ID accepts tokens signed by either certificate it holds; if it holds
//! neither of the keys AD FS signs with, every federated sign-in fails (AADSTS5000811).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::decide::plan::{Plan, PlanError};
use crate::load::Inputs;
use crate::model::cert::Certificate;
use crate::model::settings::FederatedDomain;
use crate::model::thumbprint::Thumbprint;

/// What Entra ID holds for a domain (`internalDomainFederation`).
#[derive(Debug, Clone)]
pub struct EntraState {
    /// The federation configuration's `id`, which the PATCH names.
    pub id: String,
    pub signing: Arc<Certificate>,
    pub next: Option<Arc<Certificate>>,
    /// `signingCertificateUpdateStatus`, as Entra ID gives it: its result and when it ran.
    pub update_result: Option<String>,
    pub update_ran: Option<String>,
}

/// How a run got (or did not get) Entra's state.
#[derive(Debug, Clone)]
pub enum EntraRead {
    State(EntraState),
    /// Not asked: no credential (`plan` without one). Shown, never an error.
    NotRead(String),
    /// Asked, and the answer was an error (permission, not federated, throttled, malformed).
    Failed(String),
}

/// The verdict for one federated domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Verdict {
    /// Entra ID holds the key AD FS signs with, and the next one when AD FS publishes one.
    InStep,
    /// AD FS publishes a next key Entra ID does not hold; it becomes primary on `promotion`.
    NextMissing {
        next: Thumbprint,
        #[serde(serialize_with = "date")]
        promotion: OffsetDateTime,
        days_left: i64,
    },
    /// AD FS signs with a key Entra ID holds in neither place: sign-ins fail now.
    Lockout {
        adfs_current: Thumbprint,
        #[serde(serialize_with = "date")]
        promoted: OffsetDateTime,
    },
    /// Entra's current certificate is no longer in the AD FS metadata.
    StaleCurrent { entra_current: Thumbprint },
    /// Entra's next certificate is one AD FS does not publish: Entra ID accepts tokens it
    /// signs (a rogue next certificate is how a federated domain is taken over).
    UnpublishedNext { entra_next: Thumbprint },
    /// AD FS signs with a key Entra ID holds only as its next certificate, and AD FS publishes
    /// a further key: setting that as the next certificate would push out the key sign-ins use,
    /// so `entra apply` does not; Entra's current certificate must be set to it first.
    CurrentInNextSlot {
        adfs_current: Thumbprint,
        next: Thumbprint,
    },
    /// Entra ID was not read (no credential): nothing is known about it.
    NotChecked { why: String },
    /// The issuer's keys or Entra's state could not be read.
    Error { detail: String },
}

fn date<S: serde::Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ymd(*at))
}

/// `YYYY-MM-DD` (UTC).
pub fn ymd(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

/// One `[[federated_domain]]` as decided.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub issuer: String,
    pub adfs_current: Option<Thumbprint>,
    pub adfs_next: Option<Thumbprint>,
    pub entra_current: Option<Thumbprint>,
    pub entra_next: Option<Thumbprint>,
    /// Entra's own automatic update: its last result and when it ran, as Entra ID gives them.
    pub entra_update_result: Option<String>,
    pub entra_update_ran: Option<String>,
    pub verdict: Verdict,
    /// The federation configuration's id (for the PATCH).
    #[serde(skip)]
    pub config_id: Option<String>,
}

impl DomainReport {
    /// The key `entra apply` sets as Entra's next certificate, when that is what is missing.
    pub fn to_apply(&self) -> Option<Thumbprint> {
        match &self.verdict {
            // Never a write that pushes out the key AD FS signs with (the verdict already
            // says so; this holds whatever the verdict's rules become).
            Verdict::NextMissing { next, .. } if self.entra_next != self.adfs_current => {
                Some(*next)
            }
            _ => None,
        }
    }

    /// `entra check`'s exit code for this domain alone: 0 in step, 2 next key missing, 1 error.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Verdict::InStep => 0,
            Verdict::NextMissing { .. } => 2,
            _ => 1,
        }
    }

    /// The verdict in a sentence (outside text quoted as is: the caller escapes it).
    pub fn summary(&self) -> String {
        match &self.verdict {
            Verdict::InStep => "in step".into(),
            Verdict::NextMissing {
                next,
                promotion,
                days_left,
            } => format!(
                "next key missing: Entra ID does not hold {next}, which AD FS promotes on {} ({} left){}",
                ymd(*promotion),
                days(*days_left),
                match self.entra_next {
                    Some(other) => format!("; Entra ID's next certificate is {other}"),
                    None => String::new(),
                }
            ),
            Verdict::Lockout {
                adfs_current,
                promoted,
            } => format!(
                "lockout: AD FS signs with {adfs_current} since {}, and Entra ID holds it neither as its current nor as its next certificate: federated sign-ins fail (AADSTS5000811)",
                ymd(*promoted)
            ),
            Verdict::StaleCurrent { entra_current } => format!(
                "lockout: Entra ID's current certificate {entra_current} is not published by AD FS any more; update it with Update-MgDomainFederationConfiguration"
            ),
            Verdict::UnpublishedNext { entra_next } => format!(
                "Entra ID trusts a next certificate AD FS does not publish: {entra_next} (tokens it signs are accepted for the domain); find out who set it, then remove or replace it with Update-MgDomainFederationConfiguration"
            ),
            Verdict::CurrentInNextSlot { adfs_current, next } => format!(
                "Entra ID holds {adfs_current}, the key AD FS signs with, only as its next certificate, so AD FS's next key {next} cannot be added without pushing it out (entra apply does not): set Entra ID's signingCertificate to {adfs_current} first (Update-MgDomainFederationConfiguration), then run entra apply"
            ),
            Verdict::NotChecked { why } => format!("Entra ID not read: {why}"),
            Verdict::Error { detail } => detail.clone(),
        }
    }
}

fn days(n: i64) -> String {
    format!("{n} day{}", if n == 1 { "" } else { "s" })
}

/// Decides every `[[federated_domain]]` and adds the reports (and an error per domain that
/// fails) to the plan. `entra` holds what was read per domain; a domain missing from it was
/// not read. The issuer's keys count only when the plan has no error for the issuer: its
/// signature policy and identity checks passed.
pub fn add_to_plan(plan: &mut Plan, inputs: &Inputs, entra: &BTreeMap<String, EntraRead>) {
    for entry in &inputs.settings.federated_domains {
        let read = entra.get(&entry.domain);
        let report = decide_domain(entry, inputs, plan, read);
        if report.exit_code() == 1 && !matches!(report.verdict, Verdict::NotChecked { .. }) {
            plan.errors.push(PlanError::Federation {
                domain: report.domain.clone(),
                detail: report.summary(),
            });
        }
        plan.federation.push(report);
    }
}

fn decide_domain(
    entry: &FederatedDomain,
    inputs: &Inputs,
    plan: &Plan,
    read: Option<&EntraRead>,
) -> DomainReport {
    let mut report = DomainReport {
        domain: entry.domain.clone(),
        issuer: entry.issuer.clone(),
        adfs_current: None,
        adfs_next: None,
        entra_current: None,
        entra_next: None,
        entra_update_result: None,
        entra_update_ran: None,
        verdict: Verdict::InStep,
        config_id: None,
    };
    let error = |detail: String| Verdict::Error { detail };
    let issuer_error = plan
        .issuers
        .iter()
        .find(|r| r.name == entry.issuer)
        .and_then(|r| r.error.clone());
    let keys = inputs
        .issuers
        .iter()
        .find(|i| i.name == entry.issuer)
        .map(|i| i.keys.as_ref());
    let Some(settings) = inputs.settings.issuer(&entry.issuer) else {
        report.verdict = error(format!("issuer {} is not defined", entry.issuer));
        return report;
    };
    let keys = match (issuer_error, keys) {
        (Some(why), _) => {
            report.verdict = error(format!(
                "issuer {}: {why}; Entra ID's copy is not judged",
                entry.issuer
            ));
            return report;
        }
        (None, Some(Ok(keys))) => keys,
        (None, Some(Err(e))) => {
            report.verdict = error(format!("issuer {}: {e}", entry.issuer));
            return report;
        }
        (None, None) => {
            report.verdict = error(format!("issuer {} was not loaded", entry.issuer));
            return report;
        }
    };
    // A key the issuer withdrew, listed again (an old document replayed), is no more AD
    // FS's next key for Entra ID than it is for the configs (IssuerView::withdrawn).
    let lock = inputs.lock.issuers.get(&entry.issuer);
    let accepted = inputs.accept_identity_change.contains(&entry.issuer);
    let remove_after = inputs.settings.policy.remove_after.0;
    let timeline = Timeline::of(
        keys.published.values().filter(|c| {
            accepted
                || lock
                    .and_then(|l| l.get(&c.sha1.to_upper_hex()))
                    .and_then(|k| super::keys::grace_ended(k, remove_after, plan.now))
                    .is_none()
        }),
        settings.promotion_threshold(),
        plan.now,
    );
    report.adfs_current = timeline.current.map(|c| c.sha1);
    report.adfs_next = timeline.next.map(|c| c.sha1);
    let state = match read {
        Some(EntraRead::State(state)) => state,
        Some(EntraRead::NotRead(why)) => {
            report.verdict = Verdict::NotChecked { why: why.clone() };
            return report;
        }
        None => {
            report.verdict = Verdict::NotChecked {
                why: "not asked in this run".into(),
            };
            return report;
        }
        Some(EntraRead::Failed(why)) => {
            report.verdict = error(why.clone());
            return report;
        }
    };
    report.config_id = Some(state.id.clone());
    report.entra_current = Some(state.signing.sha1);
    report.entra_next = state.next.as_ref().map(|c| c.sha1);
    report.entra_update_result = state.update_result.clone();
    report.entra_update_ran = state.update_ran.clone();
    report.verdict = verdict(&timeline, state, &keys.published, plan.now);
    report
}

/// The verdict from AD FS's timeline and Entra's certificates: a lockout first, then a
/// current certificate AD FS dropped, then a next key Entra ID lacks.
fn verdict(
    timeline: &Timeline<'_>,
    state: &EntraState,
    published: &BTreeMap<Thumbprint, Arc<Certificate>>,
    now: OffsetDateTime,
) -> Verdict {
    let held =
        |t: Thumbprint| state.signing.sha1 == t || state.next.as_ref().is_some_and(|n| n.sha1 == t);
    let Some(current) = timeline.current else {
        return Verdict::Error {
            detail: "the issuer publishes no signing key valid now".into(),
        };
    };
    if !held(current.sha1) {
        return Verdict::Lockout {
            adfs_current: current.sha1,
            promoted: super::keys::plus(current.not_before, timeline.threshold),
        };
    }
    if !published.contains_key(&state.signing.sha1) {
        return Verdict::StaleCurrent {
            entra_current: state.signing.sha1,
        };
    }
    if let Some(entra_next) = &state.next
        && !published.contains_key(&entra_next.sha1)
    {
        return Verdict::UnpublishedNext {
            entra_next: entra_next.sha1,
        };
    }
    match timeline.next {
        // `entra apply` writes only the next slot: never while it holds the key AD FS signs
        // with (Entra's current certificate is then an older one).
        Some(next) if !held(next.sha1) && state.signing.sha1 != current.sha1 => {
            Verdict::CurrentInNextSlot {
                adfs_current: current.sha1,
                next: next.sha1,
            }
        }
        Some(next) if !held(next.sha1) => {
            let promotion = super::keys::plus(next.not_before, timeline.threshold);
            Verdict::NextMissing {
                next: next.sha1,
                promotion,
                days_left: (promotion - now).whole_days().max(0),
            }
        }
        _ => Verdict::InStep,
    }
}

/// AD FS's keys as its rollover sees them: the primary (the newest key promoted by now) and
/// the next (the newest key not promoted yet). Expired keys are neither.
struct Timeline<'k> {
    current: Option<&'k Certificate>,
    next: Option<&'k Certificate>,
    threshold: time::Duration,
}

impl<'k> Timeline<'k> {
    fn of(
        keys: impl Iterator<Item = &'k Arc<Certificate>>,
        threshold: time::Duration,
        now: OffsetDateTime,
    ) -> Self {
        let live: Vec<&Certificate> = keys
            .map(|k| k.as_ref())
            .filter(|c| now <= c.not_after)
            .collect();
        let newest = |certs: Vec<&'k Certificate>| {
            certs
                .into_iter()
                .max_by_key(|c| (c.not_before, c.not_after, c.sha1))
        };
        let (promoted, pending): (Vec<_>, Vec<_>) = live
            .into_iter()
            .partition(|c| super::keys::plus(c.not_before, threshold) <= now);
        match newest(promoted) {
            Some(current) => Timeline {
                current: Some(current),
                next: newest(pending),
                threshold,
            },
            // Only keys not promoted yet (a new AD FS farm): the oldest signs.
            None => {
                let mut pending = pending;
                pending.sort_by_key(|c| (c.not_before, c.sha1));
                let mut pending = pending.into_iter();
                Timeline {
                    current: pending.next(),
                    next: pending.next_back(),
                    threshold,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_utc_days() {
        let at = time::macros::datetime!(2014-07-10 23:30 -02:00);
        assert_eq!(ymd(at), "2014-07-11");
    }
}
