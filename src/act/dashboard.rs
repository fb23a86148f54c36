//! `keyroll dashboard`: the state of every repository of an organisation run, from the matrix
//! jobs' results, as one issue in the central repository (found by a hidden marker, updated
//! in place, never a second one) and as a job summary.
//!
//! Results folder: one sub-folder per repository (what `actions/download-artifact` makes of
//! one artifact per matrix job), holding `repository.txt` (`owner/name`), and when they exist
//! `pr.json` (`keyroll pr --format json`'s output), `entra.json` (`keyroll entra check
//! --format json`'s, for repositories with `[[federated_domain]]`), `stderr.txt` and
//! `exit-code.txt`. A job
//! that failed before keyroll ran has only `repository.txt` and perhaps `exit-code.txt`: it is
//! listed as failed, never dropped.

use std::path::Path;

use serde_json::Value;

use crate::act::github::{GitHub, GitHubError, Issue, RepoName};
use crate::render::sanitize::{md_cell, md_url, redact_token_like};

/// The hidden marker that identifies the dashboard issue (label or not).
pub const MARKER: &str = "<!-- keyroll-dashboard -->";
pub const DEFAULT_LABEL: &str = "keyroll-dashboard";
pub const DEFAULT_TITLE: &str = "keyroll dashboard";
/// GitHub refuses issue bodies over 65,536 characters; rows beyond this budget (Renovate's,
/// which leaves room for GitHub's own additions) are counted, not listed.
pub const BODY_LIMIT: usize = 58_000;
/// A job summary may hold 1 MiB.
pub const SUMMARY_LIMIT: usize = 1_000_000;
/// The GitHub whose pull requests the dashboard links to when it is told no other.
pub const DEFAULT_SERVER: &str = "https://github.com";

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{path}: not keyroll pr JSON: {detail}")]
    Json { path: String, detail: String },
    #[error(transparent)]
    GitHub(#[from] GitHubError),
}

/// One matrix job's outcome.
#[derive(Debug, Clone)]
pub struct RepoResult {
    pub repository: String,
    pub exit_code: Option<i32>,
    /// `keyroll pr --format json`.
    pub report: Option<Value>,
    /// `keyroll entra check --format json`, when the job ran it.
    pub entra: Option<Value>,
    pub stderr: Option<String>,
}

/// What one repository's row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub repository: String,
    /// `(issuer, operation, number, url)` of each issuer with a PR or an operation.
    pub pulls: Vec<(String, String, Option<u64>, Option<String>)>,
    /// Keys added or removed by a change still waiting to merge.
    pub pending: usize,
    /// Why the repository (or one of its issuers) failed.
    pub failures: Vec<String>,
    /// Federated domains whose Entra ID copy lacks AD FS's next key (a lockout is a failure).
    pub entra: Vec<String>,
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> DashboardError {
    DashboardError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Reads every sub-folder of `dir` that holds a `repository.txt`, sorted by repository.
pub fn read_results(dir: &Path) -> Result<Vec<RepoResult>, DashboardError> {
    let mut results = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| read_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(dir, e))?;
        let folder = entry.path();
        let marker = folder.join("repository.txt");
        if !marker.is_file() {
            continue;
        }
        let repository = std::fs::read_to_string(&marker)
            .map_err(|e| read_error(&marker, e))?
            .trim()
            .to_string();
        let exit_path = folder.join("exit-code.txt");
        let exit_code = match std::fs::read_to_string(&exit_path) {
            Ok(text) => Some(
                text.trim()
                    .parse::<i32>()
                    .map_err(|_| DashboardError::Read {
                        path: exit_path.display().to_string(),
                        detail: format!("\"{}\" is not an exit code", text.trim()),
                    })?,
            ),
            Err(_) => None,
        };
        let report = read_json(&folder.join("pr.json"))?;
        let entra = read_json(&folder.join("entra.json"))?;
        let stderr = std::fs::read_to_string(folder.join("stderr.txt")).ok();
        results.push(RepoResult {
            repository,
            exit_code,
            report,
            entra,
            stderr,
        });
    }
    results.sort_by(|a, b| a.repository.cmp(&b.repository));
    Ok(results)
}

/// A job's JSON file: None when absent or empty (keyroll stopped before it printed anything;
/// stderr says why).
fn read_json(path: &Path) -> Result<Option<Value>, DashboardError> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => {
            serde_json::from_str::<Value>(&text)
                .map(Some)
                .map_err(|e| DashboardError::Json {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })
        }
        Err(_) => Ok(None),
    }
}

/// Each federated domain of `keyroll entra check --format json` that needs someone: a next
/// key missing (`attention`), a lockout or an error (`failures`).
fn entra_rows(entra: &Value, attention: &mut Vec<String>, failures: &mut Vec<String>) {
    for domain in entra["federated_domains"].as_array().into_iter().flatten() {
        let name = domain["domain"].as_str().unwrap_or("?");
        let verdict = &domain["verdict"];
        let field = |key: &str| verdict[key].as_str().unwrap_or("?").to_string();
        let text = match verdict["state"].as_str() {
            Some("in-step") | Some("not-checked") => continue,
            Some("next-missing") => {
                attention.push(format!(
                    "{name}: Entra ID lacks {}, which AD FS promotes on {} ({} days left)",
                    field("next"),
                    field("promotion"),
                    verdict["days_left"].as_i64().unwrap_or(0)
                ));
                continue;
            }
            Some("lockout") => format!(
                "lockout: AD FS signs with {} since {}, Entra ID holds it nowhere",
                field("adfs_current"),
                field("promoted")
            ),
            Some("stale-current") => format!(
                "lockout: Entra ID's current certificate {} is not published by AD FS any more",
                field("entra_current")
            ),
            Some("unpublished-next") => format!(
                "Entra ID trusts a next certificate AD FS does not publish: {}",
                field("entra_next")
            ),
            Some("current-in-next-slot") => format!(
                "Entra ID holds {}, the key AD FS signs with, only as its next certificate: set it as the current one before AD FS's next key {} can be added",
                field("adfs_current"),
                field("next")
            ),
            _ => field("detail"),
        };
        failures.push(format!(
            "{name} (Entra ID): {}",
            crate::model::secret::redact(&redact_token_like(&text))
        ));
    }
}

/// The last `error:` line keyroll wrote, else the last non-empty line. A job's stderr may
/// hold its own token (a tool echoing `Authorization: Bearer ghs_…`), which this process never
/// registered: anything token-like is redacted too.
fn stderr_reason(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .map(|l| {
            let reason = l.trim_start_matches("error:").trim();
            crate::model::secret::redact(&redact_token_like(reason))
        })
}

pub fn row(result: &RepoResult) -> Row {
    let mut row = Row {
        repository: result.repository.clone(),
        pulls: Vec::new(),
        pending: 0,
        failures: Vec::new(),
        entra: Vec::new(),
    };
    if let Some(entra) = &result.entra {
        entra_rows(entra, &mut row.entra, &mut row.failures);
    }
    if let Some(report) = &result.report {
        for issuer in report["issuers"].as_array().into_iter().flatten() {
            let name = issuer["issuer"].as_str().unwrap_or("?").to_string();
            let operation = issuer["operation"].as_str().unwrap_or("?").to_string();
            if operation == "failed" || issuer["errors"].as_u64().unwrap_or(0) > 0 {
                let detail = issuer["detail"].as_str().unwrap_or("failed");
                row.failures.push(format!(
                    "{name}: {}",
                    crate::model::secret::redact(&redact_token_like(detail))
                ));
            }
            let pending = issuer["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| matches!(k["action"].as_str(), Some("add" | "remove")))
                .count();
            row.pending += pending;
            let number = issuer["number"].as_u64();
            if number.is_some() || !matches!(operation.as_str(), "none" | "failed") {
                row.pulls.push((
                    name,
                    operation,
                    number,
                    issuer["url"].as_str().map(str::to_string),
                ));
            }
        }
    }
    let code = result
        .exit_code
        .unwrap_or(if result.report.is_some() { 0 } else { 1 });
    if code != 0 && row.failures.is_empty() {
        let reason = result
            .stderr
            .as_deref()
            .and_then(stderr_reason)
            .unwrap_or_else(|| {
                if result.report.is_none() {
                    "the job produced no keyroll output (checkout or token step failed?)".into()
                } else {
                    format!("keyroll exited {code}")
                }
            });
        row.failures.push(reason);
    }
    row
}

/// `scheme://host[:port]` of an http(s) URL, lower-cased; None for anything else.
pub fn server_of(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let scheme = &lower[..lower.len() - rest.len()];
    let host = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    // User information would let `https://github.com@evil.example` pass for github.com.
    (!host.is_empty() && !host.contains('@')).then(|| format!("{scheme}{host}"))
}

/// The web server of a GitHub API URL: `https://api.github.com` → `https://github.com`,
/// GitHub Enterprise Server's `https://HOST/api/v3` → `https://HOST`.
pub fn server_of_api(api_url: &str) -> Option<String> {
    let server = server_of(api_url)?;
    Some(match server.strip_prefix("https://api.") {
        Some(host) => format!("https://{host}"),
        None => server,
    })
}

/// `url` as a Markdown link destination when it is on `server` (`scheme://host[:port]`),
/// else None: a job's pr.json is another job's output, and a link the dashboard shows is one
/// people click.
fn link_on(url: &str, server: &str) -> Option<String> {
    // The host ends where the path's `/` starts: `https://github.com.evil.example/` and
    // `https://github.com@evil.example/` are not on github.com.
    let on_server = url.to_ascii_lowercase().starts_with(&format!("{server}/"));
    on_server.then(|| md_url(url)).flatten()
}

/// The dashboard's Markdown: the marker, counts, then failures, repositories with pull
/// requests or pending keys, skipped repositories; up-to-date repositories are counted.
/// Pull requests are linked only on the GitHub the run is on (`run_url`'s host, which comes
/// from `GITHUB_SERVER_URL`), else on github.com; see [`render_linked`].
pub fn render(
    results: &[RepoResult],
    discovery: Option<&Value>,
    run_url: Option<&str>,
    now: &str,
    limit: usize,
) -> String {
    let server = run_url
        .and_then(server_of)
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    render_linked(results, discovery, run_url, &server, now, limit)
}

/// [`render`] linking pull requests only to `server` (`https://github.com`, or a GitHub
/// Enterprise Server's `https://HOST`): a pr.json URL anywhere else is shown as text, not
/// a link. Whatever in the jobs' outputs looks like a token is redacted.
pub fn render_linked(
    results: &[RepoResult],
    discovery: Option<&Value>,
    run_url: Option<&str>,
    server: &str,
    now: &str,
    limit: usize,
) -> String {
    let server = server_of(server).unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let rows: Vec<Row> = results.iter().map(row).collect();
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.failures.is_empty()).collect();
    let active: Vec<&Row> = rows
        .iter()
        .filter(|r| r.failures.is_empty() && (!r.pulls.is_empty() || r.pending > 0))
        .collect();
    let quiet = rows.len() - failed.len() - active.len();
    let skipped = discovery_skips(discovery);

    let mut out = format!("{MARKER}\n## keyroll: the estate\n\n");
    out.push_str(&format!(
        "Updated {now}{}. {} repositories run: **{} failed**, {} with pull requests or pending keys, {} up to date; {} skipped.\n",
        run_url
            .and_then(md_url)
            .map(|u| format!(" by [this run]({u})"))
            .unwrap_or_default(),
        rows.len(),
        failed.len(),
        active.len(),
        quiet,
        skipped.len()
    ));
    let entra_missing = rows.iter().filter(|r| !r.entra.is_empty()).count();
    if entra_missing > 0 {
        out.push_str(&format!(
            "{entra_missing} with a federated domain whose Entra ID copy lacks AD FS's next key.\n"
        ));
    }
    if let Some(d) = discovery {
        out.push_str(&format!(
            "Discovery listed {} repositories; {} hold no keyroll.toml.\n",
            d["listed"].as_u64().unwrap_or(0),
            d["without_config"].as_u64().unwrap_or(0)
        ));
    }
    let mut sections = Sections {
        out,
        limit,
        left_out: 0,
    };
    sections.add(
        "Failed",
        "| repository | reason |\n| --- | --- |",
        failed_lines(&failed),
    );
    sections.add(
        "Pull requests and pending keys",
        "| repository | pull requests | keys pending |\n| --- | --- | --- |",
        active_lines(&active, &server),
    );
    sections.add(
        "Entra ID: next keys missing",
        "| repository | federated domains |\n| --- | --- |",
        rows.iter()
            .filter(|r| !r.entra.is_empty())
            .map(|r| {
                let domains: Vec<String> = r.entra.iter().map(|d| md_cell(d)).collect();
                format!("| {} | {} |", md_cell(&r.repository), domains.join("<br>"))
            })
            .collect(),
    );
    sections.add(
        "Skipped",
        "| repository | reason |\n| --- | --- |",
        skipped
            .iter()
            .map(|(repo, reason)| format!("| {} | {} |", md_cell(repo), md_cell(reason)))
            .collect(),
    );
    sections.add_blocks("Timelines", timeline_blocks(results, now));
    let Sections {
        mut out, left_out, ..
    } = sections;
    if left_out > 0 {
        out.push_str(&format!(
            "\n{left_out} more rows or timelines left out: over the size GitHub accepts here (an issue body holds 65,536 characters; kept under 58,000); see the job summary of this run, which lists more.\n"
        ));
    }
    // Repository names, issuers and URLs come from the jobs' files too.
    redact_token_like(&out).into_owned()
}

/// The repositories discovery skipped or failed to look up, with why.
fn discovery_skips(discovery: Option<&Value>) -> Vec<(String, String)> {
    discovery
        .map(|d| {
            let mut list = Vec::new();
            for (key, fallback) in [("skipped", ""), ("failed", "discovery failed")] {
                for s in d[key].as_array().into_iter().flatten() {
                    let reason = s["reason"].as_str().unwrap_or(fallback);
                    let reason = if key == "failed" {
                        format!("discovery failed: {reason}")
                    } else {
                        reason.to_string()
                    };
                    list.push((s["repository"].as_str().unwrap_or("?").to_string(), reason));
                }
            }
            list
        })
        .unwrap_or_default()
}

/// The dashboard's text as its sections are added: a row that would take it over `limit` is
/// counted in `left_out`, not written.
struct Sections {
    out: String,
    limit: usize,
    left_out: usize,
}

impl Sections {
    /// A `### title` section with its table header, when it has lines.
    fn add(&mut self, title: &str, header: &str, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        self.out.push_str(&format!("\n### {title}\n\n{header}\n"));
        for line in lines {
            if self.out.len() + line.len() > self.limit {
                self.left_out += 1;
                continue;
            }
            self.out.push_str(&line);
            self.out.push('\n');
        }
    }

    /// A `### title` section of whole blocks (timelines): one that does not fit is counted.
    fn add_blocks(&mut self, title: &str, blocks: Vec<String>) {
        if blocks.is_empty() {
            return;
        }
        let heading = format!("\n### {title}\n");
        if self.out.len() + heading.len() + blocks[0].len() > self.limit {
            self.left_out += blocks.len();
            return;
        }
        self.out.push_str(&heading);
        for block in blocks {
            if self.out.len() + block.len() + 1 > self.limit {
                self.left_out += 1;
                continue;
            }
            self.out.push('\n');
            self.out.push_str(&block);
        }
    }
}

/// Per repository and issuer whose keys change (added or removed, in a pull request or
/// waiting), the rollover as a Mermaid timeline.
fn timeline_blocks(results: &[RepoResult], now: &str) -> Vec<String> {
    use crate::render::timeline::{TimelineKey, timeline};
    let Ok(now) = crate::model::clock::parse_rfc3339(now) else {
        return Vec::new();
    };
    let mut blocks = Vec::new();
    for result in results {
        let Some(report) = &result.report else {
            continue;
        };
        for issuer in report["issuers"].as_array().into_iter().flatten() {
            let keys: Vec<TimelineKey> = issuer["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(TimelineKey::from_json)
                .collect();
            if !keys
                .iter()
                .any(|k| k.action == "add" || k.action == "remove")
            {
                continue;
            }
            let name = issuer["issuer"].as_str().unwrap_or("?");
            blocks.push(format!(
                "#### {} {}\n\n{}",
                md_cell(&result.repository),
                md_cell(name),
                timeline(name, &keys, false, now)
            ));
        }
    }
    blocks
}

/// "Failed" rows: the repository and every reason.
fn failed_lines(failed: &[&Row]) -> Vec<String> {
    failed
        .iter()
        .map(|r| {
            format!(
                "| {} | {} |",
                md_cell(&r.repository),
                r.failures
                    .iter()
                    .map(|f| md_cell(f))
                    .collect::<Vec<_>>()
                    .join("<br>")
            )
        })
        .collect()
}

/// "Pull requests and pending keys" rows; a pull request is linked only on `server`.
fn active_lines(active: &[&Row], server: &str) -> Vec<String> {
    active
        .iter()
        .map(|r| {
            let pulls = r
                .pulls
                .iter()
                .map(|(issuer, op, number, url)| {
                    let linked = url.as_deref().and_then(|u| link_on(u, server));
                    let link = match (number, linked, url) {
                        (Some(n), Some(u), _) => format!("[#{n}]({u})"),
                        // Not on this GitHub: named, never linked (a code span is
                        // not autolinked).
                        (Some(n), None, Some(url)) => format!("#{n} ({})", md_cell(url)),
                        (Some(n), None, None) => format!("#{n}"),
                        _ => "no PR".into(),
                    };
                    format!("{link} {} ({})", md_cell(issuer), md_cell(op))
                })
                .collect::<Vec<_>>()
                .join("<br>");
            format!("| {} | {pulls} | {} |", md_cell(&r.repository), r.pending)
        })
        .collect()
}

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Created(Option<u64>),
    Updated(u64),
}

/// Finds the dashboard issue (label first; then a search for the marker, in case someone
/// removed the label) and updates it; creates it only when neither finds one. When several
/// carry the marker, the oldest is updated. An issue the search finds counts only if a bot or
/// someone with write access opened it ([`Issue::opened_from_inside`]): anyone may paste the
/// marker into an issue of a public repository, but only those with triage rights label one
/// (GitHub may report a member whose membership is private as a `CONTRIBUTOR`, so a
/// labelled dashboard a person opened is still found).
pub async fn publish(
    github: &GitHub,
    repo: &RepoName,
    title: &str,
    label: &str,
    body: &str,
) -> Result<Published, DashboardError> {
    let oldest = |issues: Vec<Issue>| {
        issues
            .into_iter()
            .filter(|i| i.body.as_deref().is_some_and(|b| b.contains(MARKER)))
            .min_by_key(|i| i.number)
    };
    let mut found = oldest(github.issues_with_label(repo, label).await?);
    if found.is_none() {
        let searched = github.search_issues_by_marker(repo, MARKER).await?;
        found = oldest(
            searched
                .into_iter()
                .filter(Issue::opened_from_inside)
                .collect(),
        );
    }
    match found {
        Some(issue) => {
            github.update_issue(repo, issue.number, title, body).await?;
            Ok(Published::Updated(issue.number))
        }
        None => {
            let created = github
                .create_issue(repo, title, body, &[label.to_string()])
                .await?;
            Ok(Published::Created(created.map(|i| i.number)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(repo: &str, action: &str) -> RepoResult {
        let key = |sha1: &str, from: &str, to: &str, action: &str| {
            serde_json::json!({
                "sha1": sha1, "subject": "CN=ADFS Signing: fs", "not_before": from,
                "not_after": to, "published": true, "status": "valid", "action": action,
                "first_seen": from,
            })
        };
        RepoResult {
            repository: repo.into(),
            exit_code: Some(0),
            report: Some(serde_json::json!({
                "issuers": [{
                    "issuer": "adfs", "operation": "created", "number": 3,
                    "url": format!("https://github.com/{repo}/pull/3"),
                    "keys": [
                        key("AAAA1111", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "keep"),
                        key("BBBB2222", "2026-12-01T00:00:00Z", "2027-12-01T00:00:00Z", action),
                    ],
                }],
            })),
            stderr: None,
            entra: None,
        }
    }

    #[test]
    fn issuers_whose_keys_change_get_a_timeline_within_the_limit() {
        let now = "2026-12-07T12:00:00Z";
        let results = [result("o/changing", "add"), result("o/quiet", "keep")];
        let body = render(&results, None, None, now, BODY_LIMIT);
        assert_eq!(body.matches("```mermaid\ngantt\n").count(), 1, "{body}");
        assert!(body.contains("#### `o/changing` `adfs`"), "{body}");
        assert!(body.contains("CN=ADFS Signing#58; fs (add)"), "{body}");
        assert!(
            body.contains("today :milestone, now, 2026-12-07, 0d"),
            "{body}"
        );
        // 300 repositories' timelines do not fit: counted, the body under the limit.
        let many: Vec<RepoResult> = (0..300)
            .map(|i| result(&format!("o/r{i}"), "add"))
            .collect();
        let body = render(&many, None, None, now, BODY_LIMIT);
        assert!(body.len() <= BODY_LIMIT, "{}", body.len());
        assert!(body.contains("more rows or timelines left out"), "{body}");
    }
}
