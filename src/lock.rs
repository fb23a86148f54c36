//! `keyroll.lock`: keyroll's memory of the keys it has seen per issuer. Committed beside
//! keyroll.toml; sorted and stable, so it changes only when a key appears, leaves, returns,
//! or is forgotten, and two branches' changes merge line by line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cert::rfc3339;
use crate::clock::parse_rfc3339;

pub const FILE_NAME: &str = "keyroll.lock";

const HEADER: &str = "# keyroll.lock: the signing keys keyroll has seen, per issuer. Written by keyroll; commit it.\n";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    #[error("{file}:{line}: {detail}")]
    Invalid {
        file: String,
        line: usize,
        detail: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// Issuer name → SHA-1 (uppercase hex) → what is known of the key.
    pub issuers: BTreeMap<String, BTreeMap<String, LockedKey>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedKey {
    pub sha256: String,
    pub subject: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub first_seen: OffsetDateTime,
    pub missing_since: Option<OffsetDateTime>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    version: u32,
    #[serde(default, rename = "issuer")]
    issuers: Vec<LockIssuer>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockIssuer {
    name: String,
    #[serde(default, rename = "key")]
    keys: Vec<LockKeyRow>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockKeyRow {
    sha1: String,
    sha256: String,
    subject: String,
    not_before: String,
    not_after: String,
    first_seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_since: Option<String>,
}

impl Lock {
    /// A missing lock file is an empty lock: the first run.
    pub fn load(path: &Path) -> Result<Self, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(e) => Err(LockError::Io {
                file: path.display().to_string(),
                detail: e.to_string(),
            }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, LockError> {
        let file = path.display().to_string();
        let invalid = |offset: usize, detail: String| LockError::Invalid {
            file: file.clone(),
            line: text[..offset.min(text.len())].matches('\n').count() + 1,
            detail,
        };
        let raw: LockFile = toml::from_str(text)
            .map_err(|e| invalid(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        if raw.version != 1 {
            return Err(invalid(
                0,
                format!("lock version {} is not supported (expected 1)", raw.version),
            ));
        }
        let mut lock = Lock::default();
        for issuer in raw.issuers {
            let keys = lock.issuers.entry(issuer.name).or_default();
            for row in issuer.keys {
                let at = text.find(&row.sha1).unwrap_or(0);
                let time = |s: &str| parse_rfc3339(s).map_err(|e| invalid(at, e));
                let key = LockedKey {
                    not_before: time(&row.not_before)?,
                    not_after: time(&row.not_after)?,
                    first_seen: time(&row.first_seen)?,
                    missing_since: row.missing_since.as_deref().map(time).transpose()?,
                    sha256: row.sha256,
                    subject: row.subject,
                };
                keys.insert(row.sha1.to_ascii_uppercase(), key);
            }
        }
        Ok(lock)
    }

    pub fn to_toml(&self) -> String {
        let raw = LockFile {
            version: 1,
            issuers: self
                .issuers
                .iter()
                .map(|(name, keys)| LockIssuer {
                    name: name.clone(),
                    keys: keys
                        .iter()
                        .map(|(sha1, k)| LockKeyRow {
                            sha1: sha1.clone(),
                            sha256: k.sha256.clone(),
                            subject: k.subject.clone(),
                            not_before: rfc3339(k.not_before),
                            not_after: rfc3339(k.not_after),
                            first_seen: rfc3339(k.first_seen),
                            missing_since: k.missing_since.map(rfc3339),
                        })
                        .collect(),
                })
                .collect(),
        };
        format!(
            "{HEADER}{}",
            toml::to_string(&raw).expect("lock serializes")
        )
    }

    pub fn key(&self, issuer: &str, sha1: &str) -> Option<&LockedKey> {
        self.issuers.get(issuer).and_then(|keys| keys.get(sha1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_stable() {
        let mut lock = Lock::default();
        let t = parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        for (issuer, sha1) in [("b", "BB"), ("a", "CC"), ("a", "AA")] {
            lock.issuers.entry(issuer.into()).or_default().insert(
                sha1.into(),
                LockedKey {
                    sha256: "00".into(),
                    subject: "CN=x".into(),
                    not_before: t,
                    not_after: t,
                    first_seen: t,
                    missing_since: (sha1 == "CC").then_some(t),
                },
            );
        }
        let text = lock.to_toml();
        let again = Lock::parse(Path::new("keyroll.lock"), &text).unwrap();
        assert_eq!(again, lock);
        assert_eq!(again.to_toml(), text);
        // Sorted: issuer a before b, key AA before CC.
        let a = text.find("name = \"a\"").unwrap();
        let b = text.find("name = \"b\"").unwrap();
        assert!(a < b && text.find("sha1 = \"AA\"").unwrap() < text.find("sha1 = \"CC\"").unwrap());
    }
}
