//! Trust the metadata, not the network. A document may introduce keys when its signature
//! verifies with a key the issuer is already trusted with (in the configs, in
//! keyroll.lock, or pinned as a signer); and, whatever the signatures, a document in which
//! none of the keys keyroll has seen for the issuer is still published is an identity
//! change, not a rollover: keyroll changes nothing unless the run accepts it.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::decide::plan::DocumentSignature;
use crate::load::IssuerKeys;
use crate::model::cert::rfc3339;
use crate::model::lock::{IssuerRecord, LockedDocument, LockedKey};
use crate::model::settings::{IssuerSettings, SignatureMode};
use crate::model::thumbprint::Thumbprint;

/// Where the configs trust a key for an issuer: `file:line`.
pub type TrustedAt = BTreeMap<Thumbprint, String>;

/// The keys the configs (and the issuer's tables) trust for an issuer, as
/// [`crate::decide::attribution`] tells them.
pub struct InConfigs {
    /// Told with the help of the documents: what a document must continue.
    pub listed: TrustedAt,
    /// Told without them: the signers that may vouch for a document.
    pub vouching: TrustedAt,
}

pub struct Verdict {
    /// Per source, in order: why its signer is trusted, or why not.
    pub signer_trust: Vec<Option<String>>,
    /// The run accepted an identity change for this issuer (titles say so).
    pub identity_change: bool,
    /// What keyroll.lock records of the issuer's documents after this run.
    pub record: IssuerRecord,
    /// A document kept past its cacheDuration, say.
    pub warnings: Vec<String>,
}

/// What the issuer's history says: its keyroll.lock table and record.
#[derive(Clone, Copy, Default)]
pub struct History<'a> {
    pub keys: Option<&'a BTreeMap<String, LockedKey>>,
    pub record: Option<&'a IssuerRecord>,
    /// The policy's grace period: a key whose grace ended is one the issuer withdrew.
    pub remove_after: time::Duration,
}

/// Decides whether the issuer's documents may be acted on. `Err` names why not.
pub fn check(
    issuer: &IssuerSettings,
    keys: &IssuerKeys,
    history: History<'_>,
    in_configs: &InConfigs,
    accept_identity_change: bool,
    now: OffsetDateTime,
) -> Result<Verdict, String> {
    let vouchers = Vouchers {
        pinned: issuer
            .signers
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        lock: history.keys,
        in_configs: &in_configs.vouching,
    };
    let signatures = judge_signatures(issuer, keys, history, &vouchers, now)?;

    let mut identity_change = false;
    let mut accept = |why: String| -> Result<(), String> {
        if !accept_identity_change {
            return Err(format!(
                "identity change, not a rollover: {why}; keyroll changes nothing. If the issuer really did this, run again with --accept-identity-change {}",
                issuer.name
            ));
        }
        identity_change = true;
        Ok(())
    };
    if let Some(why) = signatures.downgrade {
        accept(why)?;
    }
    if !signatures.vouched
        && let Some(why) = broken_continuity(keys, history, &in_configs.listed, now)
    {
        accept(why)?;
    }
    let enforce = issuer.signature != SignatureMode::Off;
    let (record, warnings) = record(keys, history.record, enforce && signatures.all_signed, now);
    Ok(Verdict {
        signer_trust: signatures.signer_trust,
        identity_change,
        record,
        warnings,
    })
}

/// The keys that may vouch for this issuer's documents.
struct Vouchers<'a> {
    /// `signers` in keyroll.toml.
    pinned: BTreeSet<Thumbprint>,
    /// The issuer's keyroll.lock table.
    lock: Option<&'a BTreeMap<String, LockedKey>>,
    in_configs: &'a TrustedAt,
}

impl Vouchers<'_> {
    // A signer vouches only for its own issuer: pinned, this issuer's current or next key in
    // keyroll.lock, or a key the configs trust for this issuer. A key keyroll.lock records as
    // retired (no longer published) never vouches again unless pinned.
    fn why_trusted(&self, signer: &Thumbprint) -> Result<String, String> {
        if self.pinned.contains(signer) {
            return Ok(format!("{signer} is pinned in keyroll.toml (signers)"));
        }
        let locked = self.lock.and_then(|l| l.get(&signer.to_upper_hex()));
        if let Some(missing_since) = locked.and_then(|k| k.missing_since) {
            return Err(format!(
                "signed by {signer}, a key keyroll.lock records as retired for this issuer (absent from its metadata since {}): a retired key vouches for nothing; keyroll adds and removes nothing. If the issuer really signs with it again, pin it: signers = [\"{signer}\"]",
                rfc3339(missing_since)
            ));
        }
        if let Some(at) = self.in_configs.get(signer) {
            return Ok(format!("{signer} is trusted for this issuer in {at}"));
        }
        if let Some(k) = locked {
            return Ok(format!(
                "{signer} is this issuer's key in keyroll.lock (first seen {})",
                rfc3339(k.first_seen)
            ));
        }
        Err(format!(
            "signed by {signer}, a key this issuer was never trusted with (not pinned in signers, not this issuer's in keyroll.lock, not trusted for this issuer in the configs; another issuer's key never vouches, nor does a document's word that a key is its own); keyroll adds and removes nothing. If the issuer really signs with it, pin it: signers = [\"{signer}\"]; or, where a config trusts it under a name beside other parties' entries, set the issuer's entity_id in keyroll.toml to that name"
        ))
    }
}

/// What the sources' signatures say, once none of them is refused outright.
struct Signatures {
    /// Per source, in order: why its signer is trusted, or why not.
    signer_trust: Vec<Option<String>>,
    /// Some document is signed by a key the issuer is trusted with.
    vouched: bool,
    /// The first unsigned document after signed ones (keyroll.lock's `signed_since`).
    downgrade: Option<String>,
    /// Every source is signed by a trusted key (and there is one).
    all_signed: bool,
}

/// Judges each source in order: stale, unsigned or badly signed documents are refused
/// (`Err`, the first one found) where the issuer's `signature` mode says so.
fn judge_signatures(
    issuer: &IssuerSettings,
    keys: &IssuerKeys,
    history: History<'_>,
    vouchers: &Vouchers<'_>,
    now: OffsetDateTime,
) -> Result<Signatures, String> {
    let enforce = issuer.signature != SignatureMode::Off;
    let signed_before = history
        .record
        .and_then(|r| r.signed_since)
        .filter(|_| enforce);
    let mut signatures = Signatures {
        signer_trust: Vec::new(),
        vouched: false,
        downgrade: None,
        all_signed: !keys.sources.is_empty(),
    };
    for source in &keys.sources {
        if let Some(until) = source.valid_until
            && now > until
        {
            return Err(format!(
                "{} is stale: its validUntil {} is past; refusing to act on it",
                source.source,
                rfc3339(until)
            ));
        }
        let trust = match &source.signature {
            DocumentSignature::TlsOnly | DocumentSignature::Unsigned
                if issuer.signature == SignatureMode::Required =>
            {
                return Err(format!(
                    "{} is {}, and this issuer requires a signed document (signature = \"required\")",
                    source.source, source.signature
                ));
            }
            DocumentSignature::TlsOnly | DocumentSignature::Unsigned => {
                signatures.all_signed = false;
                if let Some(since) = signed_before {
                    signatures.downgrade.get_or_insert(format!(
                        "{} is {}, but this issuer's documents have been signed since {} (keyroll.lock): an unsigned document after a signed one is a downgrade",
                        source.source,
                        source.signature,
                        rfc3339(since)
                    ));
                }
                None
            }
            DocumentSignature::Refused { reason, .. } if enforce => {
                return Err(format!(
                    "{}: signature refused ({reason}); keyroll adds and removes nothing for this issuer",
                    source.source
                ));
            }
            DocumentSignature::Refused { .. } => {
                signatures.all_signed = false;
                None
            }
            DocumentSignature::Valid {
                weak: true, method, ..
            } if enforce && !issuer.allow_sha1 => {
                return Err(format!(
                    "{}: signed with {method} (SHA-1 or a key under 2048 bits); set allow_sha1 = true for this issuer if its STS still signs so (AD FS may)",
                    source.source
                ));
            }
            DocumentSignature::Valid { signer, .. } => match vouchers.why_trusted(signer) {
                Ok(reason) => {
                    signatures.vouched = true;
                    Some(reason)
                }
                Err(why) if enforce => {
                    return Err(format!("{}: {why}", source.source));
                }
                Err(_) => {
                    signatures.all_signed = false;
                    Some(format!("{signer} is not trusted (signature = \"off\")"))
                }
            },
        };
        signatures.signer_trust.push(trust);
    }
    Ok(signatures)
}

/// Why the published keys break with the issuer's past, when no trusted signer vouched for
/// them; `None` when they continue it.
fn broken_continuity(
    keys: &IssuerKeys,
    history: History<'_>,
    in_configs: &TrustedAt,
    now: OffsetDateTime,
) -> Option<String> {
    // Continuity: some key keyroll has seen must still be published, or a trusted signer
    // must vouch for the new ones. With nothing seen yet (a first run), the keys the configs
    // trust for this issuer stand in: a document listing none of them is not a silent
    // replacement (stale extra entries beside a listed key are fine). A key the issuer
    // withdrew (keyroll.lock keeps it until it expires) continues nothing: an old document
    // replayed lists it.
    let seen: BTreeSet<Thumbprint> = history
        .keys
        .map(|l| {
            l.iter()
                .filter(|(_, k)| super::keys::grace_ended(k, history.remove_after, now).is_none())
                .filter_map(|(t, _)| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if !seen.is_empty() && !seen.iter().any(|t| keys.published.contains_key(t)) {
        Some(format!(
            "none of the {} keys keyroll has seen for this issuer is still published, and no document is signed by a key it was trusted with",
            seen.len()
        ))
    } else if seen.is_empty()
        && !in_configs.is_empty()
        && !in_configs.keys().any(|t| keys.published.contains_key(t))
    {
        Some(format!(
            "keyroll.lock has no keys for this issuer yet, the configs trust {} key{} for it ({}), and the metadata lists none of them, and no document is signed by a key it was trusted with",
            in_configs.len(),
            if in_configs.len() == 1 { "" } else { "s" },
            in_configs
                .iter()
                .map(|(t, at)| format!("{t} at {at}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        None
    }
}

/// What keyroll.lock records of the issuer's documents once this run acts on them: whether
/// every one was signed by a trusted key, and when each document that declares a
/// cacheDuration was first read with these exact bytes; and a warning for one read past
/// its cacheDuration since.
fn record(
    keys: &IssuerKeys,
    before: Option<&IssuerRecord>,
    signed: bool,
    now: OffsetDateTime,
) -> (IssuerRecord, Vec<String>) {
    let mut record = IssuerRecord {
        signed_since: signed.then(|| before.and_then(|r| r.signed_since).unwrap_or(now)),
        documents: BTreeMap::new(),
        // The database decision (decide/database.rs) updates these after the files.
        databases: before.map(|r| r.databases.clone()).unwrap_or_default(),
    };
    let mut warnings = Vec::new();
    for source in &keys.sources {
        let Some(text) = &source.cache_duration else {
            continue;
        };
        let name = crate::model::secret::redact_urls(&source.source);
        let first_seen = before
            .and_then(|r| r.documents.get(&name))
            .filter(|d| d.sha256.eq_ignore_ascii_case(&source.sha256))
            .map_or(now, |d| d.first_seen);
        if let Some(length) = crate::load::signature::parse_duration(text) {
            let due = super::keys::plus(first_seen, length);
            if now > due {
                warnings.push(format!(
                    "{}: cacheDuration {text}: keyroll first read these exact bytes on {} (keyroll.lock), so the document should have been refreshed by {}; the issuer still serves it unchanged",
                    source.source,
                    rfc3339(first_seen),
                    rfc3339(due)
                ));
            }
        }
        record.documents.insert(
            name,
            LockedDocument {
                sha256: source.sha256.to_ascii_uppercase(),
                first_seen,
            },
        );
    }
    (record, warnings)
}
