//! `keyroll onboard`: one pull request that adds a keyroll.toml (and keyroll.lock), written
//! by `init` ([`crate::act::init::prepare`]), to a repository that has WIF configs but none yet —
//! the repositories `keyroll discover --onboarding` lists.
//!
//! The files are made from the base commit the pull request targets, not a work tree: the
//! base's config files (those a dialect rule applies to) are copied to a temporary folder,
//! `init` reads them and the issuers' metadata (a snapshot in an organisation run), and its
//! keyroll.toml and keyroll.lock are committed onto the base on one branch,
//! `keyroll/onboarding`.
//!
//! Idempotent, like `keyroll pr`: the commit carries `Keyroll-Onboarding: <digest>` (of the
//! two files, the lock's first-seen times left out), so a re-run with the same result pushes
//! nothing and leaves the open pull request as it is; a changed result updates the same
//! pull request. A pull request from the branch that a person closed without merging means
//! "not this repository": keyroll does not reopen it nor open another. A branch with commits
//! keyroll did not make is left alone. A base that already holds keyroll.toml needs nothing.

use std::path::Path;

use serde::Serialize;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::act::git::Identity;
use crate::act::github::{
    ApiCall, GitHub, GitHubError, NewPull, PullRequest, RepoName, RetryPolicy,
};
use crate::load::fetch::Fetcher;
use crate::load::git::{GitError, GitRepo};
use crate::model::rules::RuleSet;
use crate::model::secret::Secret;

/// The branch of the onboarding pull request.
pub const BRANCH: &str = "keyroll/onboarding";
/// The branch namespace fetched with the base (keyroll's, as `keyroll pr` uses).
const BRANCH_PREFIX: &str = "keyroll/";
const TRAILER: &str = "Keyroll-Onboarding:";
/// The hidden marker at the end of the pull request's body.
pub const MARKER: &str = "<!-- keyroll-onboarding -->";

#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Init(#[from] crate::act::init::InitError),
    #[error("{0}")]
    Setup(String),
}

pub struct OnboardOptions {
    pub dry_run: bool,
    pub repository: RepoName,
    pub api_url: String,
    /// Where to fetch and push (a real run needs it).
    pub remote_url: Option<String>,
    pub token: Option<Secret>,
    pub retry: RetryPolicy,
    /// The branch the pull request targets (default: the remote's default branch; in a dry
    /// run `main`).
    pub base: Option<String>,
    /// Where keyroll.toml goes in the repository (its folder is what `init` scans).
    pub config_path: String,
    /// The issuers' metadata: URLs (a local path would mean nothing in the repository).
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Created,
    Updated,
    /// The open pull request already proposes these files.
    None,
    /// The base already holds keyroll.toml: nothing to onboard.
    AlreadyOnboarded,
    /// A person closed an onboarding pull request without merging it: not reopened, no new one.
    SkippedClosed,
    /// The branch has commits keyroll did not make: left alone.
    SkippedHuman,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnboardReport {
    pub dry_run: bool,
    pub repository: String,
    pub base: String,
    /// The commit the files were made from ("main (fetched) <sha>").
    pub planned_from: Option<String>,
    pub branch: String,
    pub operation: Operation,
    pub number: Option<u64>,
    pub url: Option<String>,
    pub head_sha: Option<String>,
    pub detail: Option<String>,
    /// Where keyroll.toml goes, and its text (absent when already onboarded).
    pub config_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// The issuers written, and the trusted thumbprints init matched / could not match.
    pub issuers: Vec<String>,
    pub matched: Vec<String>,
    pub unmatched: Vec<String>,
    pub api_calls: Vec<ApiCall>,
}

impl OnboardReport {
    /// One line per fact; every field from outside (the repository's configs, the API) is
    /// escaped onto its line ([`printable`]), so none starts a line of its own.
    pub fn to_text(&self) -> String {
        use crate::render::sanitize::printable;
        let mut out = format!(
            "{}: {} ({})",
            printable(&self.repository),
            serde_json::to_value(self.operation)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            printable(&self.branch)
        );
        if let Some(url) = &self.url {
            out.push_str(&format!(" {}", printable(url)));
        }
        out.push('\n');
        if let Some(detail) = &self.detail {
            out.push_str(&format!("  {}\n", printable(detail)));
        }
        for issuer in &self.issuers {
            out.push_str(&format!("  issuer    {}\n", printable(issuer)));
        }
        for line in &self.matched {
            out.push_str(&format!("  matched   {}\n", printable(line)));
        }
        for line in &self.unmatched {
            out.push_str(&format!("  unmatched {}\n", printable(line)));
        }
        if self.dry_run {
            for call in &self.api_calls {
                out.push_str(&format!(
                    "  {} {} {}\n",
                    if call.sent { "sent" } else { "would send" },
                    call.method,
                    call.path
                ));
            }
        }
        out
    }
}

/// The digest a commit's trailer carries: keyroll.toml and keyroll.lock, without the lock's
/// `first_seen` (the run's clock) so that the same proposal has the same digest.
fn digest(settings: &str, lock: &str) -> String {
    let lock: String = lock
        .lines()
        .filter(|l| !l.trim_start().starts_with("first_seen"))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = sha2::Sha256::digest(format!("{settings}\u{0}{lock}"));
    hex::encode(&d[..8])
}

fn identity() -> Identity {
    let pr = crate::model::settings::PrSettings::default();
    Identity {
        name: pr.author_name,
        email: pr.author_email,
    }
}

/// Writes the base's config files under `prefix` (those a rule applies to; links skipped)
/// into `dir`, where `init` reads them as it would a checkout.
fn export_configs(
    repo: &GitRepo,
    commit: git2::Oid,
    prefix: &str,
    rules: &RuleSet,
    dir: &Path,
) -> Result<(), OnboardError> {
    for (path, is_link) in repo.list_files(commit, prefix)? {
        let name = path.rsplit('/').next().unwrap_or(&path);
        if is_link || !rules.applies_to_file(name) {
            continue;
        }
        let full = crate::load::in_prefix(prefix, &path);
        let Some(bytes) = repo.blob_at(commit, &full)? else {
            continue;
        };
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| OnboardError::Setup(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&target, bytes)
            .map_err(|e| OnboardError::Setup(format!("{}: {e}", target.display())))?;
    }
    Ok(())
}

/// Opens, updates or leaves the one onboarding pull request of `options.repository`.
/// `repo` is a clone of it (the work tree is not read; the base is fetched into it).
/// Three stages: [`read`] the base, [`draft`] the files from it, [`publish`] them.
pub async fn onboard(
    repo: &GitRepo,
    options: &OnboardOptions,
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
) -> Result<OnboardReport, OnboardError> {
    let target = read(repo, options)?;
    let github = GitHub::new(
        &options.api_url,
        options.token.clone(),
        options.dry_run,
        options.retry.clone(),
    );
    let mut report = OnboardReport {
        dry_run: options.dry_run,
        repository: options.repository.to_string(),
        base: target.base.clone(),
        planned_from: Some(format!("{} {}", target.from_label, target.from)),
        branch: BRANCH.into(),
        operation: Operation::None,
        number: None,
        url: None,
        head_sha: None,
        detail: None,
        config_path: target.config_path.clone(),
        settings: None,
        issuers: Vec::new(),
        matched: Vec::new(),
        unmatched: Vec::new(),
        api_calls: Vec::new(),
    };
    if repo.blob_at(target.from, &target.config_path)?.is_some() {
        report.operation = Operation::AlreadyOnboarded;
        report.detail = Some(format!(
            "{} already holds {}",
            target.base, target.config_path
        ));
        return Ok(report);
    }

    let draft = draft(repo, options, rules, fetcher, now, &target).await?;
    let summary = &draft.rendered.summary;
    report.issuers = summary
        .issuers
        .iter()
        .map(|i| format!("{} from {}", i.name, i.metadata))
        .collect();
    report.matched = summary.matched.clone();
    report.unmatched = summary.unmatched.clone();
    report.settings = Some(draft.rendered.settings.clone());

    publish(repo, options, &github, &target, &draft, now, &mut report).await?;
    report.api_calls = github.calls();
    Ok(report)
}

/// Where the files go, and the base they are made from.
struct Target {
    /// keyroll.toml's path in the repository.
    config_path: String,
    /// keyroll.lock's, beside it.
    lock_path: String,
    /// Their folder, "" at the root: what init scans.
    prefix: String,
    /// The branch the pull request targets.
    base: String,
    /// Its fetched head; `None` in a dry run, which pushes nothing.
    base_head: Option<git2::Oid>,
    /// The commit the files are made from, and how it was found ("main (fetched)").
    from: git2::Oid,
    from_label: String,
}

/// The read stage: the options checked, and the base fetched.
fn read(repo: &GitRepo, options: &OnboardOptions) -> Result<Target, OnboardError> {
    let (config_path, prefix, lock_path) = checked_paths(options)?;
    // The base: fetched in a real run; in a dry run the local origin/<base> or HEAD.
    let (base, base_head, planned_from) = if options.dry_run {
        let (commit, label) = repo.local_base(options.base.as_deref())?;
        let name = options.base.clone().unwrap_or_else(|| "main".into());
        (name, None, (commit, label))
    } else {
        let url = options.remote_url.as_deref().ok_or_else(|| {
            OnboardError::Setup("no git remote to push to: set --remote or add an origin".into())
        })?;
        let name = match &options.base {
            Some(b) => b.clone(),
            None => repo.default_branch(url, options.token.as_ref())?,
        };
        repo.fetch(url, &name, BRANCH_PREFIX, options.token.as_ref())?;
        let head = repo.base_head()?;
        let label = format!("{name} (fetched)");
        (name, Some(head), (head, label))
    };
    Ok(Target {
        config_path,
        lock_path,
        prefix,
        base,
        base_head,
        from: planned_from.0,
        from_label: planned_from.1,
    })
}

/// The token, the sources and the config path checked: (config path, its folder, lock path).
fn checked_paths(options: &OnboardOptions) -> Result<(String, String, String), OnboardError> {
    if !options.dry_run && options.token.is_none() {
        return Err(OnboardError::Setup(
            "keyroll onboard needs a token (--token or GITHUB_TOKEN; contents: write, pull-requests: write); --dry-run previews without one".into(),
        ));
    }
    if options.sources.is_empty() {
        return Err(OnboardError::Setup(
            "no issuer metadata: give --metadata URL, or --snapshot DIR (every source it holds)"
                .into(),
        ));
    }
    if let Some(local) = options
        .sources
        .iter()
        .find(|s| !crate::load::metadata::is_url(s))
    {
        return Err(OnboardError::Setup(format!(
            "--metadata {local:?} is not a URL: the keyroll.toml onboarding writes lives in another repository, where a local path means nothing"
        )));
    }
    let config_path = options.config_path.trim_start_matches("./").to_string();
    let (prefix, file) = match config_path.rsplit_once('/') {
        Some((prefix, file)) => (prefix.to_string(), file),
        None => (String::new(), config_path.as_str()),
    };
    if file != crate::model::settings::FILE_NAME
        || config_path.starts_with('/')
        || prefix.split('/').any(|p| p == "..")
    {
        return Err(OnboardError::Setup(format!(
            "--config-path {config_path:?} must be a relative path ending in {}",
            crate::model::settings::FILE_NAME
        )));
    }
    let lock_path = if prefix.is_empty() {
        crate::model::lock::FILE_NAME.to_string()
    } else {
        format!("{prefix}/{}", crate::model::lock::FILE_NAME)
    };
    Ok((config_path, prefix, lock_path))
}

/// What init proposes, and the pull request's words for it.
struct Draft {
    rendered: crate::act::init::Rendered,
    digest: String,
    title: String,
    body: String,
}

/// The draft stage: init run over the base's configs, copied to a scratch folder.
async fn draft(
    repo: &GitRepo,
    options: &OnboardOptions,
    rules: &RuleSet,
    fetcher: &Fetcher,
    now: OffsetDateTime,
    target: &Target,
) -> Result<Draft, OnboardError> {
    let prefix = &target.prefix;
    let scratch =
        tempfile::tempdir().map_err(|e| OnboardError::Setup(format!("a temporary folder: {e}")))?;
    export_configs(repo, target.from, prefix, rules, scratch.path())?;
    let rendered =
        crate::act::init::prepare(scratch.path(), &options.sources, rules, fetcher, now, true)
            .await?;
    let summary = &rendered.summary;
    if summary.matched.is_empty() && summary.unmatched.is_empty() {
        return Err(OnboardError::Setup(format!(
            "{} holds no trusted thumbprint the rules recognise under {}: nothing to onboard",
            options.repository,
            if prefix.is_empty() {
                "its root"
            } else {
                prefix
            }
        )));
    }
    let digest = digest(&rendered.settings, &rendered.lock);
    let title = "keyroll: track the identity provider's signing keys".to_string();
    let body = pr_body(&target.config_path, &target.lock_path, summary, &digest);
    Ok(Draft {
        rendered,
        digest,
        title,
        body,
    })
}

/// The publish stage: the pull request left alone when a person closed one; else the branch
/// pushed (a real run) and the pull request opened or updated. Fills in `report`.
async fn publish(
    repo: &GitRepo,
    options: &OnboardOptions,
    github: &GitHub,
    target: &Target,
    draft: &Draft,
    now: OffsetDateTime,
    report: &mut OnboardReport,
) -> Result<(), OnboardError> {
    let pulls = github.pulls_for_branch(&options.repository, BRANCH).await?;
    let open = pulls.iter().find(|p| p.is_open()).cloned();
    if open.is_none()
        && let Some(closed) = pulls.iter().find(|p| !p.is_open() && p.merged_at.is_none())
    {
        report.operation = Operation::SkippedClosed;
        report.number = Some(closed.number);
        report.url = Some(closed.html_url.clone());
        report.detail = Some(format!(
            "onboarding pull request #{} was closed without merging; keyroll does not reopen it nor open another (reopen it to have keyroll update it)",
            closed.number
        ));
        return Ok(());
    }

    let pushed = match push_branch(repo, options, target, draft, now)? {
        Branch::Untouched => false,
        Branch::Human(head) => {
            report.operation = Operation::SkippedHuman;
            report.head_sha = Some(head.to_string());
            report.number = open.as_ref().map(|p| p.number);
            report.url = open.as_ref().map(|p| p.html_url.clone());
            report.detail = Some(format!(
                "{BRANCH} has commits keyroll did not make; left alone"
            ));
            return Ok(());
        }
        Branch::UpToDate(head) => {
            report.head_sha = Some(head.to_string());
            false
        }
        Branch::Pushed(commit) => {
            report.head_sha = Some(commit.to_string());
            true
        }
    };
    open_or_update(github, options, target, draft, open, pushed, report).await
}

/// The onboarding branch, after [`push_branch`].
enum Branch {
    /// A dry run: nothing fetched, nothing pushed.
    Untouched,
    /// It has commits keyroll did not make (its head): left alone.
    Human(git2::Oid),
    /// It already is the one commit carrying this digest (its head).
    UpToDate(git2::Oid),
    /// This commit was pushed to it.
    Pushed(git2::Oid),
}

/// Commits the files onto the fetched base and pushes them to [`BRANCH`], unless the branch
/// already holds them or holds a person's commits.
fn push_branch(
    repo: &GitRepo,
    options: &OnboardOptions,
    target: &Target,
    draft: &Draft,
    now: OffsetDateTime,
) -> Result<Branch, OnboardError> {
    let Some(base_head) = target.base_head else {
        return Ok(Branch::Untouched);
    };
    let remote_head = repo.remote_branch(BRANCH, BRANCH_PREFIX);
    let email = identity().email;
    if let Some(head) = remote_head
        && !repo
            .commits_between(head, base_head)?
            .iter()
            .all(|c| c.author_email == email && c.committer_email == email)
    {
        return Ok(Branch::Human(head));
    }
    let (title, digest) = (&draft.title, &draft.digest);
    if let Some(head) = remote_head
        && repo.is_one_commit_with(head, base_head, &format!("{TRAILER} {digest}"))?
    {
        return Ok(Branch::UpToDate(head));
    }
    let (config_path, lock_path, base) = (&target.config_path, &target.lock_path, &target.base);
    let message = format!(
        "{title}\n\nAdds {config_path} and {lock_path}, written by `keyroll init` from the configs on {base}.\n\n{TRAILER} {digest}\n"
    );
    let commit = repo.commit_files(
        base_head,
        &[
            (
                config_path.clone(),
                draft.rendered.settings.clone().into_bytes(),
            ),
            (lock_path.clone(), draft.rendered.lock.clone().into_bytes()),
        ],
        &message,
        &identity(),
        now,
    )?;
    let url = options
        .remote_url
        .as_deref()
        .expect("a real run has a remote (checked above)");
    repo.push(url, BRANCH, commit, remote_head, options.token.as_ref())?;
    Ok(Branch::Pushed(commit))
}

/// Updates the open pull request when its words or its branch changed, else opens one.
async fn open_or_update(
    github: &GitHub,
    options: &OnboardOptions,
    target: &Target,
    draft: &Draft,
    open: Option<PullRequest>,
    pushed: bool,
    report: &mut OnboardReport,
) -> Result<(), OnboardError> {
    let (title, body) = (&draft.title, &draft.body);
    match open {
        Some(open) => {
            report.number = Some(open.number);
            report.url = Some(open.html_url.clone());
            if pushed || open.title != *title || open.body.as_deref() != Some(body.as_str()) {
                github
                    .update_pull(&options.repository, open.number, title, body)
                    .await?;
                report.operation = Operation::Updated;
            }
            if report.head_sha.is_none() {
                report.head_sha = Some(open.head.sha.clone());
            }
        }
        None => {
            let new = NewPull {
                title,
                body,
                branch: BRANCH,
                base: &target.base,
                draft: false,
            };
            match github.create_pull(&options.repository, &new).await {
                Ok(created) => {
                    report.operation = Operation::Created;
                    if let Some(pr) = created {
                        report.number = Some(pr.number);
                        report.url = Some(pr.html_url.clone());
                    }
                }
                // Opened meanwhile (another run, or a listing that lagged): that one is it.
                Err(e) if is_already_exists(&e) => {
                    let existing = github
                        .pulls_for_branch(&options.repository, BRANCH)
                        .await?
                        .into_iter()
                        .find(PullRequest::is_open)
                        .ok_or(e)?;
                    github
                        .update_pull(&options.repository, existing.number, title, body)
                        .await?;
                    report.operation = Operation::Updated;
                    report.number = Some(existing.number);
                    report.url = Some(existing.html_url.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn is_already_exists(e: &GitHubError) -> bool {
    matches!(e, GitHubError::Status { status: 422, message, .. } if message.contains("already exists"))
}

/// The pull request's body: what init found, for the reviewer to check before merging.
fn pr_body(
    config_path: &str,
    lock_path: &str,
    summary: &crate::act::init::InitSummary,
    digest: &str,
) -> String {
    use crate::render::sanitize::one_line;
    let code = |s: &str| format!("`{}`", one_line(s).replace('`', "'"));
    let mut body = format!(
        "This repository trusts an identity provider's signing keys in its configs. keyroll \
         keeps such thumbprints in step with the provider's metadata, through pull requests \
         like this one.\n\nThis pull request adds {} and {}, written by `keyroll init` from the \
         configs on the base branch. Review the issuers and targets below; once merged, the \
         organisation's keyroll run picks this repository up.\n\n### Issuers\n",
        code(config_path),
        code(lock_path)
    );
    for issuer in &summary.issuers {
        body.push_str(&format!(
            "- {} from {} — trusted by {}\n",
            code(&issuer.name),
            code(&issuer.metadata),
            if issuer.trusted_by.is_empty() {
                "no config yet (fill in the commented `[[target]]`)".to_string()
            } else {
                issuer
                    .trusted_by
                    .iter()
                    .map(|f| code(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    if !summary.unmatched.is_empty() {
        body.push_str("\n### Trusted thumbprints no given metadata publishes\n");
        for line in &summary.unmatched {
            body.push_str(&format!("- {}\n", code(line)));
        }
        body.push_str("\n(stale keys, or another issuer's: check before merging)\n");
    }
    body.push_str(&format!(
        "\nClose this pull request without merging to keep keyroll out of this repository: it is not reopened.\n\n{MARKER}\n<!-- keyroll-onboarding-digest: {digest} -->\n"
    ));
    body
}
