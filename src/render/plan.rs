//! `keyroll plan` / `apply`: the plan for people (text, with diffs) and machines (JSON).

use crate::decide::database::{RowChangeKind, RowsFrom};
use crate::decide::federation::DomainReport;
use crate::decide::plan::{ChangeKind, Plan};
use crate::decide::sql::comment_safe;
use crate::model::cert::rfc3339;
use crate::render::sanitize::{printable, printable_block};

pub const PLAN_SCHEMA: &str = "keyroll.plan/v1";

fn action_mark(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Add => "+",
        ChangeKind::Remove | ChangeKind::Dedupe => "-",
        ChangeKind::Normalize | ChangeKind::Replace => "~",
    }
}

/// Unified diff of a file's bytes before and after, for people.
pub fn unified_diff(name: &str, before: &[u8], after: &[u8]) -> String {
    let old = String::from_utf8_lossy(before);
    let new = String::from_utf8_lossy(after);
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
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

/// The plan for people. Every text that came from outside (metadata, the configs and their
/// names, the errors and notes that quote them) is escaped with [`printable`] where it is
/// embedded, the diffs with [`printable_block`]: no line break or control character of
/// theirs reaches the terminal or a runner's log.
pub fn plan_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let files = plan.files.len();
    let tables = plan.databases.len();
    out.push_str(&format!(
        "keyroll plan as of {}: {} file{} to change{}{}\n",
        rfc3339(plan.now),
        files,
        if files == 1 { "" } else { "s" },
        match tables {
            0 => String::new(),
            1 => ", 1 database migration".to_string(),
            n => format!(", {n} database migrations"),
        },
        if plan.lock_changed() {
            ", keyroll.lock to update"
        } else {
            ""
        }
    ));
    out.push_str(&issuers_text(plan));
    out.push_str(&federation_text(plan));
    out.push_str(&files_text(plan, color));
    out.push_str(&databases_text(plan));
    out.push_str(&messages_text(plan));
    out
}

/// Each table to change: its rows' changes, then every statement of its migration.
pub fn databases_text(plan: &Plan) -> String {
    let mut out = String::new();
    for db in &plan.databases {
        out.push_str(&format!(
            "\ndatabase {} ({}, {}) for issuer {}: rows known from {}\n",
            printable(&db.database),
            db.preset.unwrap_or("custom table"),
            db.dialect,
            printable(&db.issuer),
            match db.rows_from {
                RowsFrom::Live => "the table (url_env)",
                RowsFrom::Lock => "keyroll.lock",
                RowsFrom::Nothing => "nowhere yet (every published key inserted where missing)",
            }
        ));
        for change in &db.changes {
            let mark = match change.kind {
                RowChangeKind::Add | RowChangeKind::AddTenant => "+",
                RowChangeKind::Remove | RowChangeKind::RemoveJunk => "-",
            };
            out.push_str(&format!(
                "  {mark} {} {}: {}\n",
                match change.kind {
                    RowChangeKind::Add => "add",
                    RowChangeKind::AddTenant => "add tenant",
                    RowChangeKind::Remove => "remove",
                    RowChangeKind::RemoveJunk => "remove pasted",
                },
                comment_safe(&change.value),
                printable(&change.why)
            ));
        }
        for note in &db.notes {
            out.push_str(&format!("  note: {}\n", printable(note)));
        }
        out.push_str(&format!(
            "  migration {}:\n",
            printable(&db.migration.display)
        ));
        // Shown with anything but printable ASCII as `\u{...}`: a pasted row's invisible
        // character is what the reviewer must see.
        for statement in &db.statements {
            for line in statement.lines() {
                out.push_str(&format!("    {}\n", comment_safe(line)));
            }
        }
    }
    out
}

/// Each issuer: its error, or its sources and keys.
fn issuers_text(plan: &Plan) -> String {
    let mut out = String::new();
    for issuer in &plan.issuers {
        out.push_str(&format!("\nissuer {}", printable(&issuer.name)));
        if !issuer.entity_ids.is_empty() {
            out.push_str(&format!(" ({})", printable(&issuer.entity_ids.join(", "))));
        }
        out.push('\n');
        if let Some(error) = &issuer.error {
            out.push_str(&format!("  error: {}\n", printable(error)));
            continue;
        }
        for source in &issuer.sources {
            out.push_str(&format!(
                "  source {} (SHA-256 {}, read {})\n    {}{}\n",
                printable(&source.source),
                source.sha256,
                source.read_at,
                printable(&source.signature.to_string()),
                source
                    .signer_trust
                    .as_deref()
                    .map(|t| format!("; trusted: {}", printable(t)))
                    .unwrap_or_default()
            ));
            if let Some(freshness) = source.freshness_line() {
                out.push_str(&format!("    {}\n", printable(&freshness)));
            }
        }
        for key in &issuer.keys {
            out.push_str(&format!(
                "  {:<7} {}  {}  {} {} to {}\n          {}\n",
                key.action.as_str(),
                key.sha1,
                printable(&key.subject),
                key.status.as_str(),
                key.not_before,
                key.not_after,
                printable(&key.reason)
            ));
        }
    }
    out
}

/// Each `[[federated_domain]]`: the certificates AD FS and Entra ID hold, and the verdict.
fn federation_text(plan: &Plan) -> String {
    plan.federation.iter().map(domain_text).collect()
}

/// One federated domain, as `plan` and `entra check` show it.
pub fn domain_text(report: &DomainReport) -> String {
    let thumb = |t: Option<crate::model::thumbprint::Thumbprint>| {
        t.map_or_else(|| "none".to_string(), |t| t.to_string())
    };
    let mut out = format!(
        "\nfederated domain {} (issuer {}, Entra ID)\n",
        printable(&report.domain),
        printable(&report.issuer)
    );
    out.push_str(&format!(
        "  AD FS     current {}  next {}\n",
        thumb(report.adfs_current),
        thumb(report.adfs_next)
    ));
    if report.entra_current.is_some() {
        out.push_str(&format!(
            "  Entra ID  current {}  next {}\n",
            thumb(report.entra_current),
            thumb(report.entra_next)
        ));
    }
    if let Some(result) = &report.entra_update_result {
        out.push_str(&format!(
            "  Entra ID's own update: {}{}\n",
            printable(result),
            report
                .entra_update_ran
                .as_deref()
                .map(|at| format!(" (last run {})", printable(at)))
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!("  {}\n", printable(&report.summary())));
    out
}

/// Each file to change: its changes and its diff.
fn files_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    for file in &plan.files {
        let name = printable(&file.display);
        out.push_str(&format!("\n{name}\n"));
        for change in &file.changes {
            let place = match change.kind {
                ChangeKind::Add => format!("into the registry at line {}", change.line),
                _ => format!("line {}", change.line),
            };
            let owner = match (change.issuer(), change.published_with.as_deref()) {
                (Some(i), _) => format!(" ({})", printable(i)),
                (None, Some(with)) => format!(" (hygiene, with {}'s PR)", printable(with)),
                (None, None) => " (hygiene)".to_string(),
            };
            out.push_str(&format!(
                "  {} {} {}{}{}: {}{}\n",
                action_mark(change.kind),
                change.kind.as_str(),
                place,
                change
                    .thumbprint
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default(),
                owner,
                printable(&change.reason.to_string()),
                if change.lockout_window {
                    " [lockout window]"
                } else {
                    ""
                }
            ));
            if let Some(note) = &change.note {
                out.push_str(&format!("      {}\n", printable(note)));
            }
        }
        out.push_str(&colour_diff(
            &printable_block(&unified_diff(&name, &file.before, &file.after)),
            color,
        ));
    }
    out
}

/// The plan's notes, warnings and errors, in that order.
fn messages_text(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.notes.is_empty() {
        out.push('\n');
        for note in &plan.notes {
            out.push_str(&format!("note: {}\n", printable(note)));
        }
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
        for warning in &plan.warnings {
            out.push_str(&format!("warning: {}\n", printable(warning)));
        }
    }
    if !plan.errors.is_empty() {
        out.push('\n');
        for error in &plan.errors {
            out.push_str(&format!("error: {}\n", printable(&error.to_string())));
        }
    }
    out
}

/// The plan as Markdown (for a file, a wiki or an issue): per issuer its keys and the
/// rollover timeline (a Mermaid `gantt` block), then each file's changes and full diff. Nothing
/// is cut: this is where a pull request body that had to be shortened sends its reader.
pub fn plan_markdown(plan: &Plan) -> String {
    use crate::render::sanitize::{md_cell, md_code, one_line};
    let mut out = format!(
        "## keyroll plan as of {}\n\n{} file{} to change{}.\n",
        rfc3339(plan.now),
        plan.files.len(),
        if plan.files.len() == 1 { "" } else { "s" },
        if plan.lock_changed() {
            ", keyroll.lock to update"
        } else {
            ""
        }
    );
    for issuer in &plan.issuers {
        out.push_str(&format!("\n### Issuer {}\n\n", md_code(&issuer.name)));
        if let Some(error) = &issuer.error {
            out.push_str(&format!("Error: {}\n", md_code(error)));
            continue;
        }
        out.push_str(&super::pr::keys_table(issuer));
        out.push('\n');
        out.push_str(&super::timeline::issuer_timeline(issuer, plan.now));
    }
    for file in &plan.files {
        out.push_str(&format!("\n### {}\n\n", md_code(&file.display)));
        for change in &file.changes {
            out.push_str(&format!(
                "- line {}: **{}**{}: {}\n",
                change.line,
                change.kind.as_str(),
                change
                    .thumbprint
                    .map(|t| format!(" `{t}`"))
                    .unwrap_or_default(),
                md_cell(&change.reason.to_string())
            ));
        }
        let diff = unified_diff(&file.display, &file.before, &file.after);
        out.push_str(&format!(
            "\n<details><summary>diff</summary>\n\n```diff\n{}```\n\n</details>\n",
            diff.replace("```", "`\u{200b}``")
        ));
    }
    let tables: Vec<&crate::decide::database::DatabasePlan> = plan.databases.iter().collect();
    out.push_str(&super::pr::databases_section(&tables));
    for domain in &plan.federation {
        out.push_str(&format!(
            "\n```text{}```\n",
            printable_block(&domain_text(domain)).replace("```", "`\u{200b}``")
        ));
    }
    let messages = [
        ("Note", plan.notes.clone()),
        ("Warning", plan.warnings.clone()),
        (
            "Error",
            plan.errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>(),
        ),
    ];
    for (label, list) in messages {
        for text in list {
            out.push_str(&format!("\n{label}: {}\n", md_code(&one_line(&text))));
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
                "diff": unified_diff(&f.display, &f.before, &f.after),
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
        "databases": plan.databases,
        "federated_domains": plan.federation,
        "notes": plan.notes,
        "warnings": plan.warnings,
        "errors": plan.errors,
    });
    serde_json::to_string_pretty(&json).expect("plan JSON serializes") + "\n"
}
