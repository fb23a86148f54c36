//! `keyroll.lock`: keyroll's memory of the keys it has seen per issuer. Committed beside
//! keyroll.toml; sorted and stable, so it changes only when a key appears, leaves, returns,
//! or is forgotten, and two branches' changes merge line by line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use toml::Spanned;

use crate::model::cert::{Certificate, rfc3339};
use crate::model::clock::parse_rfc3339;

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

#[derive(Serialize)]
struct LockFile {
    version: u32,
    #[serde(rename = "issuer")]
    issuers: Vec<LockIssuer>,
}

#[derive(Serialize)]
struct LockIssuer {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_since: Option<String>,
    #[serde(rename = "document", skip_serializing_if = "Vec::is_empty")]
    documents: Vec<LockDocumentRow>,
    #[serde(rename = "database", skip_serializing_if = "Vec::is_empty")]
    databases: Vec<LockDatabaseRow>,
    #[serde(rename = "key")]
    keys: Vec<LockKeyRow>,
}

#[derive(Serialize)]
struct LockDocumentRow {
    source: String,
    sha256: String,
    first_seen: String,
}

#[derive(Serialize)]
struct LockDatabaseRow {
    name: String,
    rows: Vec<String>,
}

#[derive(Serialize)]
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

/// The file as read, with where each value is, to name lines.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFile {
    version: u32,
    #[serde(default, rename = "issuer")]
    issuers: Vec<ReadIssuer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadIssuer {
    name: Spanned<String>,
    signed_since: Option<Spanned<String>>,
    #[serde(default, rename = "document")]
    documents: Vec<ReadDocument>,
    #[serde(default, rename = "database")]
    databases: Vec<ReadDatabase>,
    #[serde(default, rename = "key")]
    keys: Vec<ReadRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadDocument {
    source: Spanned<String>,
    sha256: Spanned<String>,
    first_seen: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadDatabase {
    name: Spanned<String>,
    rows: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadRow {
    sha1: Spanned<String>,
    sha256: Spanned<String>,
    subject: String,
    not_before: Spanned<String>,
    not_after: Spanned<String>,
    first_seen: Spanned<String>,
    missing_since: Option<Spanned<String>>,
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Lock {
    /// Reads and checks every table and row: hex lengths, times that parse and are ordered,
    /// no issuer table or key row twice. Every problem found is reported, each with its line.
    pub fn parse(path: &Path, text: &str) -> Result<Self, LockError> {
        let file = path.display().to_string();
        // Lines by binary search over the line ends, found once: counting from the start
        // for every value made a 50,000-issuer lock quadratic.
        let line_ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
        let line_at = |offset: usize| line_ends.partition_point(|&end| end < offset) + 1;
        let raw: ReadFile = toml::from_str(text).map_err(|e| LockError::Invalid {
            file: file.clone(),
            line: line_at(e.span().map_or(0, |s| s.start)),
            detail: e.message().to_string(),
        })?;
        if raw.version != 1 {
            return Err(LockError::Invalid {
                file,
                line: line_at(text.find("version").unwrap_or(0)),
                detail: format!("lock version {} is not supported (expected 1)", raw.version),
            });
        }
        let mut lock = Lock::default();
        let mut origin = LockOrigin {
            file: file.clone(),
            ..LockOrigin::default()
        };
        let mut problems = Vec::new();
        for issuer in raw.issuers {
            lock.read_issuer(issuer, &file, &line_at, &mut origin, &mut problems);
        }
        if !problems.is_empty() {
            return Err(LockError::Rows(problems));
        }
        lock.origin = Some(Arc::new(origin));
        Ok(lock)
    }

    /// One `[[issuer]]` table: its name (not empty, not twice), its record, and its key rows
    /// (each SHA-1 once). A row with problems is left out and its problems are kept.
    fn read_issuer(
        &mut self,
        issuer: ReadIssuer,
        file: &str,
        line_at: &dyn Fn(usize) -> usize,
        origin: &mut LockOrigin,
        problems: &mut Vec<LockProblem>,
    ) {
        let name = issuer.name.get_ref().clone();
        let issuer_line = line_at(issuer.name.span().start);
        let problem = |line: usize, sha1: Option<&str>, kind: LockProblemKind| LockProblem {
            file: file.to_string(),
            line: Some(line),
            issuer: name.clone(),
            sha1: sha1.map(str::to_string),
            kind,
        };
        if name.trim().is_empty() {
            problems.push(problem(issuer_line, None, LockProblemKind::EmptyIssuerName));
            return;
        }
        if let Some(&first_line) = origin.issuers.get(&name) {
            problems.push(problem(
                issuer_line,
                None,
                LockProblemKind::DuplicateIssuer { first_line },
            ));
            return;
        }
        origin.issuers.insert(name.clone(), issuer_line);
        let record = read_record(&issuer, line_at, &problem);
        match record {
            Ok(record) if !record.is_empty() => {
                self.records.insert(name.clone(), record);
            }
            Ok(_) => {}
            Err(found) => problems.extend(found),
        }
        let keys = self.issuers.entry(name.clone()).or_default();
        for row in issuer.keys {
            let sha1_text = row.sha1.get_ref().as_str();
            let line = line_at(row.sha1.span().start);
            let problem = |kind| problem(line, Some(sha1_text), kind);
            if !is_hex(sha1_text, 40) {
                problems.push(problem(LockProblemKind::NotSha1));
                continue;
            }
            let sha1 = sha1_text.to_ascii_uppercase();
            if let Some(&first_line) = origin.rows.get(&(name.clone(), sha1.clone())) {
                problems.push(problem(LockProblemKind::DuplicateRow { first_line }));
                continue;
            }
            origin.rows.insert((name.clone(), sha1.clone()), line);
            match read_key(&row, line_at, &problem) {
                Ok(key) => {
                    keys.insert(sha1, key);
                }
                Err(row_problems) => problems.extend(row_problems),
            }
        }
    }

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

    pub fn to_toml(&self) -> String {
        let empty_keys = BTreeMap::new();
        let empty_record = IssuerRecord::default();
        let names: std::collections::BTreeSet<&String> =
            self.issuers.keys().chain(self.records.keys()).collect();
        let raw = LockFile {
            version: 1,
            issuers: names
                .into_iter()
                .map(|name| {
                    (
                        name,
                        self.issuers.get(name).unwrap_or(&empty_keys),
                        self.records.get(name).unwrap_or(&empty_record),
                    )
                })
                .map(|(name, keys, record)| LockIssuer {
                    name: name.clone(),
                    signed_since: record.signed_since.map(rfc3339),
                    documents: record
                        .documents
                        .iter()
                        .map(|(source, d)| LockDocumentRow {
                            source: source.clone(),
                            sha256: d.sha256.clone(),
                            first_seen: rfc3339(d.first_seen),
                        })
                        .collect(),
                    databases: record
                        .databases
                        .iter()
                        .map(|(name, rows)| LockDatabaseRow {
                            name: name.clone(),
                            rows: rows.iter().cloned().collect(),
                        })
                        .collect(),
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

/// A key row's hashes and times, each checked, and the times in order.
fn read_key(
    row: &ReadRow,
    line_at: &dyn Fn(usize) -> usize,
    problem: &dyn Fn(LockProblemKind) -> LockProblem,
) -> Result<LockedKey, Vec<LockProblem>> {
    let mut row_problems = Vec::new();
    if !is_hex(row.sha256.get_ref(), 64) {
        row_problems.push(problem(LockProblemKind::NotSha256 {
            value: row.sha256.get_ref().clone(),
        }));
    }
    let mut time = |field: &'static str, value: &Spanned<String>| {
        parse_rfc3339(value.get_ref())
            .map_err(|detail| {
                row_problems.push(LockProblem {
                    line: Some(line_at(value.span().start)),
                    ..problem(LockProblemKind::BadTime { field, detail })
                })
            })
            .ok()
    };
    let not_before = time("not_before", &row.not_before);
    let not_after = time("not_after", &row.not_after);
    let first_seen = time("first_seen", &row.first_seen);
    let missing_since = row.missing_since.as_ref().map(|m| time("missing_since", m));
    if let (Some(not_before), Some(not_after)) = (not_before, not_after)
        && not_before >= not_after
    {
        row_problems.push(problem(LockProblemKind::DatesOrder {
            not_before,
            not_after,
        }));
    }
    if let (Some(first_seen), Some(Some(missing_since))) = (first_seen, missing_since)
        && missing_since < first_seen
    {
        row_problems.push(problem(LockProblemKind::MissingBeforeSeen {
            first_seen,
            missing_since,
        }));
    }
    match (not_before, not_after, first_seen, missing_since) {
        (Some(not_before), Some(not_after), Some(first_seen), missing_since)
            if row_problems.is_empty() =>
        {
            Ok(LockedKey {
                sha256: row.sha256.get_ref().clone(),
                subject: row.subject.clone(),
                not_before,
                not_after,
                first_seen,
                missing_since: missing_since.flatten(),
            })
        }
        _ => Err(row_problems),
    }
}

/// An issuer table's `signed_since` and `document` rows, each checked, naming its line.
fn read_record(
    issuer: &ReadIssuer,
    line_at: &dyn Fn(usize) -> usize,
    problem: &dyn Fn(usize, Option<&str>, LockProblemKind) -> LockProblem,
) -> Result<IssuerRecord, Vec<LockProblem>> {
    let mut record = IssuerRecord::default();
    let mut problems = Vec::new();
    let time = |field: &'static str, value: &Spanned<String>, problems: &mut Vec<LockProblem>| {
        parse_rfc3339(value.get_ref())
            .map_err(|detail| {
                problems.push(problem(
                    line_at(value.span().start),
                    None,
                    LockProblemKind::BadTime { field, detail },
                ))
            })
            .ok()
    };
    if let Some(since) = &issuer.signed_since {
        record.signed_since = time("signed_since", since, &mut problems);
    }
    for document in &issuer.documents {
        let line = line_at(document.source.span().start);
        if !is_hex(document.sha256.get_ref(), 64) {
            problems.push(problem(
                line,
                None,
                LockProblemKind::NotSha256 {
                    value: document.sha256.get_ref().clone(),
                },
            ));
            continue;
        }
        let Some(first_seen) = time("first_seen", &document.first_seen, &mut problems) else {
            continue;
        };
        let source = document.source.get_ref().clone();
        if record.documents.contains_key(&source) {
            problems.push(problem(
                line,
                None,
                LockProblemKind::DuplicateDocument { source },
            ));
            continue;
        }
        record.documents.insert(
            source,
            LockedDocument {
                sha256: document.sha256.get_ref().to_ascii_uppercase(),
                first_seen,
            },
        );
    }
    for database in &issuer.databases {
        let line = line_at(database.name.span().start);
        let mut rows = std::collections::BTreeSet::new();
        for row in &database.rows {
            if !is_hex(row.get_ref(), 40) {
                problems.push(problem(
                    line_at(row.span().start),
                    Some(row.get_ref()),
                    LockProblemKind::NotSha1,
                ));
                continue;
            }
            rows.insert(row.get_ref().to_ascii_uppercase());
        }
        let name = database.name.get_ref().clone();
        if record.databases.insert(name.clone(), rows).is_some() {
            problems.push(problem(
                line,
                None,
                LockProblemKind::DuplicateDocument {
                    source: format!("database {name}"),
                },
            ));
        }
    }
    if problems.is_empty() {
        Ok(record)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
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
