//! `keyroll.lock`: keyroll's memory of the keys it has seen per issuer. Committed beside
//! keyroll.toml; sorted and stable, so it changes only when a key appears, leaves, returns,
//! or is forgotten, and two branches' changes merge line by line.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::model::cert::{Certificate, rfc3339};
use crate::model::clock::parse_rfc3339;

mod file;

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
    /// Every row that failed its checks, each naming its line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rows(Vec<LockProblem>),
}

#[derive(Debug, Clone, Default)]
pub struct Lock {
    /// Issuer name → SHA-1 (uppercase hex) → what is known of the key.
    pub issuers: BTreeMap<String, BTreeMap<String, LockedKey>>,
    /// Issuer name → what keyroll recorded of its documents (absent: nothing recorded).
    pub records: BTreeMap<String, IssuerRecord>,
    /// Where the lock was read from, to name lines in later errors. Not part of equality:
    /// two locks are equal when they hold the same keys.
    pub origin: Option<Arc<LockOrigin>>,
}

impl PartialEq for Lock {
    fn eq(&self, other: &Self) -> bool {
        self.issuers == other.issuers && self.records == other.records
    }
}

/// What keyroll remembers of an issuer's documents, beside its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerRecord {
    /// Every document keyroll last acted on for the issuer was validly signed by a trusted
    /// key, since this time: from then on an unsigned one is a downgrade (an identity
    /// change), unless keyroll.toml says `signature = "off"`.
    pub signed_since: Option<OffsetDateTime>,
    /// Documents that declare a `cacheDuration`, by source (userinfo removed): the bytes'
    /// SHA-256 and when keyroll first read exactly those bytes, which the duration is
    /// measured from.
    pub documents: BTreeMap<String, LockedDocument>,
    /// `[[database]]` target name → the thumbprints (uppercase hex) its table holds for this
    /// issuer once keyroll's migrations ran: the rows keyroll knows without a connection.
    pub databases: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl IssuerRecord {
    pub fn is_empty(&self) -> bool {
        self.signed_since.is_none() && self.documents.is_empty() && self.databases.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedDocument {
    pub sha256: String,
    pub first_seen: OffsetDateTime,
}

impl Eq for Lock {}

/// The file a lock was read from and the line of each issuer table and key row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockOrigin {
    pub file: String,
    pub issuers: BTreeMap<String, usize>,
    /// (issuer, SHA-1) → line of the row's `sha1`.
    pub rows: BTreeMap<(String, String), usize>,
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

/// Something wrong with a table or row of keyroll.lock, naming its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockProblem {
    pub file: String,
    /// None for a lock that was not read from a file.
    pub line: Option<usize>,
    pub issuer: String,
    /// The row's SHA-1 as written, for a problem with one row.
    pub sha1: Option<String>,
    pub kind: LockProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockProblemKind {
    EmptyIssuerName,
    /// A second `[[issuer]]` table with the same name.
    DuplicateIssuer {
        first_line: usize,
    },
    /// A second row for one key in one issuer's table.
    DuplicateRow {
        first_line: usize,
    },
    NotSha1,
    NotSha256 {
        value: String,
    },
    BadTime {
        field: &'static str,
        detail: String,
    },
    /// `not_before` is not before `not_after`.
    DatesOrder {
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    },
    /// `missing_since` is before `first_seen`.
    MissingBeforeSeen {
        first_seen: OffsetDateTime,
        missing_since: OffsetDateTime,
    },
    /// A second `document` row for one source in one issuer's table.
    DuplicateDocument {
        source: String,
    },
    /// keyroll.toml defines no issuer of this name (a warning: the rows are kept, unused).
    UnknownIssuer {
        rows: usize,
    },
    /// The row disagrees with the certificate that has its SHA-1.
    Mismatch {
        field: &'static str,
        lock: String,
        certificate: String,
    },
}

impl LockProblem {
    /// Everything but a table for an issuer keyroll.toml does not define is an error: keyroll
    /// never acts on a row it cannot trust, and never drops one silently.
    pub fn is_error(&self) -> bool {
        !matches!(self.kind, LockProblemKind::UnknownIssuer { .. })
    }
}

impl std::fmt::Display for LockProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        let issuer = &self.issuer;
        let key = || match &self.sha1 {
            Some(sha1) => format!("issuer \"{issuer}\", key {sha1}"),
            None => format!("issuer \"{issuer}\""),
        };
        match &self.kind {
            LockProblemKind::EmptyIssuerName => {
                f.write_str("an [[issuer]] table has an empty name")
            }
            LockProblemKind::DuplicateIssuer { first_line } => write!(
                f,
                "issuer \"{issuer}\" has a second [[issuer]] table (the first is at line {first_line}); merge them into one"
            ),
            LockProblemKind::DuplicateRow { first_line } => write!(
                f,
                "{} is listed twice (first at line {first_line}); keep one row",
                key()
            ),
            LockProblemKind::DuplicateDocument { source } => write!(
                f,
                "{}: the document {source} is recorded twice; keep one row",
                key()
            ),
            LockProblemKind::NotSha1 => write!(
                f,
                "issuer \"{issuer}\": sha1 \"{}\" is not 40 hexadecimal digits",
                self.sha1.as_deref().unwrap_or_default()
            ),
            LockProblemKind::NotSha256 { value } => write!(
                f,
                "{}: sha256 \"{value}\" is not 64 hexadecimal digits",
                key()
            ),
            LockProblemKind::BadTime { field, detail } => {
                write!(f, "{}: {field}: {detail}", key())
            }
            LockProblemKind::DatesOrder {
                not_before,
                not_after,
            } => write!(
                f,
                "{}: not_before {} is not before not_after {}",
                key(),
                rfc3339(*not_before),
                rfc3339(*not_after)
            ),
            LockProblemKind::MissingBeforeSeen {
                first_seen,
                missing_since,
            } => write!(
                f,
                "{}: missing_since {} is before first_seen {}",
                key(),
                rfc3339(*missing_since),
                rfc3339(*first_seen)
            ),
            // Stale, not wrong: a warning that says what is kept and how to drop it (an
            // issuer renamed in keyroll.toml starts a new table; the old one stays until
            // someone deletes it).
            LockProblemKind::UnknownIssuer { rows } => write!(
                f,
                "stale table: issuer \"{issuer}\" is not defined in keyroll.toml, so keyroll does not use this [[issuer]] table ({}) and keeps it as it is; if the issuer is gone, delete the table from this line up to the next [[issuer]]",
                match rows {
                    0 => "no key rows".to_string(),
                    1 => "1 key row".to_string(),
                    n => format!("{n} key rows"),
                }
            ),
            LockProblemKind::Mismatch {
                field,
                lock,
                certificate,
            } => write!(
                f,
                "{}: {field} {lock} differs from the certificate's {certificate}; keyroll.lock was edited or is corrupt: correct the row (or delete it, and keyroll records the key again)",
                key()
            ),
        }
    }
}

impl Lock {
    /// Checks the lock against what this run loaded: tables for issuers keyroll.toml does
    /// not define (warnings), and rows that disagree with the certificate of the same SHA-1
    /// (errors: a `not_after` edited into the past would otherwise remove a key at once).
    /// `certificates` are every certificate the run holds: each issuer's published keys, and
    /// any a config file holds.
    pub fn check_against<'c>(
        &self,
        defined: &[&str],
        certificates: impl IntoIterator<Item = &'c Certificate>,
    ) -> Vec<LockProblem> {
        let by_sha1: BTreeMap<String, &Certificate> = certificates
            .into_iter()
            .map(|c| (c.sha1.to_upper_hex(), c))
            .collect();
        let file = self
            .origin
            .as_ref()
            .map_or_else(|| FILE_NAME.to_string(), |o| o.file.clone());
        let mut problems = Vec::new();
        for (issuer, keys) in &self.issuers {
            let issuer_line = self
                .origin
                .as_ref()
                .and_then(|o| o.issuers.get(issuer).copied());
            if !defined.contains(&issuer.as_str()) {
                problems.push(LockProblem {
                    file: file.clone(),
                    line: issuer_line,
                    issuer: issuer.clone(),
                    sha1: None,
                    kind: LockProblemKind::UnknownIssuer { rows: keys.len() },
                });
                // Its rows are not used, so they are not checked either: a stale table is a
                // warning, never an error that fails the run.
                continue;
            }
            for (sha1, key) in keys {
                let Some(cert) = by_sha1.get(sha1) else {
                    continue;
                };
                let line = self
                    .origin
                    .as_ref()
                    .and_then(|o| o.rows.get(&(issuer.clone(), sha1.clone())).copied());
                let mismatch =
                    |field: &'static str, lock: String, certificate: String| LockProblem {
                        file: file.clone(),
                        line,
                        issuer: issuer.clone(),
                        sha1: Some(sha1.clone()),
                        kind: LockProblemKind::Mismatch {
                            field,
                            lock,
                            certificate,
                        },
                    };
                if !key.sha256.eq_ignore_ascii_case(&cert.sha256_hex()) {
                    problems.push(mismatch("sha256", key.sha256.clone(), cert.sha256_hex()));
                }
                if key.not_before != cert.not_before {
                    problems.push(mismatch(
                        "not_before",
                        rfc3339(key.not_before),
                        rfc3339(cert.not_before),
                    ));
                }
                if key.not_after != cert.not_after {
                    problems.push(mismatch(
                        "not_after",
                        rfc3339(key.not_after),
                        rfc3339(cert.not_after),
                    ));
                }
            }
        }
        problems
    }

    /// The issuer's table and record taken from `other` (absent there: removed here).
    pub fn take_issuer_from(&mut self, other: &Lock, issuer: &str) {
        match other.issuers.get(issuer) {
            Some(table) => {
                self.issuers.insert(issuer.to_string(), table.clone());
            }
            None => {
                self.issuers.remove(issuer);
            }
        }
        match other.records.get(issuer) {
            Some(record) => {
                self.records.insert(issuer.to_string(), record.clone());
            }
            None => {
                self.records.remove(issuer);
            }
        }
    }

    /// Equal but for the documents' first-seen records: bookkeeping that rides along with a
    /// change, never one by itself (a federation re-signed daily would otherwise ask for a
    /// pull request every day).
    pub fn same_but_documents(&self, other: &Lock) -> bool {
        self.issuers == other.issuers
            && self.records.keys().chain(other.records.keys()).all(|name| {
                let (a, b) = (self.records.get(name), other.records.get(name));
                a.and_then(|r| r.signed_since) == b.and_then(|r| r.signed_since)
                    && a.map(|r| &r.databases) == b.map(|r| &r.databases)
            })
    }

    pub fn key(&self, issuer: &str, sha1: &str) -> Option<&LockedKey> {
        self.issuers.get(issuer).and_then(|keys| keys.get(sha1))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn round_trip_is_stable() {
        let mut lock = Lock::default();
        let t = parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        let later = parse_rfc3339("2027-01-02T03:04:05Z").unwrap();
        let (aa, bb, cc) = ("AA".repeat(20), "BB".repeat(20), "CC".repeat(20));
        for (issuer, sha1) in [("b", &bb), ("a", &cc), ("a", &aa)] {
            lock.issuers.entry(issuer.into()).or_default().insert(
                sha1.clone(),
                LockedKey {
                    sha256: "0".repeat(64),
                    subject: "CN=x".into(),
                    not_before: t,
                    not_after: later,
                    first_seen: t,
                    missing_since: (*sha1 == cc).then_some(t),
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
        assert!(a < b && text.find(&aa).unwrap() < text.find(&cc).unwrap());
    }
}
