//! `keyroll pr`: one branch, one commit and one pull request per issuer whose plan has
//! changes; the same PR updated run after run; closed when nothing is left to do.
//!
//! State lives where reviewers can see it, not in a side file: the branch's commit carries
//! `Keyroll-Keyset:` (which changes it holds) and the PR body ends with a hidden marker
//! `<!-- keyroll: {...} -->` (which key set it proposed, and whether keyroll already told a
//! person who pushed to the branch what it would change).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::git::{GitError, GitRepo, Identity};
use crate::github::{
    ApiCall, GitHub, GitHubError, NewPull, PullRequest, RepoName, RetryPolicy, Secret,
};
use crate::lock::Lock;
use crate::plan::{self, IssuerState, Plan};
use crate::rules::RuleSet;
use crate::scan::ConfigFile;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum PrError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("{0}")]
    Setup(String),
}

/// How `keyroll pr` reaches GitHub and the git remote (resolved by the CLI from flags,
/// keyroll.toml and the Actions environment).
pub struct PrOptions {
    pub dry_run: bool,
    pub repository: RepoName,
    pub api_url: String,
    /// Where to fetch and push; None in a dry run outside a repository.
    pub remote_url: Option<String>,
    pub token: Option<Secret>,
    pub retry: RetryPolicy,
    pub body_limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Created,
    Updated,
    Closed,
    None,
    /// A person closed keyroll's PR for this very key set without merging: not reopened.
    SkippedClosed,
    /// A person pushed to keyroll's branch: left alone, with a comment.
    SkippedHuman,
    /// The issuer's metadata or plan failed: nothing touched, the open PR left as it is.
    Failed,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Created => "created",
            Operation::Updated => "updated",
            Operation::Closed => "closed",
            Operation::None => "none",
            Operation::SkippedClosed => "skipped-closed",
            Operation::SkippedHuman => "skipped-human",
            Operation::Failed => "failed",
        }
    }
}

/// What the PR for one issuer would hold.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub title: String,
    pub commit_message: String,
    pub body: String,
    pub files: Vec<String>,
    pub keyset: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuerOutcome {
    pub issuer: String,
    pub operation: Operation,
    pub number: Option<u64>,
    pub url: Option<String>,
    pub branch: String,
    pub head_sha: Option<String>,
    pub detail: Option<String>,
    /// The issuer's keys and what the plan does with each (empty when it failed to load).
    pub keys: Vec<crate::plan::KeyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrReport {
    pub dry_run: bool,
    pub repository: String,
    pub base: String,
    pub outcomes: Vec<IssuerOutcome>,
    pub api_calls: Vec<ApiCall>,
}

impl PrReport {
    pub fn changed(&self) -> bool {
        self.outcomes.iter().any(|o| {
            matches!(
                o.operation,
                Operation::Created | Operation::Updated | Operation::Closed
            )
        })
    }

    pub fn failed(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| o.operation == Operation::Failed)
    }
}

/// The hidden marker at the end of keyroll's PR bodies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    pub issuer: String,
    pub keyset: String,
    /// The key set keyroll last described in a comment on a branch a person pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<String>,
}

const MARKER_START: &str = "<!-- keyroll: ";

impl Marker {
    pub fn render(&self) -> String {
        format!(
            "{MARKER_START}{} -->",
            serde_json::to_string(self).expect("marker serializes")
        )
    }

    pub fn find(body: &str) -> Option<Marker> {
        let start = body.rfind(MARKER_START)? + MARKER_START.len();
        let end = start + body[start..].find("-->")?;
        serde_json::from_str(body[start..end].trim()).ok()
    }
}

pub fn branch_name(settings: &Settings, issuer: &str) -> String {
    let slug: String = issuer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{}{}", settings.pr.branch_prefix, slug.trim_matches('-'))
}

/// Runs `keyroll pr` for every issuer, in keyroll.toml's order.
pub async fn run(
    settings: &Settings,
    rules: &RuleSet,
    lock: &Lock,
    issuers: &[IssuerState],
    targets: &[(ConfigFile, Vec<usize>)],
    now: OffsetDateTime,
    options: &PrOptions,
) -> Result<PrReport, PrError> {
    if !options.dry_run && options.token.is_none() {
        return Err(PrError::Setup(
            "keyroll pr needs a token (--token or GITHUB_TOKEN) or a GitHub App (--app-id and --app-private-key); --dry-run previews without one".into(),
        ));
    }
    let github = GitHub::new(
        &options.api_url,
        options.token.clone(),
        options.dry_run,
        options.retry.clone(),
    );
    let repo = match GitRepo::discover(&settings.root) {
        Ok(repo) => Some(repo),
        // A dry run works outside a repository too (paths then relative to keyroll.toml).
        Err(_) if options.dry_run => None,
        Err(e) => return Err(e.into()),
    };
    // In a real run the base comes from the remote, fetched now; a dry run reads nothing
    // from the remote.
    let mut base = settings.pr.base.clone();
    let mut base_head = None;
    if !options.dry_run {
        let repo = repo.as_ref().expect("checked above");
        let url = options.remote_url.as_deref().ok_or_else(|| {
            PrError::Setup("no git remote to push to: set --remote or add an origin".into())
        })?;
        let name = match &base {
            Some(b) => b.clone(),
            None => repo.default_branch(url, options.token.as_ref())?,
        };
        repo.fetch(
            url,
            &name,
            &settings.pr.branch_prefix,
            options.token.as_ref(),
        )?;
        base_head = Some(repo.base_head()?);
        base = Some(name);
    }
    let base = base.unwrap_or_else(|| "main".into());

    let mut outcomes = Vec::new();
    for state in issuers {
        let outcome = run_issuer(
            settings,
            rules,
            lock,
            state,
            targets,
            now,
            options,
            &github,
            repo.as_ref(),
            &base,
            base_head,
        )
        .await;
        outcomes.push(outcome.unwrap_or_else(|e| IssuerOutcome {
            issuer: state.name.clone(),
            operation: Operation::Failed,
            number: None,
            url: None,
            branch: branch_name(settings, &state.name),
            head_sha: None,
            detail: Some(e.to_string()),
            keys: Vec::new(),
            proposal: None,
        }));
    }
    Ok(PrReport {
        dry_run: options.dry_run,
        repository: options.repository.to_string(),
        base,
        outcomes,
        api_calls: github.calls(),
    })
}

/// The plan for one issuer alone: only the targets that name it, only its keys.
pub fn issuer_plan(
    settings: &Settings,
    rules: &RuleSet,
    lock: &Lock,
    state: &IssuerState,
    targets: &[(ConfigFile, Vec<usize>)],
    now: OffsetDateTime,
) -> Plan {
    let mine: Vec<(ConfigFile, Vec<usize>)> = targets
        .iter()
        .filter_map(|(file, indices)| {
            let kept: Vec<usize> = indices
                .iter()
                .copied()
                .filter(|&t| settings.targets[t].issuers.contains(&state.name))
                .collect();
            (!kept.is_empty()).then(|| (file.clone(), kept))
        })
        .collect();
    plan::build(
        settings,
        rules,
        lock,
        std::slice::from_ref(state),
        &mine,
        now,
    )
}

/// A short fingerprint of what the plan proposes: which key goes where, and which keys the
/// issuer publishes. Timestamps stay out, so the same proposal has the same key set.
fn keyset(plan: &Plan) -> String {
    let mut lines = BTreeSet::new();
    for file in &plan.files {
        for change in &file.changes {
            lines.insert(format!(
                "{}\t{}\t{}",
                file.display,
                change.action.as_str(),
                change.thumbprint.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
    }
    for issuer in &plan.issuers {
        for key in issuer.keys.iter().filter(|k| k.published) {
            lines.insert(format!("published\t{}", key.sha1));
        }
        for key in issuer.keys.iter().filter(|k| k.missing_since.is_some()) {
            lines.insert(format!("missing\t{}", key.sha1));
        }
    }
    let digest = sha2::Sha256::digest(lines.into_iter().collect::<Vec<_>>().join("\n"));
    hex::encode(&digest[..8])
}

fn title(issuer: &crate::plan::IssuerReport) -> String {
    let adds: Vec<String> = issuer
        .keys
        .iter()
        .filter(|k| k.action == "add")
        .map(|k| k.sha1.to_string()[..8].to_string())
        .collect();
    let removes = issuer.keys.iter().filter(|k| k.action == "remove").count();
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

#[allow(clippy::too_many_arguments)]
async fn run_issuer(
    settings: &Settings,
    rules: &RuleSet,
    lock: &Lock,
    state: &IssuerState,
    targets: &[(ConfigFile, Vec<usize>)],
    now: OffsetDateTime,
    options: &PrOptions,
    github: &GitHub,
    repo: Option<&GitRepo>,
    base: &str,
    base_head: Option<git2::Oid>,
) -> Result<IssuerOutcome, PrError> {
    let branch = branch_name(settings, &state.name);
    let mut outcome = IssuerOutcome {
        issuer: state.name.clone(),
        operation: Operation::None,
        number: None,
        url: None,
        branch: branch.clone(),
        head_sha: None,
        detail: None,
        keys: Vec::new(),
        proposal: None,
    };
    let plan = issuer_plan(settings, rules, lock, state, targets, now);
    if !plan.errors.is_empty() {
        // A failed source must never read as "nothing to do": the open PR stays as it is.
        outcome.operation = Operation::Failed;
        outcome.detail = Some(plan.errors.join("; "));
        return Ok(outcome);
    }
    let report = plan
        .issuers
        .iter()
        .find(|r| r.name == state.name)
        .cloned()
        .ok_or_else(|| PrError::Setup(format!("no report for issuer {}", state.name)))?;
    outcome.keys = report.keys.clone();

    // The files of the commit, named as git names them, with their exact new bytes.
    let lock_file = plan::lock_path(settings);
    let name_of = |path: &std::path::Path, display: &str| match repo {
        Some(r) => r.relative(path).ok_or_else(|| {
            PrError::Setup(format!("{} is outside the git repository", path.display()))
        }),
        None => Ok(display.to_string()),
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut befores: Vec<Option<Vec<u8>>> = Vec::new();
    for file in &plan.files {
        files.push((name_of(&file.path, &file.display)?, file.after.clone()));
        befores.push(Some(file.before.clone()));
    }
    let lock_display = if plan.lock_changed() {
        let name = name_of(&lock_file, "keyroll.lock")?;
        files.push((name.clone(), plan.lock_after.to_toml().into_bytes()));
        befores.push(std::fs::read(&lock_file).ok());
        Some(name)
    } else {
        None
    };

    let pulls = github
        .pulls_for_branch(&options.repository, &branch)
        .await?;
    let open = pulls.iter().find(|p| p.is_open()).cloned();

    if !plan.has_changes() {
        let Some(open) = open else {
            return Ok(outcome);
        };
        let owned = match (repo, base_head) {
            (Some(r), Some(base_head)) => branch_is_keyrolls(r, settings, &branch, base_head)?,
            _ => true,
        };
        github
            .comment(
                &options.repository,
                open.number,
                &format!(
                    "keyroll closes this pull request: the configs already trust what **{}** publishes (fixed by hand, or the metadata rolled back), so nothing is left to change.{}",
                    state.name,
                    if owned { "" } else { " The branch has commits keyroll did not make, so it is kept." }
                ),
            )
            .await?;
        github.close_pull(&options.repository, open.number).await?;
        if owned {
            github.delete_branch(&options.repository, &branch).await?;
        }
        outcome.operation = Operation::Closed;
        outcome.number = Some(open.number);
        outcome.url = Some(open.html_url.clone());
        return Ok(outcome);
    }

    let keyset = keyset(&plan);
    let pr_title = title(&report);
    let marker = Marker {
        issuer: state.name.clone(),
        keyset: keyset.clone(),
        notified: None,
    };
    // Reviewers see repository paths, as in the Files changed tab.
    let shown: Vec<crate::plan::FilePlan> = plan
        .files
        .iter()
        .zip(&files)
        .map(|(f, (name, _))| crate::plan::FilePlan {
            display: name.clone(),
            ..f.clone()
        })
        .collect();
    let body = crate::report::pr_body(
        &report,
        &shown,
        lock_display.as_deref(),
        &marker.render(),
        options.body_limit,
    );
    let commit_message = format!(
        "{pr_title}\n\n{}\n\n{}\nKeyroll-Issuer: {}\nKeyroll-Keyset: {keyset}\n",
        crate::report::pr_summary(&report),
        files
            .iter()
            .map(|(name, _)| format!("- {name}\n"))
            .collect::<String>(),
        state.name
    );
    outcome.proposal = Some(Proposal {
        title: pr_title.clone(),
        commit_message: commit_message.clone(),
        body: body.clone(),
        files: files.iter().map(|(n, _)| n.clone()).collect(),
        keyset: keyset.clone(),
    });

    if open.is_none()
        && pulls.iter().any(|p| {
            p.merged_at.is_none()
                && Marker::find(p.body.as_deref().unwrap_or("")).is_some_and(|m| m.keyset == keyset)
        })
    {
        let closed = pulls
            .iter()
            .find(|p| p.merged_at.is_none())
            .expect("found above");
        outcome.operation = Operation::SkippedClosed;
        outcome.number = Some(closed.number);
        outcome.url = Some(closed.html_url.clone());
        outcome.detail = Some(format!(
            "pull request #{} proposed this same key set and was closed without merging; keyroll does not reopen it",
            closed.number
        ));
        return Ok(outcome);
    }

    // The branch: rebuilt from the base when the base moved or the key set changed, and
    // force-pushed only when keyroll made every commit on it.
    let mut pushed = false;
    if let (Some(repo), Some(base_head)) = (repo, base_head) {
        for ((name, _), before) in files.iter().zip(&befores) {
            if repo.blob_at(base_head, name)? != *before {
                return Err(PrError::Setup(format!(
                    "{name} in the work tree differs from {base} on the remote; run keyroll pr on a clean checkout of {base}"
                )));
            }
        }
        let remote_head = repo.remote_branch(&branch, &settings.pr.branch_prefix);
        if let Some(head) = remote_head
            && !branch_is_keyrolls(repo, settings, &branch, base_head)?
        {
            outcome.operation = Operation::SkippedHuman;
            outcome.head_sha = Some(head.to_string());
            outcome.detail = Some(format!(
                "{branch} has commits keyroll did not make; left alone"
            ));
            if let Some(open) = &open {
                outcome.number = Some(open.number);
                outcome.url = Some(open.html_url.clone());
                let previous = Marker::find(open.body.as_deref().unwrap_or("")).unwrap_or_default();
                if previous.notified.as_deref() != Some(keyset.as_str()) {
                    github
                        .comment(
                            &options.repository,
                            open.number,
                            &human_branch_comment(&report, &plan, &branch),
                        )
                        .await?;
                    let mut noted = previous.clone();
                    noted.issuer = state.name.clone();
                    noted.notified = Some(keyset.clone());
                    if noted.keyset.is_empty() {
                        noted.keyset = keyset.clone();
                    }
                    let old_body = open.body.clone().unwrap_or_default();
                    let new_body = match old_body.rfind(MARKER_START) {
                        Some(at) => format!("{}{}", &old_body[..at], noted.render()),
                        None => format!("{old_body}\n\n{}", noted.render()),
                    };
                    github
                        .update_pull(&options.repository, open.number, &open.title, &new_body)
                        .await?;
                }
            }
            return Ok(outcome);
        }
        let up_to_date = match remote_head {
            Some(head) => {
                repo.parents(head)? == vec![base_head]
                    && repo
                        .message(head)?
                        .lines()
                        .any(|l| l.trim() == format!("Keyroll-Keyset: {keyset}"))
            }
            None => false,
        };
        if up_to_date {
            outcome.head_sha = remote_head.map(|h| h.to_string());
        } else {
            let identity = Identity {
                name: settings.pr.author_name.clone(),
                email: settings.pr.author_email.clone(),
            };
            let commit = repo.commit_files(base_head, &files, &commit_message, &identity, now)?;
            let url = options
                .remote_url
                .as_deref()
                .expect("a real run has a remote");
            repo.push(url, &branch, commit, options.token.as_ref())?;
            pushed = true;
            outcome.head_sha = Some(commit.to_string());
        }
    }

    match open {
        Some(open) => {
            outcome.number = Some(open.number);
            outcome.url = Some(open.html_url.clone());
            let same_marker = Marker::find(open.body.as_deref().unwrap_or(""))
                .is_some_and(|m| m.keyset == keyset);
            if pushed || !same_marker || open.title != pr_title {
                github
                    .update_pull(&options.repository, open.number, &pr_title, &body)
                    .await?;
                outcome.operation = Operation::Updated;
            }
            if outcome.head_sha.is_none() {
                outcome.head_sha = Some(open.head.sha.clone());
            }
        }
        None => {
            let new = NewPull {
                title: &pr_title,
                body: &body,
                branch: &branch,
                base,
                draft: settings.pr.draft,
            };
            match github.create_pull(&options.repository, &new).await {
                Ok(created) => {
                    outcome.operation = Operation::Created;
                    if let Some(pr) = created {
                        outcome.number = Some(pr.number);
                        outcome.url = Some(pr.html_url.clone());
                        outcome.head_sha = outcome.head_sha.or(Some(pr.head.sha.clone()));
                        decorate(settings, github, &options.repository, Some(pr.number)).await?;
                    } else {
                        // Dry run: show the calls a new PR would need.
                        decorate(settings, github, &options.repository, None).await?;
                    }
                }
                Err(e) if is_already_exists(&e) => {
                    // Opened meanwhile (another run, or a listing that lagged): update it.
                    let existing = github
                        .pulls_for_branch(&options.repository, &branch)
                        .await?
                        .into_iter()
                        .find(PullRequest::is_open)
                        .ok_or(e)?;
                    github
                        .update_pull(&options.repository, existing.number, &pr_title, &body)
                        .await?;
                    outcome.operation = Operation::Updated;
                    outcome.number = Some(existing.number);
                    outcome.url = Some(existing.html_url.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(outcome)
}

/// Labels, assignees and reviewers from `[pr]`: one call each, only those configured.
/// `None` in a dry run, where the PR has no number yet: the calls are only listed.
async fn decorate(
    settings: &Settings,
    github: &GitHub,
    repo: &RepoName,
    number: Option<u64>,
) -> Result<(), GitHubError> {
    let pr = &settings.pr;
    let Some(number) = number else {
        let new = format!("/repos/{}/{}", repo.owner, repo.name);
        if !pr.labels.is_empty() {
            github.list_unsent("POST", &format!("{new}/issues/{{number}}/labels"));
        }
        if !pr.assignees.is_empty() {
            github.list_unsent("POST", &format!("{new}/issues/{{number}}/assignees"));
        }
        if !pr.reviewers.is_empty() || !pr.team_reviewers.is_empty() {
            github.list_unsent(
                "POST",
                &format!("{new}/pulls/{{number}}/requested_reviewers"),
            );
        }
        return Ok(());
    };
    if !pr.labels.is_empty() {
        github.add_labels(repo, number, &pr.labels).await?;
    }
    if !pr.assignees.is_empty() {
        github.add_assignees(repo, number, &pr.assignees).await?;
    }
    if !pr.reviewers.is_empty() || !pr.team_reviewers.is_empty() {
        github
            .request_reviewers(repo, number, &pr.reviewers, &pr.team_reviewers)
            .await?;
    }
    Ok(())
}

fn is_already_exists(e: &GitHubError) -> bool {
    matches!(e, GitHubError::Status { status: 422, message, .. } if message.contains("already exists"))
}

/// Every commit on the remote branch that the base lacks was made by keyroll's identity.
fn branch_is_keyrolls(
    repo: &GitRepo,
    settings: &Settings,
    branch: &str,
    base_head: git2::Oid,
) -> Result<bool, GitError> {
    let Some(head) = repo.remote_branch(branch, &settings.pr.branch_prefix) else {
        return Ok(true);
    };
    let email = settings.pr.author_email.as_str();
    Ok(repo
        .commits_between(head, base_head)?
        .iter()
        .all(|c| c.author_email == email && c.committer_email == email))
}

fn human_branch_comment(report: &crate::plan::IssuerReport, plan: &Plan, branch: &str) -> String {
    let mut text = format!(
        "Someone pushed to `{branch}`, so keyroll leaves the branch alone. It would now propose:\n\n**{}**\n\n",
        crate::report::pr_summary(report)
    );
    for file in &plan.files {
        for change in &file.changes {
            text.push_str(&format!(
                "- `{}` line {}: {} {}\n",
                file.display,
                change.line,
                change.action.as_str(),
                change.thumbprint.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
    }
    text.push_str("\nDelete the branch (or close this PR) to let keyroll rebuild it.\n");
    text
}

/// Text for people: per issuer the operation and PR, then in a dry run what would be sent.
pub fn report_text(report: &PrReport) -> String {
    let mut out = String::new();
    if report.dry_run {
        out.push_str(&format!(
            "keyroll pr --dry-run for {} (base {}): nothing is pushed and no write call is made\n",
            report.repository, report.base
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
        out.push_str(&format!("\n{}: {verb} on branch {}", o.issuer, o.branch));
        if let Some(n) = o.number {
            out.push_str(&format!(", PR #{n}"));
        }
        if let Some(url) = &o.url {
            out.push_str(&format!(" {url}"));
        }
        if let Some(sha) = &o.head_sha {
            out.push_str(&format!(", head {sha}"));
        }
        out.push('\n');
        if let Some(detail) = &o.detail {
            out.push_str(&format!("  {detail}\n"));
        }
        if report.dry_run
            && let Some(p) = &o.proposal
        {
            out.push_str(&format!("\n--- commit message\n{}", p.commit_message));
            out.push_str(&format!("\n--- pull request title\n{}\n", p.title));
            out.push_str(&format!("\n--- pull request body\n{}", p.body));
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
            out.push_str(&format!("  {} {}  ({state})\n", call.method, call.path));
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
    use crate::sanitize::output_entry;
    [
        // A dry run changes nothing, whatever it would do.
        output_entry(
            "changed",
            &(!report.dry_run && report.changed()).to_string(),
        ),
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
                .filter_map(|o| o.url.as_deref().map(crate::sanitize::one_line))
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
/// changed and the PR link, with certificates near or past expiry called out.
pub fn actions_summary(report: &PrReport) -> String {
    let mut out = format!(
        "## keyroll{}\n\nRepository `{}`, base `{}`.\n\n| issuer | operation | pull request | branch |\n|---|---|---|---|\n",
        if report.dry_run { " (dry run)" } else { "" },
        report.repository,
        report.base
    );
    use crate::sanitize::{md_cell, md_code, md_url};
    for o in &report.outcomes {
        let pr = match (o.url.as_deref().and_then(md_url), o.number) {
            (Some(url), Some(n)) => format!("[#{n}]({url})"),
            (None, Some(n)) => format!("#{n}"),
            _ => "—".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {pr} | {} |\n",
            md_cell(&o.issuer),
            o.operation.as_str(),
            md_cell(&o.branch)
        ));
    }
    for o in &report.outcomes {
        out.push_str(&format!("\n### {}\n\n", md_code(&o.issuer)));
        if let Some(detail) = &o.detail {
            out.push_str(&format!("> {}\n\n", md_code(detail)));
        }
        if o.keys.is_empty() {
            continue;
        }
        out.push_str("| SHA-1 | subject | valid to | status | action |\n|---|---|---|---|---|\n");
        for key in &o.keys {
            let status = match key.status {
                "expiring" => "⚠️ **expiring**".to_string(),
                "expired" => "❌ **expired**".to_string(),
                other => other.to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {status} | {} |\n",
                key.sha1,
                md_cell(&key.subject),
                key.not_after,
                key.action
            ));
        }
    }
    out
}
