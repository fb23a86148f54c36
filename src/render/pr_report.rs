//! What a `keyroll pr` run did, for people and runners: the report (text and JSON), the
//! GitHub Actions outputs and the job summary (each issuer's keys and rollover timeline, cut
//! to GitHub's size limit).

use super::pr::PR_BODY_LIMIT;
use super::pr_outcome::{IssuerOutcome, Operation, PrReport};
use crate::decide::plan::KeyStatus;

/// Text for people: per issuer the operation and PR, then in a dry run what would be sent.
/// What came from GitHub or the metadata (URLs, details, names) is escaped with
/// [`printable`](crate::render::sanitize::printable); the commit message and body a dry run shows
/// keep their own lines, with [`printable_block`](crate::render::sanitize::printable_block).
pub fn report_text(report: &PrReport) -> String {
    use crate::render::sanitize::{printable, printable_block};
    let mut out = String::new();
    if report.dry_run {
        out.push_str(&format!(
            "keyroll pr --dry-run for {} (base {}): nothing is pushed and no write call is made\n",
            printable(&report.repository.to_string()),
            printable(&report.base)
        ));
    }
    for o in &report.outcomes {
        let verb = if report.dry_run && o.operation == Operation::Created {
            "would create".to_string()
        } else if report.dry_run && o.operation == Operation::Updated {
            "would update".to_string()
        } else {
            o.operation.as_str().to_string()
        };
        out.push_str(&format!(
            "\n{}: {verb} on branch {}",
            printable(&o.issuer),
            printable(&o.branch)
        ));
        if let Some(n) = o.number {
            out.push_str(&format!(", PR #{n}"));
        }
        if let Some(url) = &o.url {
            out.push_str(&format!(" {}", printable(url)));
        }
        if let Some(sha) = &o.head_sha {
            out.push_str(&format!(", head {}", printable(sha)));
        }
        out.push('\n');
        if let Some(detail) = &o.detail {
            out.push_str(&format!("  {}\n", printable(detail)));
        }
        if report.dry_run
            && let Some(p) = &o.proposal
        {
            out.push_str(&format!(
                "\n--- commit message\n{}",
                printable_block(&p.commit_message)
            ));
            out.push_str(&format!(
                "\n--- pull request title\n{}\n",
                printable(&p.title)
            ));
            out.push_str(&format!(
                "\n--- pull request body\n{}",
                printable_block(&p.body)
            ));
        }
    }
    if !report.api_calls.is_empty() {
        out.push_str("\nGitHub API calls");
        out.push_str(if report.dry_run {
            " (writes not sent):\n"
        } else {
            ":\n"
        });
        for call in &report.api_calls {
            let state = match (call.sent, call.status) {
                (true, Some(s)) => format!("HTTP {s}"),
                (true, None) => "no response".into(),
                (false, _) => "not sent".into(),
            };
            out.push_str(&format!(
                "  {} {}  ({state})\n",
                printable(&call.method.to_string()),
                printable(&call.path)
            ));
        }
    }
    out
}

pub fn report_json(report: &PrReport) -> String {
    let json = serde_json::json!({
        "schema": "keyroll.pr/v1",
        "dry_run": report.dry_run,
        "repository": report.repository,
        "base": report.base,
        "changed": report.changed(),
        "issuers": report.outcomes,
        "api_calls": report.api_calls,
    });
    serde_json::to_string_pretty(&json).expect("PR report serializes") + "\n"
}

/// GitHub Actions step outputs (`name=value` lines for `$GITHUB_OUTPUT`).
pub fn actions_outputs(report: &PrReport) -> String {
    let with_pr: Vec<&IssuerOutcome> = report
        .outcomes
        .iter()
        .filter(|o| o.number.is_some())
        .collect();
    let operations: Vec<serde_json::Value> = report
        .outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "issuer": o.issuer,
                "operation": o.operation,
                "number": o.number,
                "url": o.url,
                "branch": o.branch,
                "head_sha": o.head_sha,
            })
        })
        .collect();
    use crate::render::sanitize::output_entry;
    [
        // A dry run changes nothing, whatever it would do.
        output_entry("changed", &report.changed().to_string()),
        output_entry(
            "pull-request-numbers",
            &with_pr
                .iter()
                .filter_map(|o| o.number.map(|n| n.to_string()))
                .collect::<Vec<_>>()
                .join(","),
        ),
        output_entry(
            "pull-request-urls",
            &with_pr
                .iter()
                .filter_map(|o| o.url.as_deref().map(crate::render::sanitize::one_line))
                .collect::<Vec<_>>()
                .join(","),
        ),
        output_entry(
            "operations",
            &serde_json::Value::from(operations).to_string(),
        ),
    ]
    .concat()
}

/// The job summary (Markdown for `$GITHUB_STEP_SUMMARY`): per issuer the keys found, what
/// changed and the PR link, with certificates near or past expiry called out, and the
/// rollover timeline; under [`PR_BODY_LIMIT`] (timelines cut first, then key tables).
pub fn actions_summary(report: &PrReport, now: time::OffsetDateTime) -> String {
    actions_summary_within(report, now, PR_BODY_LIMIT)
}

/// [`actions_summary`] within `limit` characters.
pub fn actions_summary_within(
    report: &PrReport,
    now: time::OffsetDateTime,
    limit: usize,
) -> String {
    let mut out = format!(
        "## keyroll{}\n\nRepository `{}`, base `{}`.\n\n| issuer | operation | pull request | branch |\n|---|---|---|---|\n",
        if report.dry_run { " (dry run)" } else { "" },
        report.repository,
        report.base
    );
    for o in &report.outcomes {
        let pr = match (
            o.url.as_deref().and_then(crate::render::sanitize::md_url),
            o.number,
        ) {
            (Some(url), Some(n)) => format!("[#{n}]({url})"),
            (None, Some(n)) => format!("#{n}"),
            _ => "—".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {pr} | {} |\n",
            crate::render::sanitize::md_cell(&o.issuer),
            o.operation.as_str(),
            crate::render::sanitize::md_cell(&o.branch)
        ));
    }
    // Per issuer: its section with the timeline, and without it.
    let sections: Vec<(String, String)> = report
        .outcomes
        .iter()
        .map(|o| {
            let table = summary_keys(o);
            let keys: Vec<super::timeline::TimelineKey> = o.keys.iter().map(Into::into).collect();
            let picture = if o.keys.is_empty() {
                String::new()
            } else {
                format!(
                    "\n{}",
                    super::timeline::timeline(&o.issuer, &keys, false, now)
                )
            };
            (format!("{table}{picture}"), table)
        })
        .collect();
    let full: usize = sections.iter().map(|s| s.0.len()).sum();
    if out.len() + full <= limit {
        sections.iter().for_each(|s| out.push_str(&s.0));
        return out;
    }
    // Over the limit: timelines go first, then whole issuers' key tables, counted.
    // Room for the line saying so.
    let room = limit.saturating_sub(400);
    let mut left_out = 0;
    for (_, table) in &sections {
        if out.len() + table.len() > room {
            left_out += 1;
        } else {
            out.push_str(table);
        }
    }
    out.push_str(&format!(
        "\n> **Shortened to stay under GitHub's size limit**: left out the timelines{}; `keyroll plan --format markdown` shows everything.\n",
        if left_out > 0 {
            format!(" and the key tables of {left_out} issuers")
        } else {
            String::new()
        }
    ));
    out
}

/// One issuer's part of the job summary: its detail and its keys.
fn summary_keys(o: &IssuerOutcome) -> String {
    let mut out = format!("\n### {}\n\n", crate::render::sanitize::md_code(&o.issuer));
    if let Some(detail) = &o.detail {
        out.push_str(&format!(
            "> {}\n\n",
            crate::render::sanitize::md_code(detail)
        ));
    }
    if o.keys.is_empty() {
        return out;
    }
    out.push_str("| SHA-1 | subject | valid to | status | action |\n|---|---|---|---|---|\n");
    for key in &o.keys {
        let status = match key.status {
            KeyStatus::Expiring => "⚠️ **expiring**".to_string(),
            KeyStatus::Expired => "❌ **expired**".to_string(),
            other => other.as_str().to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {status} | {} |\n",
            key.sha1,
            crate::render::sanitize::md_cell(&key.subject),
            key.not_after,
            key.action.as_str()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_over_the_limit_drops_timelines_first_then_key_tables() {
        use crate::decide::plan::KeyReport;
        let key = |n: u8| KeyReport {
            sha1: format!("{:040X}", n).parse().unwrap(),
            subject: "CN=ADFS Signing - fs.example.com".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            published: true,
            status: KeyStatus::Valid,
            first_seen: None,
            missing_since: None,
            grace_end: None,
            removal: None,
            action: crate::decide::plan::KeyAction::Add,
            reason: String::new(),
        };
        let outcome = |i: usize| IssuerOutcome {
            issuer: format!("issuer-{i}"),
            operation: Operation::Created,
            number: None,
            url: None,
            branch: format!("keyroll/issuer-{i}"),
            head_sha: None,
            detail: None,
            keys: vec![key(1), key(2)],
            errors: 0,
            proposal: None,
        };
        let report = PrReport {
            dry_run: true,
            repository: "o/r".into(),
            base: "main".into(),
            planned_from: None,
            outcomes: (0..40).map(outcome).collect(),
            api_calls: Vec::new(),
        };
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_500);
        let full = actions_summary_within(&report, now, usize::MAX);
        assert_eq!(full.matches("```mermaid").count(), 40);
        // Room for every key table but not every timeline: no timeline, every table.
        let pictures: usize = full
            .split("\n```mermaid\n")
            .skip(1)
            .map(|p| p.find("\n```\n").unwrap() + 16)
            .sum();
        let room = full.len() - pictures + 600;
        let tables_only = actions_summary_within(&report, now, room);
        assert!(tables_only.len() <= room);
        assert_eq!(tables_only.matches("```mermaid").count(), 0);
        assert_eq!(
            tables_only.matches("| SHA-1 |").count(),
            40,
            "{tables_only}"
        );
        assert!(tables_only.contains("left out the timelines;"));
        // Less room: key tables go too, counted.
        let small = actions_summary_within(&report, now, 6000);
        assert!(small.len() <= 6000, "{}", small.len());
        assert!(small.contains("and the key tables of "), "{small}");
        assert_eq!(
            small.matches("| `issuer-").count(),
            40,
            "every issuer keeps its row"
        );
    }
}
