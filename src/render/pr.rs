//! `keyroll pr`: pull request titles and bodies and the comments keyroll leaves, rendered
//! from the plan's data; what a run did is in pr_report.rs.

use crate::decide::plan::{IssuerReport, KeyAction, PlannedChange};

/// A file as a pull request shows it: named as git names it.
pub struct ShownFile<'a> {
    pub name: String,
    pub before: &'a [u8],
    pub after: &'a [u8],
    pub changes: Vec<&'a PlannedChange>,
}

/// GitHub refuses a pull request or issue body over 65,536 characters; keyroll keeps its
/// bodies and summaries under Renovate's 58,000, which leaves room for what GitHub adds.
pub const PR_BODY_LIMIT: usize = 58_000;

/// Where a reader finds what a body had to leave out.
const SEE_ALL: &str = "the run's job summary and `keyroll plan --format markdown` (or the Files changed tab) show everything";

/// What happened to an issuer's keys, in one sentence a reviewer reads first.
pub fn pr_summary(issuer: &IssuerReport) -> String {
    let count = |action: KeyAction| issuer.keys.iter().filter(|k| k.action == action).count();
    let (adds, removes) = (count(KeyAction::Add), count(KeyAction::Remove));
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

/// The pull request body: what happened, the keys and their timeline, the metadata evidence,
/// the files with each change, one diff per file, a checklist, and keyroll's hidden marker
/// last. It stays under `limit` characters: the diffs of the largest files go first (the
/// largest one that still has room is cut at a line), then the per-file detail (each file on
/// one line, files beyond what fits counted), with a line saying what was cut and where to
/// see it.
pub fn pr_body(
    issuer: &IssuerReport,
    files: &[ShownFile<'_>],
    lock_display: Option<&str>,
    databases: &str,
    marker: &str,
    limit: usize,
    now: time::OffsetDateTime,
) -> String {
    let mut head = String::new();
    head.push_str(&format!("### {}\n\n", pr_summary(issuer)));
    head.push_str(&keys_table(issuer));
    head.push_str("\n**Timeline**\n\n");
    head.push_str(&super::timeline::issuer_timeline(issuer, now));
    head.push_str(&metadata_list(issuer));
    // Tables' changes are never cut: a reviewer needs each statement's why.
    head.push_str(databases);
    let tail = checklist_and_marker(marker);
    // Room for the note on what was cut.
    let room = limit.saturating_sub(head.len() + tail.len() + 600);
    let mut cuts = Vec::new();
    let mut detail = files_list(files, lock_display);
    if detail.len() > room / 2 {
        detail = files_list_short(files, lock_display, room / 2);
        cuts.push("the per-file detail (each file's changes and reasons)".to_string());
    }
    let diffs = diff_sections(files, room.saturating_sub(detail.len()));
    if diffs.left_out > 0 {
        cuts.insert(
            0,
            format!(
                "the diffs of {} file{} (the largest first)",
                diffs.left_out,
                if diffs.left_out == 1 { "" } else { "s" }
            ),
        );
    }
    if diffs.lines_cut > 0 {
        cuts.insert(0, format!("{} lines of one diff", diffs.lines_cut));
    }
    let mut body = head;
    body.push_str(&detail);
    if !cuts.is_empty() {
        body.push_str(&format!(
            "\n> **Shortened to stay under GitHub's size limit**: left out {}; {SEE_ALL}.\n",
            cuts.join(", ")
        ));
    }
    body.push_str(&diffs.text);
    body.push_str(&tail);
    body
}

/// The body's table of the issuer's keys.
pub(super) fn keys_table(issuer: &IssuerReport) -> String {
    let mut out = String::new();
    out.push_str(
        "| SHA-1 | subject | valid from | valid to | status | action | reason |\n|---|---|---|---|---|---|---|\n",
    );
    for key in &issuer.keys {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | **{}** | {} |\n",
            key.sha1,
            crate::render::sanitize::md_cell(&key.subject),
            key.not_before,
            key.not_after,
            key.status.as_str(),
            key.action.as_str(),
            markdown_cell(&key.reason)
        ));
    }
    out
}

/// The body's **Metadata** list: each source read, its signature, freshness, and the entity
/// IDs.
fn metadata_list(issuer: &IssuerReport) -> String {
    let mut out = String::new();
    out.push_str("\n**Metadata**\n\n");
    for source in &issuer.sources {
        out.push_str(&format!(
            "- {}: SHA-256 `{}`, {} bytes, read {}; {}{}\n",
            crate::render::sanitize::md_code(&source.source),
            source.sha256,
            source.bytes,
            source.read_at,
            crate::render::sanitize::one_line(&source.signature.to_string()),
            source
                .signer_trust
                .as_deref()
                .map(|t| format!(" — trusted: {}", crate::render::sanitize::one_line(t)))
                .unwrap_or_default()
        ));
        if let Some(freshness) = source.freshness_line() {
            out.push_str(&format!(
                "  - {}\n",
                crate::render::sanitize::one_line(&freshness)
            ));
        }
    }
    if !issuer.entity_ids.is_empty() {
        let ids: Vec<String> = issuer
            .entity_ids
            .iter()
            .map(|id| crate::render::sanitize::md_code(id))
            .collect();
        out.push_str(&format!("- entityID: {}\n", ids.join(", ")));
    }
    out
}

/// The body's **Files** list: each file's changes, and keyroll.lock when it changes too.
fn files_list(files: &[ShownFile<'_>], lock_display: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str("\n**Files**\n\n");
    for file in files {
        out.push_str(&format!(
            "- {}\n",
            crate::render::sanitize::md_code(&file.name)
        ));
        for change in &file.changes {
            out.push_str(&format!(
                "  - line {}: **{}**{}{}: {}{}\n",
                change.line,
                change.kind.as_str(),
                change
                    .thumbprint
                    .map(|t| format!(" `{t}`"))
                    .unwrap_or_default(),
                if change.issuer().is_none() {
                    " (hygiene)"
                } else {
                    ""
                },
                markdown_cell(&change.reason.to_string()),
                if change.lockout_window {
                    " **⚠️ lockout window: this setting holds one key, so the app rejects tokens signed with one of the two keys until it deploys**"
                } else {
                    ""
                }
            ));
            if let Some(note) = &change.note {
                out.push_str(&format!("    - {}\n", markdown_cell(note)));
            }
        }
    }
    if let Some(lock) = lock_display {
        out.push_str(&format!(
            "- `{lock}`: when each key was first seen or went missing (the grace-period clock)\n"
        ));
    }
    out
}

/// The body's section on `[[database]]` targets: per table, the rows changed and why, the
/// migration file, and what must happen for it to take effect.
pub fn databases_section(databases: &[&crate::decide::database::DatabasePlan]) -> String {
    use crate::decide::database::RowChangeKind;
    let mut out = String::new();
    if databases.is_empty() {
        return out;
    }
    out.push_str("\n**Databases**\n\n");
    for db in databases {
        out.push_str(&format!(
            "- {} ({}, {}): migration {}\n",
            crate::render::sanitize::md_code(&db.database),
            db.preset.unwrap_or("custom table"),
            db.dialect,
            crate::render::sanitize::md_code(&db.migration.display)
        ));
        for change in &db.changes {
            let what = match change.kind {
                RowChangeKind::Add => "add",
                RowChangeKind::AddTenant => "add tenant",
                RowChangeKind::Remove => "remove",
                RowChangeKind::RemoveJunk => "remove pasted row",
            };
            out.push_str(&format!(
                "  - **{what}** {}: {}\n",
                crate::render::sanitize::md_code(&crate::decide::sql::comment_safe(&change.value)),
                markdown_cell(&change.why)
            ));
        }
        if db.preset == Some("k2-claim-issuer") {
            out.push_str("  - ⚠️ K2 reads its claim issuers at start: **restart the K2 service** after the migration runs.\n");
        }
        out.push_str("  - The file is one transaction and idempotent: run it with your migration tool (DbUp, Flyway, `sqlcmd`), or `keyroll db apply` where keyroll can connect; `keyroll db check` shows the table's drift.\n");
    }
    out
}

/// [`files_list`] within `room` characters: each file on one line with how many changes it
/// gets, and the files beyond what fits counted.
fn files_list_short(files: &[ShownFile<'_>], lock_display: Option<&str>, room: usize) -> String {
    let mut out = String::from("\n**Files**\n\n");
    for (shown, file) in files.iter().enumerate() {
        let line = format!(
            "- {}: {} change{}\n",
            crate::render::sanitize::md_code(&file.name),
            file.changes.len(),
            if file.changes.len() == 1 { "" } else { "s" }
        );
        if out.len() + line.len() + 200 > room {
            out.push_str(&format!("- … and {} more files\n", files.len() - shown));
            break;
        }
        out.push_str(&line);
    }
    if let Some(lock) = lock_display {
        out.push_str(&format!("- `{lock}`\n"));
    }
    out
}

/// The body's end: the reviewer's checklist and keyroll's hidden marker.
fn checklist_and_marker(marker: &str) -> String {
    let mut tail = String::new();
    tail.push_str("\n**Before merging**\n\n");
    tail.push_str("- [ ] The SHA-1 thumbprints above match the signing certificates the identity provider shows (AD FS: `Get-AdfsCertificate -CertificateType Token-Signing`).\n");
    tail.push_str("- [ ] The apps deploy this config before the new key signs tokens (AD FS promotes its next key about 5 days after publishing it).\n");
    tail.push_str("- [ ] Nothing else edits these files in the meantime (keyroll rebuilds this branch when the base moves).\n");
    tail.push_str(
        "\n<sub>Opened by keyroll. Closing this pull request without merging stops keyroll from proposing the same key set again; a new key set opens a new one.</sub>\n",
    );
    // What the marker embeds (the issuer's name) cannot end it: `--` inside is escaped as
    // JSON allows, and `Marker::find` reads the same values back.
    match marker
        .strip_prefix("<!--")
        .and_then(|m| m.strip_suffix("-->"))
    {
        Some(inner) => tail.push_str(&format!(
            "<!--{}-->",
            crate::render::sanitize::comment_json(inner)
        )),
        None => tail.push_str(marker),
    }
    tail.push('\n');
    tail
}

/// The diff sections of a body, and what they leave out.
struct Diffs {
    text: String,
    /// Files whose diff is left out.
    left_out: usize,
    /// Lines cut from the one diff shown in part.
    lines_cut: usize,
}

/// One diff section per file within `budget` characters in all, in the files' order. When
/// they do not all fit, the largest diffs are the ones left out (each named with a note);
/// the smallest of those, when enough room is left, is shown cut at a line instead.
fn diff_sections(files: &[ShownFile<'_>], budget: usize) -> Diffs {
    const SECTION_TAIL: &str = "```\n\n</details>\n";
    let sections: Vec<(String, String)> = files
        .iter()
        .map(|file| {
            let diff = super::unified_diff(&file.name, file.before, file.after);
            // Inside HTML: a file name is repository content, escaped as HTML text.
            let name = crate::render::sanitize::one_line(&file.name)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            let head =
                format!("\n<details open><summary><code>{name}</code></summary>\n\n```diff\n");
            (head, diff.replace("```", "`\u{200b}``"))
        })
        .collect();
    let note = |name: &str| {
        format!(
            "\n{}: diff left out to stay under GitHub's size limit; see the Files changed tab.\n",
            crate::render::sanitize::md_code(name)
        )
    };
    let whole = |i: usize| sections[i].0.len() + sections[i].1.len() + SECTION_TAIL.len();
    // Smallest first: what fits whole is shown whole, so what is left out is the largest.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| (whole(i), i));
    // A left-out diff is named by a note while the notes take little room; past that the
    // body's "Shortened" line counts them.
    let all_notes: usize = files.iter().map(|f| note(&f.name).len()).sum();
    let named = all_notes <= budget / 10;
    let note_len = |i: usize| if named { note(&files[i].name).len() } else { 0 };
    let mut room = budget;
    let mut shown: Vec<Option<String>> = vec![None; files.len()];
    let mut lines_cut = 0;
    for (n, &i) in order.iter().enumerate() {
        // Each diff not shown yet costs at least its note.
        let notes: usize = order[n + 1..].iter().map(|&j| note_len(j)).sum();
        let (head, diff) = &sections[i];
        let free = room.saturating_sub(notes);
        if whole(i) <= free {
            room -= whole(i);
            shown[i] = Some(format!("{head}{diff}{SECTION_TAIL}"));
            continue;
        }
        let for_text = free.saturating_sub(head.len() + SECTION_TAIL.len() + 120);
        if lines_cut == 0 && for_text >= 200 {
            let (text, cut) = cut_at_line(diff, for_text);
            let section = format!(
                "{head}{text}… {cut} more lines cut to stay under GitHub's size limit; see the Files changed tab.\n{SECTION_TAIL}"
            );
            room = room.saturating_sub(section.len());
            shown[i] = Some(section);
            lines_cut = cut;
        } else {
            room = room.saturating_sub(note_len(i));
        }
    }
    let mut out = Diffs {
        text: String::new(),
        left_out: 0,
        lines_cut,
    };
    for (i, file) in files.iter().enumerate() {
        match &shown[i] {
            Some(section) => out.text.push_str(section),
            None => {
                out.left_out += 1;
                if named {
                    out.text.push_str(&note(&file.name));
                }
            }
        }
    }
    out
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

/// Text in a Markdown table cell or list line: one line (sanitize's rule, which also drops
/// CR and control characters that would break the row), `|` escaped. Unlike
/// `sanitize::md_cell` it stays prose, not a code span: reasons and notes are keyroll's words.
fn markdown_cell(text: &str) -> String {
    crate::render::sanitize::md_text(text)
}

/// The pull request's title, from what the issuer's keys go through.
pub fn title(issuer: &IssuerReport) -> String {
    if issuer.identity_change {
        return format!(
            "keyroll: IDENTITY CHANGE of {}: every key it published before is gone (accepted for this run; verify the new keys out of band)",
            issuer.name
        );
    }
    let adds: Vec<String> = issuer
        .keys
        .iter()
        .filter(|k| k.action == KeyAction::Add)
        .map(|k| k.sha1.to_string()[..8].to_string())
        .collect();
    let removes = issuer
        .keys
        .iter()
        .filter(|k| k.action == KeyAction::Remove)
        .count();
    match (adds.is_empty(), removes) {
        (false, 0) => format!(
            "keyroll: trust {}'s new signing key{} {}",
            issuer.name,
            if adds.len() == 1 { "" } else { "s" },
            adds.join(", ")
        ),
        (false, _) => format!(
            "keyroll: roll {}'s signing keys (add {})",
            issuer.name,
            adds.join(", ")
        ),
        (true, n) if n > 0 => format!(
            "keyroll: remove {n} retired signing key{} of {}",
            if n == 1 { "" } else { "s" },
            issuer.name
        ),
        _ => format!("keyroll: tidy {}'s trusted thumbprints", issuer.name),
    }
}

/// The comment on a pull request whose branch a person pushed to.
pub fn human_branch_comment(
    report: &IssuerReport,
    files: &[ShownFile<'_>],
    branch: &str,
) -> String {
    let mut text = format!(
        "Someone pushed to `{branch}`, so keyroll leaves the branch alone. It would now propose:\n\n**{}**\n\n",
        pr_summary(report)
    );
    for file in files {
        for change in &file.changes {
            text.push_str(&format!(
                "- {} line {}: {} {}\n",
                crate::render::sanitize::md_code(&file.name),
                change.line,
                change.kind.as_str(),
                change.thumbprint.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
    }
    text.push_str("\nDelete the branch (or close this PR) to let keyroll rebuild it.\n");
    text
}

#[cfg(test)]
mod pr_body_tests {
    use super::*;

    #[test]
    fn a_huge_diff_is_cut_at_a_line_with_a_note_and_the_body_stays_under_the_limit() {
        let issuer = IssuerReport {
            name: "adfs".into(),
            identity_change: false,
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
        let (before, after) = (before.into_bytes(), after.into_bytes());
        let file = || ShownFile {
            name: "web.config".into(),
            before: &before,
            after: &after,
            changes: Vec::new(),
        };
        let marker = "<!-- keyroll: {} -->";
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let body = pr_body(
            &issuer,
            &[file(), file()],
            None,
            "",
            marker,
            PR_BODY_LIMIT,
            now,
        );
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
