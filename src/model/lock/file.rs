//! keyroll.lock's text: read with every problem found and its line ([`Lock::parse`]), and
//! written sorted and stable ([`Lock::to_toml`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::*;

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
