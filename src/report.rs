//! Rendering results for people (text tables) and machines (JSON with a versioned schema).

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, Validity, rfc3339};
use crate::metadata::{MetadataDocument, PublishedKey};
use crate::thumbprint::Thumbprint;

/// `keyroll thumbprint --format json`.
#[derive(Debug, Serialize)]
pub struct CertificateJson {
    pub sha1: Thumbprint,
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

impl CertificateJson {
    pub fn new(cert: &Certificate) -> Self {
        CertificateJson {
            sha1: cert.sha1,
            sha256: cert.sha256_hex(),
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            not_before: rfc3339(cert.not_before),
            not_after: rfc3339(cert.not_after),
        }
    }
}

pub const INSPECT_SCHEMA: &str = "keyroll.inspect/v1";

/// `keyroll inspect --format json`; documented in docs/inspect-json.md. Fields are only ever
/// added; a breaking change bumps `schema`.
#[derive(Debug, Serialize)]
pub struct InspectJson<'a> {
    pub schema: &'static str,
    pub source: &'a str,
    pub kind: crate::metadata::DocumentKind,
    pub bytes: usize,
    pub sha256: &'a str,
    pub read_at: String,
    pub evaluated_at: String,
    pub signature: SignatureJson,
    pub certificates: Vec<InspectRow<'a>>,
    pub notes: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct SignatureJson {
    pub present: bool,
    pub verified: bool,
    pub reference_uri: Option<String>,
    pub signer_sha1: Option<Thumbprint>,
}

#[derive(Debug, Serialize)]
pub struct InspectRow<'a> {
    pub entity_id: Option<&'a str>,
    pub roles: &'a [String],
    #[serde(rename = "use")]
    pub uses: Vec<&'static str>,
    pub kid: Option<&'a str>,
    #[serde(flatten)]
    pub certificate: CertificateJson,
    pub status: Validity,
    pub location: &'a str,
}

impl<'a> InspectRow<'a> {
    fn new(key: &'a PublishedKey, now: OffsetDateTime, warn_days: i64) -> Self {
        InspectRow {
            entity_id: key.entity_id.as_deref(),
            roles: &key.roles,
            uses: key.uses.iter().map(|u| u.as_str()).collect(),
            kid: key.kid.as_deref(),
            certificate: CertificateJson::new(&key.certificate),
            status: key.certificate.validity_at(now, warn_days),
            location: &key.location,
        }
    }
}

pub fn inspect_json(doc: &MetadataDocument, now: OffsetDateTime, warn_days: i64) -> String {
    let json = InspectJson {
        schema: INSPECT_SCHEMA,
        source: &doc.source,
        kind: doc.kind,
        bytes: doc.bytes,
        sha256: &doc.sha256,
        read_at: rfc3339(doc.fetched_at),
        evaluated_at: rfc3339(now),
        signature: SignatureJson {
            present: doc.signature.is_some(),
            verified: doc.signature.as_ref().is_some_and(|s| s.verified),
            reference_uri: doc.signature.as_ref().and_then(|s| s.reference_uri.clone()),
            signer_sha1: doc.signature.as_ref().and_then(|s| s.signer_sha1),
        },
        certificates: doc
            .keys
            .iter()
            .map(|k| InspectRow::new(k, now, warn_days))
            .collect(),
        notes: &doc.notes,
    };
    serde_json::to_string_pretty(&json).expect("inspect JSON serializes") + "\n"
}

pub fn inspect_text(doc: &MetadataDocument, now: OffsetDateTime, warn_days: i64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "source:    {}\nkind:      {}, {} bytes, SHA-256 {}\n",
        doc.source, doc.kind, doc.bytes, doc.sha256
    ));
    let signature = match &doc.signature {
        None => "none".to_string(),
        Some(s) => format!(
            "present, not verified (reference {}, signer {})",
            s.reference_uri.as_deref().unwrap_or("(none)"),
            s.signer_sha1
                .map(|t| t.to_string())
                .unwrap_or_else(|| "not embedded".into())
        ),
    };
    out.push_str(&format!("signature: {signature}\n"));
    out.push_str(&format!("as of:     {}\n", rfc3339(now)));

    let mut entity: Option<Option<&str>> = None;
    for key in &doc.keys {
        if entity != Some(key.entity_id.as_deref()) {
            entity = Some(key.entity_id.as_deref());
            out.push_str(&format!(
                "\nentity {}\n  {:<14} {:<22} {:<40}  {:<20}  {:<20}  SUBJECT\n",
                key.entity_id.as_deref().unwrap_or("(none named)"),
                "STATUS",
                "USE",
                "SHA-1",
                "NOT BEFORE",
                "NOT AFTER"
            ));
        }
        let cert = &key.certificate;
        let uses: Vec<&str> = key.uses.iter().map(|u| u.as_str()).collect();
        out.push_str(&format!(
            "  {:<14} {:<22} {:<40}  {:<20}  {:<20}  {}\n",
            cert.validity_at(now, warn_days).as_str(),
            uses.join(","),
            cert.sha1.to_string(),
            rfc3339(cert.not_before),
            rfc3339(cert.not_after),
            cert.subject
        ));
        let mut detail = format!(
            "  {:<14} SHA-256 {}  issuer {}",
            "",
            cert.sha256_hex(),
            cert.issuer
        );
        if !key.roles.is_empty() {
            detail.push_str(&format!("  roles {}", key.roles.join(",")));
        }
        if let Some(kid) = &key.kid {
            detail.push_str(&format!("  kid {kid}"));
        }
        out.push_str(&detail);
        out.push('\n');
    }
    for note in &doc.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

// ---- scan ----

use crate::scan::{FileProblem, ScanResult, Severity, TrustedEntry};

pub const SCAN_SCHEMA: &str = "keyroll.scan/v1";

/// Every finding with its place, entries' and files' alike.
struct Located<'a> {
    file: String,
    line: u32,
    column: u32,
    finding: &'a crate::scan::Finding,
}

fn located(result: &ScanResult) -> Vec<Located<'_>> {
    let mut all: Vec<Located<'_>> = Vec::new();
    for entry in result.entries() {
        for finding in &entry.findings {
            all.push(Located {
                file: slash_path(&entry.file),
                line: entry.line,
                column: entry.column,
                finding,
            });
        }
    }
    for problem in result.problems() {
        all.push(Located {
            file: slash_path(&problem.file),
            line: problem.line,
            column: problem.column,
            finding: &problem.finding,
        });
    }
    all.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    all
}

/// Paths in reports use `/` on every OS (SARIF URIs, annotations, stable golden files).
pub fn slash_path(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn counts(result: &ScanResult) -> (usize, usize, usize) {
    let all = located(result);
    let n = |s: Severity| all.iter().filter(|l| l.finding.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Note))
}

pub fn scan_text(result: &ScanResult) -> String {
    let mut out = String::new();
    for file in &result.files {
        for entry in &file.entries {
            out.push_str(&entry_line(entry));
            for finding in &entry.findings {
                out.push_str(&format!(
                    "    {}[{}]: {}\n",
                    finding.severity.as_str(),
                    finding.code,
                    finding.message
                ));
            }
        }
        for problem in &file.problems {
            out.push_str(&problem_line(problem));
        }
    }
    let (errors, warnings, notes) = counts(result);
    out.push_str(&format!(
        "{} trusted thumbprints in {} files: {errors} errors, {warnings} warnings, {notes} notes\n",
        result.entries().count(),
        result
            .files
            .iter()
            .filter(|f| !f.entries.is_empty())
            .count(),
    ));
    out
}

fn entry_line(entry: &TrustedEntry) -> String {
    let mut who = Vec::new();
    if let Some(scope) = &entry.scope {
        who.push(format!("scope={scope}"));
    }
    if let Some(name) = &entry.issuer_name {
        who.push(format!("issuer={name}"));
    }
    if let Some(key) = &entry.key {
        who.push(format!("key={key}"));
    }
    let kind = match entry.kind {
        crate::scan::EntryKind::Add => "",
        crate::scan::EntryKind::Remove => " (remove)",
    };
    format!(
        "{}:{}:{}: {}{} {} raw=\"{}\" normalized={}\n",
        slash_path(&entry.file),
        entry.line,
        entry.column,
        entry.dialect,
        kind,
        who.join(" "),
        entry.raw.escape_debug(),
        entry
            .normalized
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into()),
    )
}

fn problem_line(problem: &FileProblem) -> String {
    format!(
        "{}:{}:{}: {}[{}]: {}\n",
        slash_path(&problem.file),
        problem.line,
        problem.column,
        problem.finding.severity.as_str(),
        problem.finding.code,
        problem.finding.message
    )
}

pub fn scan_json(result: &ScanResult) -> String {
    let (errors, warnings, notes) = counts(result);
    let entries: Vec<serde_json::Value> = result
        .entries()
        .map(|e| {
            let mut v = serde_json::to_value(e).expect("entry serializes");
            v["file"] = serde_json::Value::String(slash_path(&e.file));
            v
        })
        .collect();
    let problems: Vec<serde_json::Value> = result
        .problems()
        .map(|p| {
            let mut v = serde_json::to_value(p).expect("problem serializes");
            v["file"] = serde_json::Value::String(slash_path(&p.file));
            v
        })
        .collect();
    let json = serde_json::json!({
        "schema": SCAN_SCHEMA,
        "entries": entries,
        "problems": problems,
        "summary": {
            "files": result.files.len(),
            "entries": result.entries().count(),
            "errors": errors,
            "warnings": warnings,
            "notes": notes,
        },
    });
    serde_json::to_string_pretty(&json).expect("scan JSON serializes") + "\n"
}

/// What each finding code means, for SARIF rule metadata and `--help`.
pub const FINDING_CODES: &[(&str, &str)] = &[
    (
        "dirty",
        "Invisible or stray characters WIF does not remove: the entry never matches",
    ),
    ("bad-length", "Not a 40-hex-digit SHA-1 thumbprint"),
    (
        "duplicate",
        "Two entries equal after WIF's normalization: the configuration fails to load",
    ),
    ("lowercase", "Lowercase hex (style only)"),
    ("spaced", "Spaces between byte pairs (style only)"),
    ("placeholder", "A deploy-time placeholder; never edited"),
    ("expired", "The trusted certificate has expired"),
    ("expiring", "The trusted certificate expires soon"),
    (
        "withdrawn",
        "An entry withdrawn by a later <remove> or <clear/>",
    ),
    ("transform", "An entry inside a config transform file"),
    ("malformed", "The file is not well-formed XML"),
    ("unsupported-encoding", "The file is not UTF-8"),
    (
        "config-source-missing",
        "A configSource reference names a file that does not exist",
    ),
    (
        "config-source-outside",
        "A configSource reference leaves the repository",
    ),
];

pub fn scan_sarif(result: &ScanResult) -> String {
    let rules: Vec<serde_json::Value> = FINDING_CODES
        .iter()
        .map(|(id, text)| serde_json::json!({"id": id, "shortDescription": {"text": text}}))
        .collect();
    let results: Vec<serde_json::Value> = located(result)
        .iter()
        .map(|l| {
            let rule_index = FINDING_CODES
                .iter()
                .position(|(id, _)| *id == l.finding.code)
                .expect("every finding code is listed");
            serde_json::json!({
                "ruleId": l.finding.code,
                "ruleIndex": rule_index,
                "level": l.finding.severity.as_str(),
                "message": {"text": l.finding.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": l.file},
                        "region": {"startLine": l.line, "startColumn": l.column},
                    }
                }],
            })
        })
        .collect();
    let json = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keyroll",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&json).expect("SARIF serializes") + "\n"
}

/// GitHub Actions workflow commands: `::error file=…,line=…,col=…::message`.
pub fn scan_github(result: &ScanResult) -> String {
    let mut out = String::new();
    for l in located(result) {
        let command = match l.finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        out.push_str(&format!(
            "::{command} file={},line={},col={},title={}::{}\n",
            escape_property(&l.file),
            l.line,
            l.column,
            escape_property(&format!("keyroll {}", l.finding.code)),
            escape_data(&l.finding.message)
        ));
    }
    out
}

pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

// ---- plan ----

use crate::plan::{IssuerReport, Plan};

pub const PLAN_SCHEMA: &str = "keyroll.plan/v1";

fn action_mark(action: crate::plan::Action) -> &'static str {
    match action {
        crate::plan::Action::Add => "+",
        crate::plan::Action::Remove | crate::plan::Action::Dedupe => "-",
        crate::plan::Action::Normalize => "~",
    }
}

/// Colours diff lines when `color` (a terminal), never in files or pipes.
fn colour_diff(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    diff.split_inclusive('\n')
        .map(|line| {
            let code = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else if line.starts_with("@@") {
                "36"
            } else {
                return line.to_string();
            };
            let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
            format!("\x1b[{code}m{body}\x1b[0m{end}")
        })
        .collect()
}

pub fn plan_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let files = plan.files.len();
    out.push_str(&format!(
        "keyroll plan as of {}: {} file{} to change{}\n",
        rfc3339(plan.now),
        files,
        if files == 1 { "" } else { "s" },
        if plan.lock_changed() {
            ", keyroll.lock to update"
        } else {
            ""
        }
    ));
    for issuer in &plan.issuers {
        out.push_str(&format!("\nissuer {}", issuer.name));
        if !issuer.entity_ids.is_empty() {
            out.push_str(&format!(" ({})", issuer.entity_ids.join(", ")));
        }
        out.push('\n');
        if let Some(error) = &issuer.error {
            out.push_str(&format!("  error: {error}\n"));
            continue;
        }
        for source in &issuer.sources {
            out.push_str(&format!(
                "  source {} (SHA-256 {}, read {})\n",
                source.source, source.sha256, source.read_at
            ));
        }
        for key in &issuer.keys {
            out.push_str(&format!(
                "  {:<7} {}  {}  {} {} to {}\n          {}\n",
                key.action,
                key.sha1,
                key.subject,
                key.status,
                key.not_before,
                key.not_after,
                key.reason
            ));
        }
    }
    for file in &plan.files {
        out.push_str(&format!("\n{}\n", file.display));
        for change in &file.changes {
            let place = match change.action {
                crate::plan::Action::Add => format!("into the registry at line {}", change.line),
                _ => format!("line {}", change.line),
            };
            out.push_str(&format!(
                "  {} {} {}{}{}: {}\n",
                action_mark(change.action),
                change.action.as_str(),
                place,
                change
                    .thumbprint
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default(),
                change
                    .issuer
                    .as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default(),
                change.reason
            ));
        }
        out.push_str(&colour_diff(
            &crate::plan::unified_diff(&file.display, &file.before, &file.after),
            color,
        ));
    }
    if !plan.notes.is_empty() {
        out.push('\n');
        for note in &plan.notes {
            out.push_str(&format!("note: {note}\n"));
        }
    }
    if !plan.errors.is_empty() {
        out.push('\n');
        for error in &plan.errors {
            out.push_str(&format!("error: {error}\n"));
        }
    }
    out
}

pub fn plan_json(plan: &Plan) -> String {
    let files: Vec<serde_json::Value> = plan
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "path": f.display,
                "changes": f.changes,
                "diff": crate::plan::unified_diff(&f.display, &f.before, &f.after),
            })
        })
        .collect();
    let json = serde_json::json!({
        "schema": PLAN_SCHEMA,
        "as_of": rfc3339(plan.now),
        "changes_pending": plan.has_changes(),
        "lock_changed": plan.lock_changed(),
        "issuers": plan.issuers,
        "files": files,
        "notes": plan.notes,
        "errors": plan.errors,
    });
    serde_json::to_string_pretty(&json).expect("plan JSON serializes") + "\n"
}

/// GitHub refuses a pull request body over 65,536 characters.
pub const PR_BODY_LIMIT: usize = 65_536;

/// What happened to an issuer's keys, in one sentence a reviewer reads first.
pub fn pr_summary(issuer: &IssuerReport) -> String {
    let count = |action: &str| issuer.keys.iter().filter(|k| k.action == action).count();
    let (adds, removes) = (count("add"), count("remove"));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if adds > 0 {
        parts.push(format!(
            "{} publishes {} that the configs do not trust yet",
            issuer.name,
            plural(adds, "signing certificate")
        ));
    }
    if removes > 0 {
        parts.push(format!(
            "{} no longer published by {} (grace period over or expired) can be removed",
            plural(removes, "certificate"),
            issuer.name
        ));
    }
    if parts.is_empty() {
        parts.push(format!(
            "Clean-up of {}'s trusted thumbprints (pasted characters, duplicates) and keyroll.lock",
            issuer.name
        ));
    }
    parts.join("; ") + "."
}

/// The pull request body: what happened, the keys, the metadata evidence, one diff per
/// file, a checklist, and keyroll's hidden marker last. Diffs are cut (at a line, with a
/// note) to keep the whole under `limit` characters.
pub fn pr_body(
    issuer: &IssuerReport,
    files: &[crate::plan::FilePlan],
    lock_display: Option<&str>,
    marker: &str,
    limit: usize,
) -> String {
    let mut head = String::new();
    head.push_str(&format!("### {}\n\n", pr_summary(issuer)));
    head.push_str(
        "| SHA-1 | subject | valid from | valid to | status | action | reason |\n|---|---|---|---|---|---|---|\n",
    );
    for key in &issuer.keys {
        head.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | **{}** | {} |\n",
            key.sha1,
            crate::sanitize::md_cell(&key.subject),
            key.not_before,
            key.not_after,
            key.status,
            key.action,
            markdown_cell(&key.reason)
        ));
    }
    head.push_str("\n**Metadata**\n\n");
    for source in &issuer.sources {
        head.push_str(&format!(
            "- {}: SHA-256 `{}`, {} bytes, read {}\n",
            crate::sanitize::md_code(&source.source),
            source.sha256,
            source.bytes,
            source.read_at
        ));
    }
    if !issuer.entity_ids.is_empty() {
        let ids: Vec<String> = issuer
            .entity_ids
            .iter()
            .map(|id| crate::sanitize::md_code(id))
            .collect();
        head.push_str(&format!("- entityID: {}\n", ids.join(", ")));
    }
    head.push_str("\n**Files**\n\n");
    for file in files {
        head.push_str(&format!("- `{}`\n", file.display));
        for change in &file.changes {
            head.push_str(&format!(
                "  - line {}: **{}**{}: {}\n",
                change.line,
                change.action.as_str(),
                change
                    .thumbprint
                    .map(|t| format!(" `{t}`"))
                    .unwrap_or_default(),
                change.reason
            ));
        }
    }
    if let Some(lock) = lock_display {
        head.push_str(&format!(
            "- `{lock}`: when each key was first seen or went missing (the grace-period clock)\n"
        ));
    }

    let mut tail = String::new();
    tail.push_str("\n**Before merging**\n\n");
    tail.push_str("- [ ] The SHA-1 thumbprints above match the signing certificates the identity provider shows (AD FS: `Get-AdfsCertificate -CertificateType Token-Signing`).\n");
    tail.push_str("- [ ] The apps deploy this config before the new key signs tokens (AD FS promotes its next key about 5 days after publishing it).\n");
    tail.push_str("- [ ] Nothing else edits these files in the meantime (keyroll rebuilds this branch when the base moves).\n");
    tail.push_str(
        "\n<sub>Opened by keyroll. Closing this pull request without merging stops keyroll from proposing the same key set again; a new key set opens a new one.</sub>\n",
    );
    tail.push_str(marker);
    tail.push('\n');

    let mut body = head;
    let mut budget = limit.saturating_sub(body.len() + tail.len() + 200);
    for file in files {
        let diff = crate::plan::unified_diff(&file.display, &file.before, &file.after);
        let section_head = format!(
            "\n<details open><summary><code>{}</code></summary>\n\n```diff\n",
            file.display
        );
        let section_tail = "```\n\n</details>\n";
        let room = budget.saturating_sub(section_head.len() + section_tail.len() + 120);
        if room < 200 {
            body.push_str(&format!(
                "\n`{}`: diff left out to stay under GitHub's size limit; see the Files changed tab.\n",
                file.display
            ));
            continue;
        }
        let (shown, cut_lines) = cut_at_line(&diff, room);
        let mut section = section_head;
        section.push_str(&shown.replace("```", "`\u{200b}``"));
        if cut_lines > 0 {
            section.push_str(&format!("… {cut_lines} more lines cut to stay under GitHub's size limit; see the Files changed tab.\n"));
        }
        section.push_str(section_tail);
        budget = budget.saturating_sub(section.len());
        body.push_str(&section);
    }
    body.push_str(&tail);
    body
}

/// The longest prefix of whole lines within `max` bytes, and how many lines were left out.
fn cut_at_line(text: &str, max: usize) -> (String, usize) {
    if text.len() <= max {
        return (text.to_string(), 0);
    }
    let mut end = 0;
    for (i, _) in text.match_indices('\n') {
        if i + 1 > max {
            break;
        }
        end = i + 1;
    }
    let left_out = text[end..].lines().count();
    (text[..end].to_string(), left_out)
}

fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod pr_body_tests {
    use super::*;

    #[test]
    fn a_huge_diff_is_cut_at_a_line_with_a_note_and_the_body_stays_under_the_limit() {
        let issuer = IssuerReport {
            name: "adfs".into(),
            sources: Vec::new(),
            entity_ids: Vec::new(),
            error: None,
            keys: Vec::new(),
        };
        // 5,000 lines of multi-byte text, each changed: a diff far over 65,536 characters.
        let before: String = (0..5000)
            .map(|i| format!("<add name=\"Zürich-é-{i}\"/>\n"))
            .collect();
        let after: String = (0..5000)
            .map(|i| format!("<add name=\"Genève-ü-{i}\"/>\n"))
            .collect();
        let file = crate::plan::FilePlan {
            path: "web.config".into(),
            display: "web.config".into(),
            changes: Vec::new(),
            before: before.into_bytes(),
            after: after.into_bytes(),
        };
        let marker = "<!-- keyroll: {} -->";
        let body = pr_body(&issuer, &[file.clone(), file], None, marker, PR_BODY_LIMIT);
        assert!(body.len() <= PR_BODY_LIMIT, "{} bytes", body.len());
        assert!(body.contains("more lines cut to stay under GitHub's size limit"));
        assert!(
            body.ends_with(&format!("{marker}\n")),
            "the marker survives the cut"
        );
        // Each diff block is closed and the cut fell at a line end.
        assert_eq!(
            body.matches("```diff").count(),
            body.matches("\n```\n").count()
        );
        let shown = body.split("```diff\n").nth(1).unwrap();
        let before_note = shown.split("… ").next().unwrap();
        assert!(before_note.ends_with('\n'));
    }
}
