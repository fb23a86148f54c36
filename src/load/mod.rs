//! Step 1, load: everything the decision needs, read once — keyroll.lock, every issuer's
//! metadata (fetched and parsed), and every target file (from the work tree, or from the
//! commit a pull request targets), scanned with `configSource` followed. All I/O of a run
//! happens here or in [`crate::act`]; [`crate::decide`] reads none.

pub mod database;
pub mod fetch;
pub mod git;
mod lock;
pub mod metadata;
pub mod paths;
mod rules;
pub mod scan;
mod settings;
pub mod signature;
pub mod snapshot;
mod targets;

pub use targets::{TargetFile, Tree, in_prefix, load_targets};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use time::OffsetDateTime;

use crate::load::fetch::Fetcher;
use crate::model::cert::{Certificate, rfc3339};
use crate::model::lock::Lock;
use crate::model::rules::RuleSet;
use crate::model::settings::{IssuerSettings, Settings, SourceKind};
use crate::model::source::SourceInfo;
use crate::model::thumbprint::Thumbprint;
use metadata::MetadataDocument;

/// Why an issuer's keys could not be loaded. The issuer is then left alone: a failed
/// source never reads as "every key was withdrawn".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    #[error("metadata source failed to load: {0}")]
    Source(String),
    #[error("{document} is {found}, not the {expected} document keyroll.toml says")]
    Kind {
        document: String,
        found: String,
        expected: String,
    },
    #[error(
        "entityID mismatch: {document} names {found}, keyroll.toml expects {expected}; refusing to act"
    )]
    EntityMismatch {
        document: String,
        found: String,
        expected: String,
    },
    #[error("{document} describes {count} entities; set entity_id for issuer \"{issuer}\"")]
    ManyEntities {
        document: String,
        count: usize,
        issuer: String,
    },
    #[error(
        "the metadata publishes no {uses} key: refusing to act (keyroll never treats that as \"every key was withdrawn\")"
    )]
    NoKey { uses: String },
}

/// An issuer's published keys as read.
#[derive(Debug, Clone)]
pub struct IssuerKeys {
    pub sources: Vec<SourceInfo>,
    /// Counted keys (by `uses`), one per certificate.
    pub published: BTreeMap<Thumbprint, Arc<Certificate>>,
    pub entity_ids: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct LoadedIssuer {
    pub name: String,
    pub keys: Result<IssuerKeys, IssuerError>,
}

/// The DER of the certificate with this SHA-1 as the issuer's metadata publishes it, read
/// again: keys are held without their DER once loaded, and `entra apply` sends the
/// certificate itself. Its SHA-1 is checked, so only the key decided on can be sent.
pub async fn published_der(
    settings: &Settings,
    issuer: &IssuerSettings,
    fetcher: &Fetcher,
    sha1: Thumbprint,
) -> Result<Vec<u8>, String> {
    for source in &issuer.metadata {
        let resolved = settings.resolve_source(source);
        let bytes = metadata::read_source(&resolved, fetcher)
            .await
            .map_err(|e| crate::model::secret::redact(&e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        for piece in text.split("X509Certificate>").skip(1) {
            let base64 = piece.split('<').next().unwrap_or("");
            if let Ok(certificate) = Certificate::from_base64(base64)
                && certificate.sha1 == sha1
            {
                return Ok(certificate.der);
            }
        }
    }
    Err(format!(
        "issuer {}'s metadata no longer holds the certificate {sha1}",
        issuer.name
    ))
}

/// Reads every issuer's sources, in keyroll.toml's order.
pub async fn load_issuers(
    settings: &Settings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Vec<LoadedIssuer> {
    let mut loaded = Vec::new();
    for issuer in &settings.issuers {
        loaded.push(LoadedIssuer {
            name: issuer.name.clone(),
            keys: load_issuer(settings, issuer, fetcher, now).await,
        });
    }
    loaded
}

async fn load_issuer(
    settings: &Settings,
    issuer: &IssuerSettings,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<IssuerKeys, IssuerError> {
    let mut keys = IssuerKeys {
        sources: Vec::new(),
        published: BTreeMap::new(),
        entity_ids: BTreeSet::new(),
    };
    for source in &issuer.metadata {
        let resolved = settings.resolve_source(source);
        // Errors and reports name the source without its user information: they end up
        // in saved plans and artifacts; the fetch above alone uses the credentials.
        let doc = metadata::load(&resolved, fetcher, now)
            .await
            .map_err(|e| IssuerError::Source(crate::model::secret::redact(&e.to_string())))?;
        check_kind(issuer, &doc)?;
        add_document(issuer, &doc, &mut keys)?;
    }
    if keys.published.is_empty() {
        return Err(IssuerError::NoKey {
            uses: issuer
                .uses
                .iter()
                .map(|u| format!("{u:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join("/"),
        });
    }
    Ok(keys)
}

fn check_kind(issuer: &IssuerSettings, doc: &MetadataDocument) -> Result<(), IssuerError> {
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
        Err(IssuerError::Kind {
            document: crate::model::secret::redact_urls(&doc.source),
            found: doc.kind.to_string(),
            expected: format!("{:?}", issuer.kind),
        })
    }
}

fn add_document(
    issuer: &IssuerSettings,
    doc: &MetadataDocument,
    keys: &mut IssuerKeys,
) -> Result<(), IssuerError> {
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
                return Err(IssuerError::EntityMismatch {
                    document: crate::model::secret::redact_urls(&doc.source),
                    found: entity_ids.iter().cloned().collect::<Vec<_>>().join(", "),
                    expected: expected.clone(),
                });
            }
        }
        None if entity_ids.len() > 1 => {
            return Err(IssuerError::ManyEntities {
                document: crate::model::secret::redact_urls(&doc.source),
                count: entity_ids.len(),
                issuer: issuer.name.clone(),
            });
        }
        None => doc.keys.iter().collect(),
    };
    keys.entity_ids
        .extend(relevant.iter().filter_map(|k| k.entity_id.clone()));
    // Signed or not: the tightest validUntil / cacheDuration over the root, any aggregate
    // and the entity holding the keys this issuer uses.
    let mut bounds = crate::load::signature::Bounds::default();
    for key in &relevant {
        bounds.tighten(&key.bounds);
    }
    for key in relevant.into_iter().filter(|k| issuer.counts(&k.uses)) {
        keys.published
            .insert(key.thumbprint(), key.certificate.clone());
    }
    keys.sources.push(SourceInfo {
        // As every report and stored plan shows it: `https://user:pw@host/…` as
        // `https://***@host/…`.
        source: crate::model::secret::redact_urls(&doc.source),
        sha256: doc.sha256.clone(),
        read_at: rfc3339(doc.fetched_at),
        bytes: doc.bytes,
        signature: signature_of(doc),
        valid_until: bounds.valid_until,
        cache_duration: bounds.cache_duration.map(|c| c.text),
        signer_trust: None,
    });
    Ok(())
}

/// The document's signature as verified when it was parsed.
fn signature_of(doc: &MetadataDocument) -> crate::model::source::DocumentSignature {
    use crate::load::signature::Verdict;
    use crate::model::source::DocumentSignature as S;
    if doc.kind != metadata::DocumentKind::SamlMetadata {
        return S::TlsOnly;
    }
    let Some(report) = &doc.signature_report else {
        return S::Unsigned;
    };
    let details = report.signature.as_ref();
    match &report.verdict {
        Verdict::Unsigned => S::Unsigned,
        Verdict::Valid => {
            let details = details.expect("a valid signature has details");
            S::Valid {
                signer: details
                    .signer_sha1
                    .unwrap_or(Thumbprint::from_bytes([0; 20])),
                method: details
                    .signature_method
                    .as_deref()
                    .map_or("unknown", crate::load::signature::short_name)
                    .to_string(),
                weak: doc.weak_signature,
            }
        }
        Verdict::Refused(refusal) => S::Refused {
            reason: refusal.to_string(),
            claimed_signer: details.and_then(|d| d.signer_sha1),
        },
    }
}

/// Why the targets could not be listed at all (the run stops: nothing is decided).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Lock(#[from] crate::model::lock::LockError),
    #[error("{file}:{line}: target dialect \"{dialect}\" is not a known rule (known: {known})")]
    UnknownDialect {
        file: String,
        line: usize,
        dialect: String,
        known: String,
    },
    #[error(
        "{file}: no [[issuer]] is configured, so there is nothing to track. Add one (`keyroll init --metadata URL` writes it for you) with name and metadata = [\"URL or path\"]"
    )]
    NoIssuers { file: String },
    #[error(
        "{file}: no target is configured ([[target]] for config files, [[database]] for tables, [[federated_domain]] for Entra ID), so nothing would ever change. Add one, e.g. [[target]] with files = [\"src/**/Web.config\"] and issuers = [\"NAME\"]"
    )]
    NoTargets { file: String },
    #[error("listing target files under {root}: {detail}")]
    Walk { root: String, detail: String },
    #[error(transparent)]
    Git(#[from] crate::load::git::GitError),
}

/// Everything the decision reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub settings: Settings,
    pub lock: Lock,
    pub issuers: Vec<LoadedIssuer>,
    pub targets: Vec<TargetFile>,
    pub warnings: Vec<String>,
    /// Issuers whose identity change this run accepts (`--accept-identity-change`).
    pub accept_identity_change: BTreeSet<String>,
    /// Per `[[database]]` target, its live rows when `url_env` gives a connection.
    pub databases: BTreeMap<String, database::Live>,
}

/// Checks keyroll.toml against the rules: targets name known dialects, and there is
/// something to do.
pub fn check_settings(settings: &Settings, rules: &RuleSet) -> Result<(), LoadError> {
    let file = settings.path.display().to_string();
    if settings.issuers.is_empty() {
        return Err(LoadError::NoIssuers { file });
    }
    // Every kind of target counts: a keyroll.toml may hold only tables, or only federated
    // domains (whose Entra ID copy of the keys keyroll checks).
    if settings.targets.is_empty()
        && settings.databases.is_empty()
        && settings.federated_domains.is_empty()
    {
        return Err(LoadError::NoTargets { file });
    }
    for target in &settings.targets {
        if let Some(dialect) = &target.dialect
            && rules.get(dialect).is_none()
        {
            return Err(LoadError::UnknownDialect {
                line: settings.line_of(&format!("\"{dialect}\"")),
                file,
                dialect: dialect.clone(),
                known: rules
                    .rules
                    .iter()
                    .map(|r| r.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// Loads everything for one run.
pub async fn load(
    settings: &Settings,
    rules: &RuleSet,
    fetcher: &Fetcher,
    tree: &Tree<'_>,
    now: OffsetDateTime,
) -> Result<Inputs, LoadError> {
    check_settings(settings, rules)?;
    let lock = tree.lock(settings)?;
    let (targets, warnings) = load_targets(settings, rules, tree)?;
    let issuers = load_issuers(settings, fetcher, now).await;
    let databases = database::load_live(settings).await;
    Ok(Inputs {
        settings: settings.clone(),
        lock,
        issuers,
        targets,
        warnings,
        accept_identity_change: BTreeSet::new(),
        databases,
    })
}

impl Inputs {
    /// The targets (by their display path) whose file in the work tree is not what was read:
    /// for inputs read from a commit (`Tree::Git`), the files the work tree changed since.
    /// A file the work tree lacks or cannot read differs too.
    pub fn differing_from_work_tree(&self) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|t| std::fs::read(&t.path).ok() != Some(t.file.encoding.encode(&t.file.bytes)))
            .map(|t| t.display.as_str())
            .collect()
    }
}
