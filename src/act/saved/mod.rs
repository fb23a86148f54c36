//! Saved plans, as terraform has them: `keyroll plan --out plan.json` writes the plan with
//! the SHA-256 of every input it was decided from; `keyroll apply plan.json` writes exactly
//! those bytes, and `keyroll pr --plan plan.json` publishes exactly that plan — or each
//! refuses, naming every input that changed since.
//!
//! The format (`schema` = [`SCHEMA`], `version` = [`VERSION`]; docs/saved-plan.md):
//! - `inputs`: keyroll.toml's and keyroll.lock's SHA-256 (null: no lock file), each issuer's
//!   metadata documents (source and SHA-256 of the bytes read, or the error that stopped
//!   the issuer), and every target file read (path relative to keyroll.toml's folder, SHA-256).
//! - `files`: each file the plan changes: `before_sha256`, the new bytes in full (`after`,
//!   or `after_base64` for bytes that are not UTF-8) and their `after_sha256`, and the
//!   changes with their reasons (for reviewers; not read back).
//! - `lock_after`: keyroll.lock's new text, or null when it does not change.
//! - `errors`, `warnings`: as the plan reported them.
//!
//! `apply` and `pr` both re-read every input, compare hashes, and decide again from the
//! re-read inputs at the saved time — `decide` is a pure function of those — refusing unless
//! that decision has exactly the saved files and lock. The file is never trusted as written:
//! an edited plan (another key, a config that trusts nothing, malformed XML, a lock that
//! "remembers" a key) differs from the decision and is refused, and what is written is the
//! decision's bytes, which passed the load rules and the lockout guard. Applied later than
//! its `as_of`, the same inputs decided now must make the same changes, and keyroll.lock is
//! written as of now (`replan.rs`). `pr` also needs the whole [`Plan`] (each issuer's slice,
//! reasons, key reports for the PR body).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::act::{self, ActError};
use crate::decide::plan::Plan;
use crate::load::{Inputs, Tree};
use crate::model::cert::rfc3339;
use crate::model::clock::parse_rfc3339;
use crate::model::lock::{Lock, LockError};
use crate::model::settings::Settings;

mod replan;

pub const SCHEMA: &str = "keyroll-saved-plan";
pub const VERSION: u32 = 1;
/// What [`SavedError::Drift`] says before it lists what changed.
pub const DRIFT: &str = "the inputs changed since the plan was made, so it is not applied (nothing written); make a new plan and review it";

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    #[error("{file}: not a keyroll saved plan: {detail}")]
    Format { file: String, detail: String },
    #[error(
        "{file}: saved-plan format version {found} is not supported by this keyroll (it reads version {VERSION}); make the plan again"
    )]
    Version { file: String, found: u32 },
    #[error(
        "{file}: {DRIFT}:\n{}",
        .drift.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n")
    )]
    Drift { file: String, drift: Vec<Drift> },
    #[error("{file}: {detail}; the file was edited or is damaged; make the plan again")]
    Inconsistent { file: String, detail: String },
    #[error(
        "{file}: deciding again from the same inputs gives another plan ({detail}): was it made by another keyroll version ({version}), or with other --rules? Make the plan again"
    )]
    Decision {
        file: String,
        detail: String,
        version: String,
    },
    #[error(
        "{file}: the plan is dated {as_of}, later than now ({now}); a plan from the future is not applied (make it again)"
    )]
    Future {
        file: String,
        as_of: String,
        now: String,
    },
    #[error(
        "{file}: the plan is out of date: decided again now ({now}), the same inputs give {detail} (a document gone stale, a key past its grace period or expired); make the plan again and review it"
    )]
    OutOfDate {
        file: String,
        now: String,
        detail: String,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Act(#[from] ActError),
}

/// One input that is not what the plan read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    Config {
        path: String,
    },
    Lock {
        planned: Option<String>,
        now: Option<String>,
    },
    Metadata {
        issuer: String,
        source: String,
        planned: String,
        now: String,
    },
    IssuerLoad {
        issuer: String,
        planned: Option<String>,
        now: Option<String>,
    },
    TargetChanged {
        path: String,
    },
    TargetAdded {
        path: String,
    },
    TargetRemoved {
        path: String,
    },
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Config { path } => write!(f, "{path} changed"),
            Drift::Lock { planned, now } => match (planned, now) {
                (Some(_), None) => f.write_str("keyroll.lock was deleted"),
                (None, Some(_)) => f.write_str("keyroll.lock appeared"),
                _ => f.write_str("keyroll.lock changed"),
            },
            Drift::Metadata {
                issuer,
                source,
                planned,
                now,
            } => write!(
                f,
                "issuer {issuer}: metadata {source} changed (SHA-256 {}… when planned, {}… now)",
                short(planned),
                short(now)
            ),
            Drift::IssuerLoad {
                issuer,
                planned,
                now,
            } => match (planned, now) {
                (None, Some(e)) => write!(
                    f,
                    "issuer {issuer}: its metadata loaded when planned and fails now ({e})"
                ),
                (Some(e), None) => write!(
                    f,
                    "issuer {issuer}: its metadata failed when planned ({e}) and loads now"
                ),
                _ => write!(
                    f,
                    "issuer {issuer}: it reads a different number of metadata documents"
                ),
            },
            Drift::TargetChanged { path } => write!(f, "{path} changed"),
            Drift::TargetAdded { path } => {
                write!(f, "{path} is a new target file (the plan did not read it)")
            }
            Drift::TargetRemoved { path } => write!(f, "{path} is gone"),
        }
    }
}

/// Hex SHA-256, uppercase (as keyroll shows hashes everywhere).
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode_upper(sha2::Sha256::digest(bytes))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub schema: String,
    pub version: u32,
    /// The keyroll version that made the plan.
    pub keyroll: String,
    /// The time the plan was decided at (RFC 3339, full precision).
    pub as_of: String,
    pub inputs: SavedInputs,
    pub files: Vec<SavedFile>,
    /// keyroll.lock's new text; null when it does not change.
    pub lock_after: Option<String>,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedInputs {
    /// keyroll.toml as given to `plan` (for messages), and the SHA-256 of its bytes.
    pub config: String,
    pub config_sha256: String,
    /// SHA-256 of keyroll.lock's bytes; null when there was none.
    pub lock_sha256: Option<String>,
    pub issuers: Vec<SavedIssuer>,
    pub targets: Vec<SavedTarget>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedIssuer {
    pub name: String,
    /// Each metadata document read, in keyroll.toml's order.
    pub sources: Vec<SavedSource>,
    /// Why the issuer's keys could not be loaded (then `sources` may be short).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedSource {
    pub source: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedTarget {
    /// Relative to keyroll.toml's folder, with `/`.
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedFile {
    pub path: String,
    pub before_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_base64: Option<String>,
    pub after_sha256: String,
    /// The changes and why, as `plan --format json` shows them; not read back.
    #[serde(default)]
    pub changes: serde_json::Value,
}

impl SavedFile {
    fn after_bytes(&self) -> Option<Vec<u8>> {
        match (&self.after, &self.after_base64) {
            (Some(text), None) => Some(text.clone().into_bytes()),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).ok(),
            _ => None,
        }
    }
}

/// keyroll.lock's bytes as the tree holds them (None: no lock file), checked to be the lock
/// the run loaded (a write between the two reads is a drift, not a silent mismatch).
pub fn lock_bytes(
    settings: &Settings,
    tree: &Tree<'_>,
    loaded: &Lock,
) -> Result<Option<Vec<u8>>, SavedError> {
    let bytes = match tree {
        Tree::Work => act::read_lock_bytes(settings)?,
        Tree::Git {
            repo,
            commit,
            prefix,
        } => {
            let path = crate::load::in_prefix(prefix, crate::model::lock::FILE_NAME);
            repo.blob_at(*commit, &path).map_err(|e| SavedError::Io {
                file: path,
                detail: e.to_string(),
            })?
        }
    };
    let path = act::lock_path(settings);
    let parsed = match &bytes {
        Some(b) => Lock::parse(&path, &String::from_utf8_lossy(b))?,
        None => Lock::default(),
    };
    if parsed != *loaded {
        return Err(SavedError::Drift {
            file: path.display().to_string(),
            drift: vec![Drift::Lock {
                planned: None,
                now: None,
            }],
        });
    }
    Ok(bytes)
}

impl SavedInputs {
    pub fn of(inputs: &Inputs, lock: Option<&[u8]>) -> SavedInputs {
        SavedInputs {
            config: inputs.settings.path.display().to_string(),
            config_sha256: sha256(inputs.settings.text.as_bytes()),
            lock_sha256: lock.map(sha256),
            issuers: inputs
                .issuers
                .iter()
                .map(|i| match &i.keys {
                    Ok(keys) => SavedIssuer {
                        name: i.name.clone(),
                        sources: keys
                            .sources
                            .iter()
                            .map(|s| SavedSource {
                                // Already without user information (load.rs); kept so
                                // here too, as this is written to a file that is shared.
                                // Only the SHA-256 is compared when the plan is applied.
                                source: crate::model::secret::redact_urls(&s.source),
                                sha256: s.sha256.to_ascii_uppercase(),
                            })
                            .collect(),
                        error: None,
                    },
                    Err(e) => SavedIssuer {
                        name: i.name.clone(),
                        sources: Vec::new(),
                        error: Some(crate::model::secret::redact(&e.to_string())),
                    },
                })
                .collect(),
            targets: inputs
                .targets
                .iter()
                .map(|t| SavedTarget {
                    path: t.display.clone(),
                    sha256: sha256(&t.file.bytes),
                })
                .collect(),
        }
    }

    /// Every difference between what the plan read and what was read now.
    pub fn drift(&self, now: &SavedInputs) -> Vec<Drift> {
        let mut drift = Vec::new();
        if self.config_sha256 != now.config_sha256 {
            drift.push(Drift::Config {
                path: now.config.clone(),
            });
        }
        if self.lock_sha256 != now.lock_sha256 {
            drift.push(Drift::Lock {
                planned: self.lock_sha256.clone(),
                now: now.lock_sha256.clone(),
            });
        }
        let issuers_now: BTreeMap<&str, &SavedIssuer> =
            now.issuers.iter().map(|i| (i.name.as_str(), i)).collect();
        for planned in &self.issuers {
            // An issuer added or removed changed keyroll.toml, reported above.
            let Some(current) = issuers_now.get(planned.name.as_str()) else {
                continue;
            };
            match (&planned.error, &current.error) {
                (None, None) if planned.sources.len() == current.sources.len() => {
                    for (p, c) in planned.sources.iter().zip(&current.sources) {
                        if p.sha256 != c.sha256 {
                            drift.push(Drift::Metadata {
                                issuer: planned.name.clone(),
                                source: c.source.clone(),
                                planned: p.sha256.clone(),
                                now: c.sha256.clone(),
                            });
                        }
                    }
                }
                // Failed then and now: the plan changes nothing for it either way.
                (Some(_), Some(_)) => {}
                (p, c) => drift.push(Drift::IssuerLoad {
                    issuer: planned.name.clone(),
                    planned: p.clone(),
                    now: c.clone(),
                }),
            }
        }
        let targets_now: BTreeMap<&str, &str> = now
            .targets
            .iter()
            .map(|t| (t.path.as_str(), t.sha256.as_str()))
            .collect();
        let targets_then: BTreeMap<&str, &str> = self
            .targets
            .iter()
            .map(|t| (t.path.as_str(), t.sha256.as_str()))
            .collect();
        for (path, hash) in &targets_then {
            match targets_now.get(path) {
                None => drift.push(Drift::TargetRemoved {
                    path: path.to_string(),
                }),
                Some(now) if now != hash => drift.push(Drift::TargetChanged {
                    path: path.to_string(),
                }),
                Some(_) => {}
            }
        }
        for path in targets_now.keys() {
            if !targets_then.contains_key(path) {
                drift.push(Drift::TargetAdded {
                    path: path.to_string(),
                });
            }
        }
        drift
    }
}

impl SavedPlan {
    /// The plan and what it was decided from. `lock` is keyroll.lock's bytes as read (see
    /// [`lock_bytes`]).
    pub fn new(inputs: &Inputs, plan: &Plan, lock: Option<&[u8]>) -> SavedPlan {
        SavedPlan {
            schema: SCHEMA.to_string(),
            version: VERSION,
            keyroll: env!("CARGO_PKG_VERSION").to_string(),
            as_of: rfc3339(plan.now),
            inputs: SavedInputs::of(inputs, lock),
            files: plan
                .files
                .iter()
                .map(|f| {
                    let text = String::from_utf8(f.after.clone()).ok();
                    SavedFile {
                        path: f.display.clone(),
                        before_sha256: sha256(&f.before),
                        after_base64: text
                            .is_none()
                            .then(|| base64::engine::general_purpose::STANDARD.encode(&f.after)),
                        after: text,
                        after_sha256: sha256(&f.after),
                        changes: {
                            // Reasons quote sources and error text: stored redacted.
                            let mut changes = serde_json::to_value(&f.changes).unwrap_or_default();
                            crate::model::secret::redact_json(&mut changes);
                            changes
                        },
                    }
                })
                .collect(),
            lock_after: plan.lock_changed().then(|| plan.lock_after.to_toml()),
            // The plan file is shared (reviewed, uploaded): no token or URL password in it,
            // whatever text an error quoted. Neither is compared when the plan is applied.
            errors: plan
                .errors
                .iter()
                .map(|e| crate::model::secret::redact(&e.to_string()))
                .collect(),
            warnings: plan
                .warnings
                .iter()
                .map(|w| crate::model::secret::redact(w))
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a saved plan serializes") + "\n"
    }

    /// Writes the plan file atomically.
    pub fn write(&self, path: &Path) -> Result<(), SavedError> {
        crate::act::write::write_atomic(path, self.to_json().as_bytes()).map_err(|e| {
            SavedError::Io {
                file: path.display().to_string(),
                detail: e.to_string(),
            }
        })
    }

    /// Reads a plan file, refusing another format or version.
    pub fn read(path: &Path) -> Result<SavedPlan, SavedError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SavedError::Io {
            file: file.clone(),
            detail: e.to_string(),
        })?;
        // The schema and version first, so that a newer format is named as such rather
        // than as an unknown field.
        let head: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| SavedError::Format {
                file: file.clone(),
                detail: e.to_string(),
            })?;
        if head.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            return Err(SavedError::Format {
                file,
                detail: format!("its \"schema\" is not \"{SCHEMA}\""),
            });
        }
        match head.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            found => {
                return Err(SavedError::Version {
                    file,
                    found: found.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
                });
            }
        }
        let plan: SavedPlan = serde_json::from_value(head).map_err(|e| SavedError::Format {
            file: file.clone(),
            detail: e.to_string(),
        })?;
        plan.as_of_time(&file)?;
        for f in &plan.files {
            match f.after_bytes() {
                Some(bytes) if sha256(&bytes) == f.after_sha256 => {}
                _ => {
                    return Err(SavedError::Inconsistent {
                        file,
                        detail: format!("the new bytes of {} do not match after_sha256", f.path),
                    });
                }
            }
        }
        Ok(plan)
    }

    fn as_of_time(&self, file: &str) -> Result<OffsetDateTime, SavedError> {
        parse_rfc3339(&self.as_of).map_err(|detail| SavedError::Format {
            file: file.to_string(),
            detail: format!("as_of: {detail}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(sources: &[&str], error: Option<&str>, targets: &[(&str, &str)]) -> SavedInputs {
        SavedInputs {
            config: "keyroll.toml".into(),
            config_sha256: "C".into(),
            lock_sha256: Some("L".into()),
            issuers: vec![SavedIssuer {
                name: "adfs".into(),
                sources: sources
                    .iter()
                    .map(|s| SavedSource {
                        source: "md.xml".into(),
                        sha256: s.to_string(),
                    })
                    .collect(),
                error: error.map(str::to_string),
            }],
            targets: targets
                .iter()
                .map(|(p, h)| SavedTarget {
                    path: p.to_string(),
                    sha256: h.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn drift_names_each_input_that_differs() {
        let planned = inputs(&["M1"], None, &[("a", "1"), ("b", "2")]);
        assert_eq!(planned.drift(&planned), []);
        let now = inputs(&["M2"], None, &[("a", "1"), ("b", "3"), ("c", "4")]);
        let drift: Vec<String> = planned
            .drift(&now)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            drift,
            [
                "issuer adfs: metadata md.xml changed (SHA-256 M1… when planned, M2… now)",
                "b changed",
                "c is a new target file (the plan did not read it)"
            ]
        );
        // An issuer that failed then and fails now changes nothing either way.
        let failed = inputs(&[], Some("timeout"), &[("a", "1"), ("b", "2")]);
        let failed_again = inputs(&[], Some("HTTP 500"), &[("a", "1"), ("b", "2")]);
        assert_eq!(failed.drift(&failed_again), []);
        assert_eq!(
            planned.drift(&failed)[0].to_string(),
            "issuer adfs: its metadata loaded when planned and fails now (timeout)"
        );
        let mut no_lock = planned.clone();
        no_lock.lock_sha256 = None;
        assert_eq!(
            planned.drift(&no_lock)[0].to_string(),
            "keyroll.lock was deleted"
        );
        assert_eq!(
            no_lock.drift(&planned)[0].to_string(),
            "keyroll.lock appeared"
        );
    }
}
