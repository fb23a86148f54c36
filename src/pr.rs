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
use crate::plan::{IssuerSlice, Plan};
use crate::report::ShownFile;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum PrError {
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
    /// Every change the commit makes, as the plan has it (file as keyroll.toml names it).
    pub changes: Vec<ProposedChange>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProposedChange {
    pub file: String,
    pub action: crate::plan::ChangeKind,
    pub line: u32,
    pub thumbprint: Option<crate::thumbprint::Thumbprint>,
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
    /// Files of this issuer keyroll could not change (named in the plan's errors); the
    /// others are still proposed.
    pub errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrReport {
    pub dry_run: bool,
    pub repository: String,
    pub base: String,
    /// The commit the plan was read from ("origin/main <sha>"), when in a repository.
    pub planned_from: Option<String>,
    pub outcomes: Vec<IssuerOutcome>,
    pub api_calls: Vec<ApiCall>,
}

impl PrReport {
    /// A pull request was created, updated or closed (never in a dry run, which sends no
    /// write).
    pub fn changed(&self) -> bool {
        !self.dry_run
            && self.outcomes.iter().any(|o| {
                matches!(
                    o.operation,
                    Operation::Created | Operation::Updated | Operation::Closed
                )
            })
    }

    pub fn failed(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| o.operation == Operation::Failed || o.errors > 0)
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

/// The commit the pull requests target, and where the plan's files were read from.
pub struct Base {
    pub name: String,
    /// The fetched base (a real run); None in a dry run, which pushes nothing.
    pub head: Option<git2::Oid>,
    /// The commit the plan was read from, and how to name it ("origin/main", "HEAD").
    pub planned_from: Option<(git2::Oid, String)>,
}

/// Finds the repository and the base: fetched from the remote in a real run; in a dry run
/// the local `origin/<base>` or `HEAD`, never the network. `pr` plans against this commit,
/// not the work tree (see [`crate::load::Tree::Git`]).
pub fn prepare(
    settings: &Settings,
    options: &PrOptions,
) -> Result<(Option<GitRepo>, Base), PrError> {
    if !options.dry_run && options.token.is_none() {
        return Err(PrError::Setup(
            "keyroll pr needs a token (--token or GITHUB_TOKEN) or a GitHub App (--app-id and --app-private-key); --dry-run previews without one".into(),
        ));
    }
    let repo = match GitRepo::discover(&settings.root) {
        Ok(repo) => Some(repo),
        // A dry run works outside a repository too (paths then relative to keyroll.toml).
        Err(_) if options.dry_run => None,
        Err(e) => return Err(e.into()),
    };
    let Some(repo) = repo else {
        return Ok((
            None,
            Base {
                name: settings.pr.base.clone().unwrap_or_else(|| "main".into()),
                head: None,
                planned_from: None,
            },
        ));
    };
    if options.dry_run {
        let planned_from = repo.local_base(settings.pr.base.as_deref()).ok();
        let name = settings.pr.base.clone().unwrap_or_else(|| "main".into());
        return Ok((
            Some(repo),
            Base {
                name,
                head: None,
                planned_from,
            },
        ));
    }
    let url = options.remote_url.as_deref().ok_or_else(|| {
        PrError::Setup("no git remote to push to: set --remote or add an origin".into())
    })?;
    let name = match &settings.pr.base {
        Some(b) => b.clone(),
        None => repo.default_branch(url, options.token.as_ref())?,
    };
    repo.fetch(
        url,
        &name,
        &settings.pr.branch_prefix,
        options.token.as_ref(),
    )?;
    let head = repo.base_head()?;
    Ok((
        Some(repo),
        Base {
            planned_from: Some((head, format!("{name} (fetched)"))),
            name,
            head: Some(head),
        },
    ))
}

/// Everything one issuer's lifecycle needs.
struct Run<'a> {
    settings: &'a Settings,
    options: &'a PrOptions,
    github: &'a GitHub,
    repo: Option<&'a GitRepo>,
    base: &'a Base,
    now: OffsetDateTime,
}

/// Publishes the plan: for every issuer, in keyroll.toml's order, its slice of the one
/// plan as one branch, commit and pull request (created, updated, closed or left).
pub async fn publish(
    settings: &Settings,
    plan: &Plan,
    options: &PrOptions,
    repo: Option<&GitRepo>,
    base: &Base,
    now: OffsetDateTime,
) -> Result<PrReport, PrError> {
    let github = GitHub::new(
        &options.api_url,
        options.token.clone(),
        options.dry_run,
        options.retry.clone(),
    );
    let run = Run {
        settings,
        options,
        github: &github,
        repo,
        base,
        now,
    };
    let mut outcomes = Vec::new();
    for issuer in &settings.issuers {
        let slice = plan.for_issuer(&issuer.name);
        let errors = plan
            .errors
            .iter()
            .filter(|e| {
                e.file()
                    .is_some_and(|f| file_names_issuer(settings, plan, f, &issuer.name))
            })
            .count();
        let mut outcome =
            run.issuer(&issuer.name, &slice)
                .await
                .unwrap_or_else(|e| IssuerOutcome {
                    issuer: issuer.name.clone(),
                    operation: Operation::Failed,
                    number: None,
                    url: None,
                    branch: branch_name(settings, &issuer.name),
                    head_sha: None,
                    detail: Some(e.to_string()),
                    keys: Vec::new(),
                    errors: 0,
                    proposal: None,
                });
        outcome.errors = errors;
        outcomes.push(outcome);
    }
    Ok(PrReport {
        dry_run: options.dry_run,
        repository: options.repository.to_string(),
        base: base.name.clone(),
        planned_from: base
            .planned_from
            .as_ref()
            .map(|(id, label)| format!("{label} {id}")),
        outcomes,
        api_calls: github.calls(),
    })
}

/// Whether a file named in a plan error is one whose targets name `issuer`.
fn file_names_issuer(settings: &Settings, _plan: &Plan, file: &str, issuer: &str) -> bool {
    settings.targets.iter().any(|t| {
        t.issuers.iter().any(|i| i == issuer)
            && t.files.iter().any(|g| {
                globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .case_insensitive(true)
                    .build()
                    .is_ok_and(|g| g.compile_matcher().is_match(file))
            })
    })
}

/// A short fingerprint of what a slice proposes: which key goes where, and which keys the
/// issuer publishes. Timestamps stay out, so the same proposal has the same key set.
fn keyset(slice: &IssuerSlice<'_>) -> String {
    let mut lines = BTreeSet::new();
    for file in &slice.files {
        for change in &file.changes {
            lines.insert(format!(
                "{}\t{}\t{}",
                file.plan.display,
                change.kind.as_str(),
                change.thumbprint.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
    }
    if let Some(report) = slice.report {
        for key in report.keys.iter().filter(|k| k.published) {
            lines.insert(format!("published\t{}", key.sha1));
        }
        for key in report.keys.iter().filter(|k| k.missing_since.is_some()) {
            lines.insert(format!("missing\t{}", key.sha1));
        }
    }
    let digest = sha2::Sha256::digest(lines.into_iter().collect::<Vec<_>>().join("\n"));
    hex::encode(&digest[..8])
}

/// The open and earlier pull requests of keyroll's branch for an issuer.
struct Found {
    open: Option<PullRequest>,
    pulls: Vec<PullRequest>,
}

impl Run<'_> {
    fn outcome(&self, issuer: &str) -> IssuerOutcome {
        IssuerOutcome {
            issuer: issuer.to_string(),
            operation: Operation::None,
            number: None,
            url: None,
            branch: branch_name(self.settings, issuer),
            head_sha: None,
            detail: None,
            keys: Vec::new(),
            errors: 0,
            proposal: None,
        }
    }

    async fn find(&self, branch: &str) -> Result<Found, PrError> {
        let pulls = self
            .github
            .pulls_for_branch(&self.options.repository, branch)
            .await?;
        let open = pulls.iter().find(|p| p.is_open()).cloned();
        Ok(Found { open, pulls })
    }

    /// The files of the commit, named as git names them, with their exact new bytes.
    fn shown_files<'s>(
        &self,
        slice: &'s IssuerSlice<'_>,
    ) -> Result<(Vec<ShownFile<'s>>, Option<(String, Vec<u8>)>), PrError> {
        let name_of = |display: &str| -> Result<String, PrError> {
            match self.repo {
                Some(r) => r
                    .relative(&self.settings.root.join(display))
                    .ok_or_else(|| {
                        PrError::Setup(format!("{display} is outside the git repository"))
                    }),
                None => Ok(display.to_string()),
            }
        };
        let mut files = Vec::new();
        for file in &slice.files {
            files.push(ShownFile {
                name: name_of(&file.plan.display)?,
                before: &file.plan.before,
                after: &file.after,
                changes: file.changes.clone(),
            });
        }
        let lock = if slice.lock_changed() {
            Some((
                name_of(crate::lock::FILE_NAME)?,
                slice.lock_after.to_toml().into_bytes(),
            ))
        } else {
            None
        };
        Ok((files, lock))
    }

    async fn issuer(
        &self,
        issuer: &str,
        slice: &IssuerSlice<'_>,
    ) -> Result<IssuerOutcome, PrError> {
        let mut outcome = self.outcome(issuer);
        let branch = outcome.branch.clone();
        if !slice.errors.is_empty() {
            // A failed source must never read as "nothing to do": the open PR stays as it is.
            outcome.operation = Operation::Failed;
            outcome.detail = Some(
                slice
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            return Ok(outcome);
        }
        let report = slice
            .report
            .cloned()
            .ok_or_else(|| PrError::Setup(format!("no report for issuer {issuer}")))?;
        outcome.keys = report.keys.clone();
        let found = self.find(&branch).await?;
        if !slice.has_changes() {
            return self.close_if_open(issuer, &branch, found, outcome).await;
        }
        let (files, lock) = self.shown_files(slice)?;
        let keyset = keyset(slice);
        let proposal = self.proposal(&report, slice, &files, lock.as_ref(), &keyset);
        outcome.proposal = Some(proposal.clone());

        if let Some(closed) = found
            .open
            .is_none()
            .then(|| {
                found.pulls.iter().find(|p| {
                    p.merged_at.is_none()
                        && Marker::find(p.body.as_deref().unwrap_or(""))
                            .is_some_and(|m| m.keyset == keyset)
                })
            })
            .flatten()
        {
            outcome.operation = Operation::SkippedClosed;
            outcome.number = Some(closed.number);
            outcome.url = Some(closed.html_url.clone());
            outcome.detail = Some(format!(
                "pull request #{} proposed this same key set and was closed without merging; keyroll does not reopen it",
                closed.number
            ));
            return Ok(outcome);
        }

        let mut commit_files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|f| (f.name.clone(), f.after.to_vec()))
            .collect();
        commit_files.extend(lock);
        let mut pushed = false;
        if let (Some(repo), Some(base_head)) = (self.repo, self.base.head) {
            let remote_head = repo.remote_branch(&branch, &self.settings.pr.branch_prefix);
            if let Some(head) = remote_head
                && !branch_is_keyrolls(repo, self.settings, &branch, base_head)?
            {
                return self
                    .leave_human_branch(
                        issuer, &report, &files, &branch, head, found, &keyset, outcome,
                    )
                    .await;
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
                    name: self.settings.pr.author_name.clone(),
                    email: self.settings.pr.author_email.clone(),
                };
                let commit = repo.commit_files(
                    base_head,
                    &commit_files,
                    &proposal.commit_message,
                    &identity,
                    self.now,
                )?;
                let url = self.options.remote_url.as_deref().ok_or_else(|| {
                    PrError::Setup("no git remote to push to: set --remote or add an origin".into())
                })?;
                repo.push(url, &branch, commit, self.options.token.as_ref())?;
                pushed = true;
                outcome.head_sha = Some(commit.to_string());
            }
        }
        match found.open {
            Some(open) => self.update(open, &proposal, &keyset, pushed, outcome).await,
            None => self.create(&branch, &proposal, outcome).await,
        }
    }

    fn proposal(
        &self,
        report: &crate::plan::IssuerReport,
        slice: &IssuerSlice<'_>,
        files: &[ShownFile<'_>],
        lock: Option<&(String, Vec<u8>)>,
        keyset: &str,
    ) -> Proposal {
        let changes = slice
            .files
            .iter()
            .flat_map(|f| {
                f.changes.iter().map(|c| ProposedChange {
                    file: f.plan.display.clone(),
                    action: c.kind,
                    line: c.line,
                    thumbprint: c.thumbprint,
                })
            })
            .collect();
        let title = crate::report::title(report);
        let marker = Marker {
            issuer: report.name.clone(),
            keyset: keyset.to_string(),
            notified: None,
        };
        let body = crate::report::pr_body(
            report,
            files,
            lock.map(|(name, _)| name.as_str()),
            &marker.render(),
            self.options.body_limit,
        );
        let names: Vec<String> = files
            .iter()
            .map(|f| f.name.clone())
            .chain(lock.map(|(n, _)| n.clone()))
            .collect();
        let commit_message = format!(
            "{title}\n\n{}\n\n{}\nKeyroll-Issuer: {}\nKeyroll-Keyset: {keyset}\n",
            crate::report::pr_summary(report),
            names.iter().map(|n| format!("- {n}\n")).collect::<String>(),
            report.name
        );
        Proposal {
            title,
            commit_message,
            body,
            files: names,
            keyset: keyset.to_string(),
            changes,
        }
    }

    async fn close_if_open(
        &self,
        issuer: &str,
        branch: &str,
        found: Found,
        mut outcome: IssuerOutcome,
    ) -> Result<IssuerOutcome, PrError> {
        let Some(open) = found.open else {
            return Ok(outcome);
        };
        let owned = match (self.repo, self.base.head) {
            (Some(r), Some(base_head)) => branch_is_keyrolls(r, self.settings, branch, base_head)?,
            _ => true,
        };
        let repo = &self.options.repository;
        self.github
            .comment(
                repo,
                open.number,
                &format!(
                    "keyroll closes this pull request: the configs already trust what **{issuer}** publishes (fixed by hand, or the metadata rolled back), so nothing is left to change.{}",
                    if owned { "" } else { " The branch has commits keyroll did not make, so it is kept." }
                ),
            )
            .await?;
        self.github.close_pull(repo, open.number).await?;
        if owned {
            self.github.delete_branch(repo, branch).await?;
        }
        outcome.operation = Operation::Closed;
        outcome.number = Some(open.number);
        outcome.url = Some(open.html_url.clone());
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    async fn leave_human_branch(
        &self,
        issuer: &str,
        report: &crate::plan::IssuerReport,
        files: &[ShownFile<'_>],
        branch: &str,
        head: git2::Oid,
        found: Found,
        keyset: &str,
        mut outcome: IssuerOutcome,
    ) -> Result<IssuerOutcome, PrError> {
        outcome.operation = Operation::SkippedHuman;
        outcome.head_sha = Some(head.to_string());
        outcome.detail = Some(format!(
            "{branch} has commits keyroll did not make; left alone"
        ));
        let Some(open) = found.open else {
            return Ok(outcome);
        };
        outcome.number = Some(open.number);
        outcome.url = Some(open.html_url.clone());
        let previous = Marker::find(open.body.as_deref().unwrap_or("")).unwrap_or_default();
        if previous.notified.as_deref() == Some(keyset) {
            return Ok(outcome);
        }
        let repo = &self.options.repository;
        self.github
            .comment(
                repo,
                open.number,
                &crate::report::human_branch_comment(report, files, branch),
            )
            .await?;
        let mut noted = previous.clone();
        noted.issuer = issuer.to_string();
        noted.notified = Some(keyset.to_string());
        if noted.keyset.is_empty() {
            noted.keyset = keyset.to_string();
        }
        let old_body = open.body.clone().unwrap_or_default();
        let new_body = match old_body.rfind(MARKER_START) {
            Some(at) => format!("{}{}", &old_body[..at], noted.render()),
            None => format!("{old_body}\n\n{}", noted.render()),
        };
        self.github
            .update_pull(repo, open.number, &open.title, &new_body)
            .await?;
        Ok(outcome)
    }

    async fn update(
        &self,
        open: PullRequest,
        proposal: &Proposal,
        keyset: &str,
        pushed: bool,
        mut outcome: IssuerOutcome,
    ) -> Result<IssuerOutcome, PrError> {
        outcome.number = Some(open.number);
        outcome.url = Some(open.html_url.clone());
        let same_marker =
            Marker::find(open.body.as_deref().unwrap_or("")).is_some_and(|m| m.keyset == keyset);
        if pushed || !same_marker || open.title != proposal.title {
            self.github
                .update_pull(
                    &self.options.repository,
                    open.number,
                    &proposal.title,
                    &proposal.body,
                )
                .await?;
            outcome.operation = Operation::Updated;
        }
        if outcome.head_sha.is_none() {
            outcome.head_sha = Some(open.head.sha.clone());
        }
        Ok(outcome)
    }

    async fn create(
        &self,
        branch: &str,
        proposal: &Proposal,
        mut outcome: IssuerOutcome,
    ) -> Result<IssuerOutcome, PrError> {
        let repo = &self.options.repository;
        let new = NewPull {
            title: &proposal.title,
            body: &proposal.body,
            branch,
            base: &self.base.name,
            draft: self.settings.pr.draft,
        };
        match self.github.create_pull(repo, &new).await {
            Ok(created) => {
                outcome.operation = Operation::Created;
                if let Some(pr) = created {
                    outcome.number = Some(pr.number);
                    outcome.url = Some(pr.html_url.clone());
                    outcome.head_sha = outcome.head_sha.or(Some(pr.head.sha.clone()));
                    decorate(self.settings, self.github, repo, Some(pr.number)).await?;
                } else {
                    // Dry run: show the calls a new PR would need.
                    decorate(self.settings, self.github, repo, None).await?;
                }
            }
            Err(e) if is_already_exists(&e) => {
                // Opened meanwhile (another run, or a listing that lagged): update it.
                let existing = self
                    .github
                    .pulls_for_branch(repo, branch)
                    .await?
                    .into_iter()
                    .find(PullRequest::is_open)
                    .ok_or(e)?;
                self.github
                    .update_pull(repo, existing.number, &proposal.title, &proposal.body)
                    .await?;
                outcome.operation = Operation::Updated;
                outcome.number = Some(existing.number);
                outcome.url = Some(existing.html_url.clone());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(outcome)
    }
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
