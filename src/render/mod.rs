//! Rendering results for people (text tables) and machines (JSON with a versioned schema):
//! scan's reports here, inspect's in `inspect.rs`, plan's in `plan.rs`, pull requests' in
//! `pr.rs`.

pub mod sanitize;

use serde::Serialize;

use crate::model::thumbprint::Thumbprint;
use crate::render::sanitize::printable;

mod inspect;
pub use inspect::*;

// ---- scan ----

use crate::load::scan::{FileProblem, ScanResult, Severity, TrustedEntry};

pub const SCAN_SCHEMA: &str = "keyroll.scan/v1";

/// Every finding with its place, entries' and files' alike.
struct Located<'a> {
    file: String,
    line: u32,
    column: u32,
    finding: &'a crate::load::scan::Finding,
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

pub use crate::model::paths::slash_path;

fn counts(result: &ScanResult) -> (usize, usize, usize) {
    let all = located(result);
    let n = |s: Severity| all.iter().filter(|l| l.finding.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Note))
}

/// The findings for people. What the configs hold (attribute values, file names) and the
/// messages quoting them are escaped with [`printable`]: a config cannot print a line.
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
                    printable(&finding.message)
                ));
            }
        }
        for problem in &file.problems {
            out.push_str(&problem_line(problem));
        }
    }
    let (errors, warnings, notes) = counts(result);
    let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
    let files = result
        .files
        .iter()
        .filter(|f| !f.entries.is_empty())
        .count();
    out.push_str(&format!(
        "{} in {}: {}, {}, {}\n",
        count(result.entries().count(), "trusted thumbprint"),
        count(files, "file"),
        count(errors, "error"),
        count(warnings, "warning"),
        count(notes, "note"),
    ));
    out
}

fn entry_line(entry: &TrustedEntry) -> String {
    let mut who = Vec::new();
    if let Some(scope) = &entry.scope {
        who.push(format!("scope={}", printable(scope)));
    }
    if let Some(name) = &entry.issuer_name {
        who.push(format!("issuer={}", printable(name)));
    }
    if let Some(key) = &entry.key {
        who.push(format!("key={}", printable(key)));
    }
    let kind = match entry.kind {
        crate::load::scan::EntryKind::Add => "",
        crate::load::scan::EntryKind::Remove => " (remove)",
    };
    format!(
        "{}:{}:{}: {}{} {} raw=\"{}\" normalized={}\n",
        printable(&slash_path(&entry.file)),
        entry.line,
        entry.column,
        printable(&entry.dialect),
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
        printable(&slash_path(&problem.file)),
        problem.line,
        problem.column,
        problem.finding.severity.as_str(),
        problem.finding.code,
        printable(&problem.finding.message)
    )
}

/// `keyroll scan --format json`. Written straight from the scan, not through a
/// `serde_json::Value` per entry (a 100,000-file tree's scan spent a fifth of its time
/// there); the fields keep the alphabetical order those values gave them.
pub fn scan_json(result: &ScanResult) -> String {
    let mut out = Vec::new();
    write_scan_json(result, &mut out).expect("scan JSON serializes");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// [`scan_json`] written as it is made.
pub fn write_scan_json(result: &ScanResult, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let json = scan_json_document(result);
    // An I/O error keeps its kind (a closed pipe is not a failure, main.rs).
    serde_json::to_writer_pretty(&mut *out, &json).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// The scan JSON's document: every entry and file problem with its findings, and the
/// summary's counts.
fn scan_json_document(result: &ScanResult) -> ScanJson<'_> {
    let (errors, warnings, notes) = counts(result);
    ScanJson {
        entries: result
            .entries()
            .map(|e| EntryJson {
                column: e.column,
                dialect: &e.dialect,
                duplicate_of: e.duplicate_of,
                effective: e.effective,
                file: slash_path(&e.file),
                findings: e.findings.iter().map(finding_json).collect(),
                issuer_name: &e.issuer_name,
                key: &e.key,
                kind: e.kind,
                line: e.line,
                normalized: e.normalized,
                placeholder: e.placeholder,
                raw: &e.raw,
                scope: &e.scope,
            })
            .collect(),
        problems: result
            .problems()
            .map(|p| ProblemJson {
                code: p.finding.code,
                column: p.column,
                file: slash_path(&p.file),
                line: p.line,
                message: &p.finding.message,
                severity: p.finding.severity,
            })
            .collect(),
        schema: SCAN_SCHEMA,
        summary: ScanSummary {
            entries: result.entries().count(),
            errors,
            files: result.files.len(),
            notes,
            warnings,
        },
    }
}

/// The scan JSON's shape: its structs' fields in alphabetical order, as [`scan_json`] keeps
/// them.
#[derive(Serialize)]
struct ScanJson<'a> {
    entries: Vec<EntryJson<'a>>,
    problems: Vec<ProblemJson<'a>>,
    schema: &'static str,
    summary: ScanSummary,
}

#[derive(Serialize)]
struct ScanSummary {
    entries: usize,
    errors: usize,
    files: usize,
    notes: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    column: u32,
    dialect: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<u32>,
    effective: bool,
    file: String,
    findings: Vec<FindingJson<'a>>,
    issuer_name: &'a Option<String>,
    key: &'a Option<String>,
    kind: crate::load::scan::EntryKind,
    line: u32,
    normalized: Option<Thumbprint>,
    placeholder: bool,
    raw: &'a str,
    scope: &'a Option<String>,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    code: crate::load::scan::Code,
    message: &'a str,
    severity: crate::load::scan::Severity,
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    code: crate::load::scan::Code,
    column: u32,
    file: String,
    line: u32,
    message: &'a str,
    severity: crate::load::scan::Severity,
}

fn finding_json(f: &crate::load::scan::Finding) -> FindingJson<'_> {
    FindingJson {
        code: f.code,
        message: &f.message,
        severity: f.severity,
    }
}

/// The scan JSON as it was made before, through `serde_json::Value`: the reference the
/// direct writer is held to (its keys sorted by the Value's map).
#[cfg(test)]
pub(crate) fn scan_json_through_values(result: &ScanResult) -> String {
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

pub fn scan_sarif(result: &ScanResult) -> String {
    let rules: Vec<serde_json::Value> = crate::load::scan::Code::ALL
        .iter()
        .map(|code| {
            serde_json::json!({"id": code.as_str(), "shortDescription": {"text": code.description()}})
        })
        .collect();
    let results: Vec<serde_json::Value> = located(result)
        .iter()
        .map(|l| {
            let rule_index = crate::load::scan::Code::ALL
                .iter()
                .position(|code| *code == l.finding.code)
                .unwrap_or(0);
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

mod plan;
mod pr;
pub mod pr_outcome;
mod pr_report;
pub mod timeline;

/// What each build configuration trusts once published, per base config with transforms.
pub fn scan_transforms(result: &ScanResult) -> String {
    use crate::load::scan::{Code, ConfigFile, EntryKind};
    let trusted = |file: &ConfigFile, only_replaced: bool| -> Vec<String> {
        let mut keys: Vec<String> = file
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Add && e.effective && !e.placeholder)
            .filter(|e| !only_replaced || file.registries[e.registry].replaced)
            .filter(|e| !e.findings.iter().any(|f| f.code == Code::Dirty))
            .filter_map(|e| e.normalized.map(|t| t.to_string()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let mut out = String::new();
    for base in &result.files {
        let path = slash_path(&base.path);
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let lower = name.to_ascii_lowercase();
        let Some(stem) = lower
            .strip_suffix(".config")
            .filter(|s| *s == "web" || *s == "app")
        else {
            continue;
        };
        let transforms: Vec<(&ConfigFile, String)> = result
            .files
            .iter()
            .filter_map(|f| {
                let p = slash_path(&f.path);
                let (d, n) = p.rsplit_once('/').unwrap_or(("", p.as_str()));
                let n = n.to_ascii_lowercase();
                let config = n
                    .strip_prefix(stem)?
                    .strip_prefix('.')?
                    .strip_suffix(".config")?;
                (d == dir && !config.is_empty()).then(|| (f, config.to_string()))
            })
            .collect();
        if transforms.is_empty() {
            continue;
        }
        let base_keys = trusted(base, false);
        out.push_str(&format!(
            "\n{}: what each build configuration trusts once published\n  {:<12} {}\n",
            printable(&path),
            "(base)",
            base_keys.join(", ")
        ));
        for (file, config) in transforms {
            let blocked = file
                .problems
                .iter()
                .find(|p| p.finding.code == Code::UninterpretedTransform);
            let line = match blocked {
                Some(p) => format!(
                    "cannot tell: {}:{}: {}",
                    printable(&slash_path(&file.path)),
                    p.line,
                    printable(&p.finding.message)
                ),
                None if file.registries.iter().any(|r| r.replaced) => format!(
                    "{} (Replace in {})",
                    trusted(file, true).join(", "),
                    printable(&slash_path(&file.path))
                ),
                None => format!(
                    "as the base ({} leaves the trusted keys alone)",
                    printable(&slash_path(&file.path))
                ),
            };
            out.push_str(&format!("  {:<12} {line}\n", printable(&config)));
        }
    }
    out
}

pub use plan::{PLAN_SCHEMA, domain_text, plan_json, plan_markdown, plan_text, unified_diff};
pub use pr::*;
pub use pr_report::*;

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    /// The direct JSON writer prints the bytes the `Value`-based one did, on the configs of
    /// the corpus and the examples (findings, problems, duplicates, scopes, keys included).
    #[test]
    fn scan_json_is_the_value_based_json_byte_for_byte() {
        let known = crate::load::scan::KnownCertificates {
            now: Some(OffsetDateTime::UNIX_EPOCH),
            ..Default::default()
        };
        // And a config with a duplicate, a lower-case value and a scope; and a malformed one.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web.config"),
            r#"<configuration><configSections><section name="system.identityModel" type="System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel"/></configSections><system.identityModel><identityConfiguration name="alt"><issuerNameRegistry type="System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel"><trustedIssuers><add thumbprint="791bc6ad9893aa570df03452b4f8069c8a743c29" name="a"/><add thumbprint="791BC6AD9893AA570DF03452B4F8069C8A743C29" name="b"/></trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>"#,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("bad")).unwrap();
        std::fs::write(
            dir.path().join("bad").join("Web.config"),
            r#"<configuration><system.identityModel><identityConfiguration><issuerNameRegistry><trustedIssuers><add thumbprint="AB" name="x"/>"#,
        )
        .unwrap();
        let paths = [
            std::path::PathBuf::from("tests/data/configs"),
            std::path::PathBuf::from("examples"),
            dir.path().to_path_buf(),
        ];
        let result =
            crate::load::scan::scan_paths(&paths, &crate::model::rules::RuleSet::builtin(), &known)
                .unwrap();
        assert!(result.entries().count() > 15, "{}", scan_text(&result));
        assert!(result.problems().count() > 0);
        assert!(result.entries().any(|e| e.duplicate_of.is_some()));
        assert!(result.entries().any(|e| !e.findings.is_empty()));
        assert_eq!(scan_json(&result), scan_json_through_values(&result));
    }
}
