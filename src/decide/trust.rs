//! Trust the metadata, not the network. A document may introduce keys when its signature
//! verifies with a key the issuer is already trusted with (in the configs, in
//! keyroll.lock, or pinned as a signer); and, whatever the signatures, a document in which
//! none of the keys keyroll has seen for the issuer is still published is an identity
//! change, not a rollover: keyroll changes nothing unless the run accepts it.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::cert::rfc3339;
use crate::load::IssuerKeys;
use crate::lock::LockedKey;
use crate::plan::DocumentSignature;
use crate::settings::{IssuerSettings, SignatureMode};
use crate::thumbprint::Thumbprint;

/// Where the configs trust a key for an issuer: `file:line`.
pub type TrustedAt = BTreeMap<Thumbprint, String>;

pub struct Verdict {
    /// Per source, in order: why its signer is trusted, or why not.
    pub signer_trust: Vec<Option<String>>,
    /// The run accepted an identity change for this issuer (titles say so).
    pub identity_change: bool,
}

/// Decides whether the issuer's documents may be acted on. `Err` names why not.
pub fn check(
    issuer: &IssuerSettings,
    keys: &IssuerKeys,
    lock: Option<&BTreeMap<String, LockedKey>>,
    in_configs: &TrustedAt,
    accept_identity_change: bool,
    now: OffsetDateTime,
) -> Result<Verdict, String> {
    let pinned: BTreeSet<Thumbprint> = issuer
        .signers
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let why_trusted = |signer: &Thumbprint| -> Option<String> {
        if pinned.contains(signer) {
            return Some(format!("{signer} is pinned in keyroll.toml (signers)"));
        }
        if let Some(at) = in_configs.get(signer) {
            return Some(format!("{signer} is trusted for this issuer in {at}"));
        }
        lock.and_then(|l| l.get(&signer.to_upper_hex())).map(|k| {
            format!(
                "{signer} is in keyroll.lock since {}",
                rfc3339(k.first_seen)
            )
        })
    };
    let mut signer_trust = Vec::new();
    let mut vouched = false;
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
        let enforce = issuer.signature != SignatureMode::Off;
        let trust = match &source.signature {
            DocumentSignature::TlsOnly | DocumentSignature::Unsigned
                if issuer.signature == SignatureMode::Required =>
            {
                return Err(format!(
                    "{} is {}, and this issuer requires a signed document (signature = \"required\")",
                    source.source, source.signature
                ));
            }
            DocumentSignature::TlsOnly | DocumentSignature::Unsigned => None,
            DocumentSignature::Refused { reason, .. } if enforce => {
                return Err(format!(
                    "{}: signature refused ({reason}); keyroll adds and removes nothing for this issuer",
                    source.source
                ));
            }
            DocumentSignature::Refused { .. } => None,
            DocumentSignature::Valid {
                weak: true, method, ..
            } if enforce && !issuer.allow_sha1 => {
                return Err(format!(
                    "{}: signed with {method} (SHA-1 or a key under 2048 bits); set allow_sha1 = true for this issuer if its STS still signs so (AD FS may)",
                    source.source
                ));
            }
            DocumentSignature::Valid { signer, .. } => match why_trusted(signer) {
                Some(reason) => {
                    vouched = true;
                    Some(reason)
                }
                None if enforce => {
                    return Err(format!(
                        "{}: signed by {signer}, a key this issuer was never trusted with (not in the configs, keyroll.lock or signers); keyroll adds and removes nothing. If the issuer really signs with it, pin it: signers = [\"{signer}\"]",
                        source.source
                    ));
                }
                None => Some(format!("{signer} is not trusted (signature = \"off\")")),
            },
        };
        signer_trust.push(trust);
    }

    // Continuity: some key keyroll has seen must still be published, or a trusted signer
    // must vouch for the new ones.
    let seen: BTreeSet<Thumbprint> = lock
        .map(|l| l.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default();
    let continued = seen.is_empty() || seen.iter().any(|t| keys.published.contains_key(t));
    let mut identity_change = false;
    if !continued && !vouched {
        if !accept_identity_change {
            return Err(format!(
                "identity change, not a rollover: none of the {} keys keyroll has seen for this issuer is still published, and no document is signed by a key it was trusted with; keyroll changes nothing. If the issuer really replaced every key, run again with --accept-identity-change {}",
                seen.len(),
                issuer.name
            ));
        }
        identity_change = true;
    }
    Ok(Verdict {
        signer_trust,
        identity_change,
    })
}
