//! One issuer's pull request lifecycle, as small steps: find keyroll's PR for the branch;
//! close it when the slice holds nothing; leave it when a person closed the same key set or
//! pushed to the branch; else build the commit, push, and create or update the PR.

use git2::Oid;

use super::{
    Base, IssuerOutcome, MARKER_START, Marker, Operation, PrError, PrOptions, Proposal,
    ProposedChange, branch_name, keyset,
};
use crate::act::git::Identity;
use crate::act::github::{GitHub, GitHubError, NewPull, PullRequest, RepoName};
use crate::decide::plan::IssuerSlice;
use crate::load::git::{GitError, GitRepo};
use crate::model::settings::Settings;
use crate::render::ShownFile;
use time::OffsetDateTime;

/// The open and earlier pull requests of keyroll's branch for an issuer.
struct Found {
    open: Option<PullRequest>,
    pulls: Vec<PullRequest>,
}

/// A file as git names it, with its bytes.
type NamedBytes = (String, Vec<u8>);

/// Everything one issuer's lifecycle needs.
pub(super) struct Run<'a> {
    pub settings: &'a Settings,
    pub options: &'a PrOptions,
    pub github: &'a GitHub,
    pub repo: Option<&'a GitRepo>,
    pub base: &'a Base,
    pub now: OffsetDateTime,
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
    ) -> Result<(Vec<ShownFile<'s>>, Option<NamedBytes>), PrError> {
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
        // A table's migration is a new file in the same commit.
        for db in &slice.databases {
            files.push(ShownFile {
                name: name_of(&db.migration.display)?,
                before: &[],
                after: db.migration.text.as_bytes(),
                changes: Vec::new(),
            });
        }
        let lock = if slice.lock_changed() {
            Some((
                name_of(crate::model::lock::FILE_NAME)?,
                slice.lock_after.to_toml().into_bytes(),
            ))
        } else {
            None
        };
        Ok((files, lock))
    }

    pub(super) async fn issuer(
        &self,
        issuer: &str,
        slice: &IssuerSlice<'_>,
    ) -> Result<IssuerOutcome, PrError> {
        let mut outcome = self.outcome(issuer);
        let branch = outcome.branch.clone();
        if !slice.errors.is_empty() {
            return Ok(failed(outcome, &slice.errors));
        }
        let report = slice
            .report
            .cloned()
            .ok_or_else(|| PrError::Setup(format!("no report for issuer {issuer}")))?;
        outcome.keys = report.keys.clone();
        let found = self.find(&branch).await?;
        // A file of the issuer that could not be decided (malformed, a lockout refused) says
        // nothing about whether its keys are trusted: an open pull request is left as it is
        // (closing it, or rewriting it without that file's change, would drop the key it
        // adds), and the run fails for the issuer naming the file.
        if !slice.file_errors.is_empty() && (found.open.is_some() || !slice.has_changes()) {
            let mut outcome = failed(outcome, &slice.file_errors);
            outcome.number = found.open.as_ref().map(|p| p.number);
            outcome.url = found.open.as_ref().map(|p| p.html_url.clone());
            return Ok(outcome);
        }
        if !slice.has_changes() {
            return self.close_if_open(issuer, &branch, found, outcome).await;
        }
        let (files, lock) = self.shown_files(slice)?;
        let keyset = keyset(slice);
        let proposal = self.proposal(&report, slice, &files, lock.as_ref(), &keyset);
        outcome.proposal = Some(proposal.clone());

        if let Some(closed) = closed_with_keyset(&found, &keyset) {
            outcome.operation = Operation::SkippedClosed;
            outcome.number = Some(closed.number);
            outcome.url = Some(closed.html_url.clone());
            outcome.detail = Some(format!(
                "pull request #{} proposed this same key set and was closed without merging; keyroll does not reopen it",
                closed.number
            ));
            return Ok(outcome);
        }

        let commit_files = commit_files(slice, &files, lock);
        let pushed = match self
            .push_branch(&commit_files, &proposal, &keyset, &branch)
            .await?
        {
            BranchState::Untouched => false,
            BranchState::Human(head) => {
                return self
                    .leave_human_branch(
                        issuer, &report, &files, &branch, head, found, &keyset, outcome,
                    )
                    .await;
            }
            BranchState::UpToDate(head) => {
                outcome.head_sha = Some(head.to_string());
                false
            }
            BranchState::Pushed(commit) => {
                outcome.head_sha = Some(commit.to_string());
                true
            }
        };
        match found.open {
            Some(open) => self.update(open, &proposal, &keyset, pushed, outcome).await,
            None => self.create(&branch, &proposal, outcome).await,
        }
    }

    /// Commits `commit_files` onto the fetched base and pushes them to `branch`, unless the
    /// branch already is that commit or holds a person's commits.
    async fn push_branch(
        &self,
        commit_files: &[NamedBytes],
        proposal: &Proposal,
        keyset: &str,
        branch: &str,
    ) -> Result<BranchState, PrError> {
        let api = self.commits_through_api();
        let (Some(repo), Some(base_head)) = (self.repo, self.base.head) else {
            if api {
                // A dry run: the calls the commit would take, listed.
                let checked = self
                    .repo
                    .and_then(|r| r.remote_branch(branch, &self.settings.pr.branch_prefix));
                self.api_commit(
                    commit_files,
                    &proposal.commit_message,
                    branch,
                    None,
                    checked,
                )
                .await?;
            }
            return Ok(BranchState::Untouched);
        };
        let remote_head = repo.remote_branch(branch, &self.settings.pr.branch_prefix);
        if let Some(head) = remote_head
            && !branch_is_keyrolls(repo, self.settings, branch, base_head)?
        {
            return Ok(BranchState::Human(head));
        }
        if let Some(head) = remote_head
            && repo.is_one_commit_with(head, base_head, &format!("Keyroll-Keyset: {keyset}"))?
        {
            return Ok(BranchState::UpToDate(head));
        }
        if api {
            let base = Some((repo, base_head));
            let commit = self
                .api_commit(
                    commit_files,
                    &proposal.commit_message,
                    branch,
                    base,
                    remote_head,
                )
                .await?;
            return Ok(match commit {
                Some(commit) => BranchState::Pushed(commit),
                None => BranchState::Untouched,
            });
        }
        let identity = Identity {
            name: self.settings.pr.author_name.clone(),
            email: self.settings.pr.author_email.clone(),
        };
        let commit = repo.commit_files(
            base_head,
            commit_files,
            &proposal.commit_message,
            &identity,
            self.now,
        )?;
        let url = self.options.remote_url.as_deref().ok_or_else(|| {
            PrError::Setup("no git remote to push to: set --remote or add an origin".into())
        })?;
        repo.push(
            url,
            branch,
            commit,
            remote_head,
            self.options.token.as_ref(),
        )?;
        Ok(BranchState::Pushed(commit))
    }

    fn proposal(
        &self,
        report: &crate::decide::plan::IssuerReport,
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
        let title = crate::render::title(report);
        let marker = Marker {
            issuer: report.name.clone(),
            keyset: keyset.to_string(),
            notified: None,
            closed_by_keyroll: false,
        };
        let body = crate::render::pr_body(
            report,
            files,
            lock.map(|(name, _)| name.as_str()),
            &crate::render::databases_section(&slice.databases),
            &marker.render(),
            self.options.body_limit,
            self.now,
        );
        let names: Vec<String> = files
            .iter()
            .map(|f| f.name.clone())
            .chain(lock.map(|(n, _)| n.clone()))
            .collect();
        let commit_message = format!(
            "{title}\n\n{}\n\n{}\nKeyroll-Issuer: {}\nKeyroll-Keyset: {keyset}\n",
            crate::render::pr_summary(report),
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
        // The marker says keyroll closed it, so that the same key set coming back (the
        // metadata rolling forward again) is proposed anew, not taken for a person's "no".
        let body = open.body.as_deref().unwrap_or("");
        let closed_body = Marker::find(body).map(|mut marker| {
            marker.closed_by_keyroll = true;
            let at = body.rfind(MARKER_START).unwrap_or(body.len());
            format!("{}{}", &body[..at], marker.render())
        });
        self.github
            .close_pull(repo, open.number, closed_body.as_deref())
            .await?;
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
        report: &crate::decide::plan::IssuerReport,
        files: &[ShownFile<'_>],
        branch: &str,
        head: Oid,
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
                &crate::render::human_branch_comment(report, files, branch),
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
                // A create GitHub carried out but answered with a timeout or 5xx (the retry
                // is this 422) was never given its labels and reviewers: adding them again
                // changes nothing where they are already there.
                decorate(self.settings, self.github, repo, Some(existing.number)).await?;
                outcome.operation = Operation::Updated;
                outcome.number = Some(existing.number);
                outcome.url = Some(existing.html_url.clone());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(outcome)
    }
}

/// keyroll's branch for an issuer, after [`Run::push_branch`].
enum BranchState {
    /// No repository or no fetched base (a dry run): nothing pushed.
    Untouched,
    /// It has commits keyroll did not make (its head): left alone.
    Human(Oid),
    /// It already is the one commit carrying this key set (its head).
    UpToDate(Oid),
    /// This commit was pushed to it.
    Pushed(Oid),
}

/// A failed source (or file) must never read as "nothing to do": the open PR stays as it is.
fn failed(mut outcome: IssuerOutcome, errors: &[&crate::decide::plan::PlanError]) -> IssuerOutcome {
    outcome.operation = Operation::Failed;
    outcome.detail = Some(
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    );
    outcome
}

/// With no open pull request: the one a person closed without merging that proposed this
/// same key set.
fn closed_with_keyset<'f>(found: &'f Found, keyset: &str) -> Option<&'f PullRequest> {
    found
        .open
        .is_none()
        .then(|| {
            found.pulls.iter().find(|p| {
                p.merged_at.is_none()
                    && Marker::find(p.body.as_deref().unwrap_or(""))
                        .is_some_and(|m| m.keyset == keyset && !m.closed_by_keyroll)
            })
        })
        .flatten()
}

/// The commit's files. Committed as stored: a UTF-16 file goes back to UTF-16 with its
/// byte-order mark.
fn commit_files(
    slice: &IssuerSlice<'_>,
    files: &[ShownFile<'_>],
    lock: Option<NamedBytes>,
) -> Vec<NamedBytes> {
    let mut commit_files: Vec<(String, Vec<u8>)> = slice
        .files
        .iter()
        .zip(files)
        .map(|(f, shown)| (shown.name.clone(), f.plan.encoding.encode(&f.after)))
        .collect();
    commit_files.extend(lock);
    commit_files
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

/// Every commit on the remote branch that the base lacks was made by keyroll: with its git
/// identity, or through the API by a GitHub App with keyroll's trailer.
fn branch_is_keyrolls(
    repo: &GitRepo,
    settings: &Settings,
    branch: &str,
    base_head: Oid,
) -> Result<bool, GitError> {
    let Some(head) = repo.remote_branch(branch, &settings.pr.branch_prefix) else {
        return Ok(true);
    };
    let email = settings.pr.author_email.as_str();
    Ok(repo.commits_between(head, base_head)?.iter().all(|c| {
        (c.author_email == email && c.committer_email == email)
            || super::api_commit::is_api_commit(&c.author_email, &c.committer_email, &c.message)
    }))
}
