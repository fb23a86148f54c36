//! The git side of `keyroll pr`, with git2: fetch the base and keyroll's branches, build
//! one commit from the base's tree plus the changed files' exact bytes (no work tree, no
//! checkout, no line-ending filters), and push it. The token reaches libgit2 only through
//! the credential callback: never in a URL, never in a log.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use crate::model::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git: {what}: {detail}")]
    Git { what: String, detail: String },
    #[error("git: {0}")]
    Insecure(String),
    #[error("git: {0} is not inside a git repository")]
    NotARepository(String),
}

pub(crate) fn git_error(what: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let what = what.into();
    move |e| GitError::Git {
        what,
        detail: crate::model::secret::redact(e.message()),
    }
}

/// One commit on a branch, as far as the ownership check needs it.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub author_email: String,
    pub committer_email: String,
    pub message: String,
}

pub struct GitRepo {
    pub(crate) repo: Repository,
    workdir: PathBuf,
}

/// Where the fetched refs are kept, apart from the user's own branches.
pub const BASE_REF: &str = "refs/keyroll/base";
const REMOTE_PREFIX: &str = "refs/keyroll/remote/";
pub(crate) const PUSH_PREFIX: &str = "refs/keyroll/push/";

impl GitRepo {
    pub fn discover(path: &Path) -> Result<GitRepo, GitError> {
        let repo = Repository::discover(path)
            .map_err(|_| GitError::NotARepository(path.display().to_string()))?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError::NotARepository(path.display().to_string()))?
            .to_path_buf();
        let workdir = std::fs::canonicalize(&workdir).unwrap_or(workdir);
        Ok(GitRepo { repo, workdir })
    }

    /// `path` relative to the work tree, with `/`: how git names it in a tree.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(path)
        };
        let absolute = std::fs::canonicalize(&absolute)
            .or_else(|e| match (absolute.parent(), absolute.file_name()) {
                (Some(dir), Some(name)) => std::fs::canonicalize(dir).map(|d| d.join(name)),
                _ => Err(e),
            })
            .unwrap_or_else(|_| normalize(&absolute));
        let relative = absolute.strip_prefix(&self.workdir).ok()?;
        Some(crate::model::paths::slash_path(relative))
    }

    pub fn remote_url(&self, name: &str) -> Option<String> {
        self.repo
            .find_remote(name)
            .ok()?
            .url()
            .ok()
            .map(str::to_string)
    }

    /// An anonymous remote for `url`; with a token, only over https (or plain http to a
    /// loopback host): the token goes out as HTTP Basic auth, readable on the wire otherwise.
    pub(crate) fn open_remote(
        &self,
        url: &str,
        token: Option<&Secret>,
    ) -> Result<git2::Remote<'_>, GitError> {
        if token.is_some() && plain_http(url) {
            crate::model::secret::check_credential_transport(url, "the git remote")
                .map_err(GitError::Insecure)?;
        }
        self.repo
            .remote_anonymous(url)
            .map_err(git_error("opening the remote"))
    }

    /// The remote's default branch (what its HEAD points to).
    pub fn default_branch(&self, url: &str, token: Option<&Secret>) -> Result<String, GitError> {
        let mut remote = self.open_remote(url, token)?;
        let tries = Cell::new(0);
        let callbacks = callbacks(token, &tries);
        let connection = remote
            .connect_auth(git2::Direction::Fetch, Some(callbacks), None)
            .map_err(git_error(format!("connecting to {}", redact(url))))?;
        let head = connection
            .default_branch()
            .map_err(git_error("reading the remote's default branch"))?;
        let head = head.as_str().unwrap_or_default();
        Ok(head.trim_start_matches("refs/heads/").to_string())
    }

    /// Fetches `base` into [`BASE_REF`] and every `branch_prefix*` branch into keyroll's
    /// own namespace (stale copies are dropped first, so a deleted branch is gone here too).
    pub fn fetch(
        &self,
        url: &str,
        base: &str,
        branch_prefix: &str,
        token: Option<&Secret>,
    ) -> Result<(), GitError> {
        for reference in self
            .repo
            .references_glob(&format!("{REMOTE_PREFIX}*"))
            .map_err(git_error("listing fetched branches"))?
            .flatten()
            .collect::<Vec<_>>()
        {
            let mut reference = reference;
            let _ = reference.delete();
        }
        let mut remote = self.open_remote(url, token)?;
        let tries = Cell::new(0);
        let mut options = git2::FetchOptions::new();
        options.remote_callbacks(callbacks(token, &tries));
        options.download_tags(git2::AutotagOption::None);
        let refspecs = [
            format!("+refs/heads/{base}:{BASE_REF}"),
            format!("+refs/heads/{branch_prefix}*:{REMOTE_PREFIX}*"),
        ];
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(git_error(format!("fetching {base} from {}", redact(url))))?;
        Ok(())
    }

    pub fn base_head(&self) -> Result<Oid, GitError> {
        self.repo
            .refname_to_id(BASE_REF)
            .map_err(git_error("the fetched base branch"))
    }

    /// The fetched head of keyroll's branch `branch_prefix` + `suffix`, if it exists.
    pub fn remote_branch(&self, branch: &str, branch_prefix: &str) -> Option<Oid> {
        let suffix = branch.strip_prefix(branch_prefix)?;
        self.repo
            .refname_to_id(&format!("{REMOTE_PREFIX}{suffix}"))
            .ok()
    }

    /// The bytes of `path` in `commit`'s tree, or None when it has no such file.
    pub fn blob_at(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(git_error(format!("reading commit {commit}")))?;
        match tree.get_path(Path::new(path)) {
            Err(_) => Ok(None),
            Ok(entry) => {
                let blob = self
                    .repo
                    .find_blob(entry.id())
                    .map_err(git_error(format!("reading {path}")))?;
                Ok(Some(blob.content().to_vec()))
            }
        }
    }

    pub fn parents(&self, commit: Oid) -> Result<Vec<Oid>, GitError> {
        self.repo
            .find_commit(commit)
            .map(|c| c.parent_ids().collect())
            .map_err(git_error(format!("reading commit {commit}")))
    }

    pub fn message(&self, commit: Oid) -> Result<String, GitError> {
        self.repo
            .find_commit(commit)
            .map(|c| c.message().unwrap_or_default().to_string())
            .map_err(git_error(format!("reading commit {commit}")))
    }

    /// Whether `head` is one commit on `base` whose message carries `trailer` on a line of
    /// its own: a branch keyroll pushed for this exact content, with nothing to redo.
    pub fn is_one_commit_with(
        &self,
        head: Oid,
        base: Oid,
        trailer: &str,
    ) -> Result<bool, GitError> {
        Ok(self.parents(head)? == vec![base]
            && self.message(head)?.lines().any(|l| l.trim() == trailer))
    }

    /// Commits reachable from `head` and not from `base`: what the branch adds.
    pub fn commits_between(&self, head: Oid, base: Oid) -> Result<Vec<CommitInfo>, GitError> {
        let mut walk = self.repo.revwalk().map_err(git_error("walking history"))?;
        walk.push(head).map_err(git_error("walking history"))?;
        walk.hide(base).map_err(git_error("walking history"))?;
        let mut commits = Vec::new();
        for id in walk {
            let id = id.map_err(git_error("walking history"))?;
            let commit = self
                .repo
                .find_commit(id)
                .map_err(git_error(format!("reading commit {id}")))?;
            commits.push(CommitInfo {
                author_email: commit.author().email().unwrap_or_default().to_string(),
                committer_email: commit.committer().email().unwrap_or_default().to_string(),
                message: commit.message().unwrap_or_default().to_string(),
            });
        }
        Ok(commits)
    }
}

/// Credentials for HTTPS: `x-access-token` and the token, offered once (libgit2 asks again
/// after a refusal, and would loop).
pub(crate) fn callbacks<'a>(
    token: Option<&'a Secret>,
    tries: &'a Cell<u32>,
) -> git2::RemoteCallbacks<'a> {
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.credentials(move |url, _user, allowed| {
        tries.set(tries.get() + 1);
        // Where libgit2 is asking from now (a redirect may have moved it).
        if token.is_some()
            && plain_http(url)
            && let Err(why) =
                crate::model::secret::check_credential_transport(url, "the git remote")
        {
            return Err(git2::Error::from_str(&why));
        }
        match token {
            Some(token)
                if tries.get() == 1
                    && allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) =>
            {
                git2::Cred::userpass_plaintext("x-access-token", token.expose())
            }
            Some(_) => Err(git2::Error::from_str(
                "the remote refused the token (check its permissions: contents: write)",
            )),
            None => Err(git2::Error::from_str(
                "the remote asks for credentials and no token was given (--token or GITHUB_TOKEN)",
            )),
        }
    });
    callbacks
}

/// `http://…`: the one transport on which a token would travel readable (ssh, git:// and
/// local paths never get it; https encrypts it).
fn plain_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// A URL fit to print: any user information (which could hold a token) removed.
pub fn redact(url: &str) -> String {
    crate::model::secret::redact_urls(url)
}

/// `..` and `.` resolved without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reading a commit's files, for planning against the base a pull request targets.
impl GitRepo {
    /// The work tree's root (canonical).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Every file of `commit`'s tree under `prefix` (a `/`-separated folder relative to
    /// the work tree's root, "" for all), relative to `prefix`, and whether it is a link.
    pub fn list_files(&self, commit: Oid, prefix: &str) -> Result<Vec<(String, bool)>, GitError> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(git_error(format!("reading commit {commit}")))?;
        let mut files = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                let path = format!("{dir}{}", entry.name().unwrap_or_default());
                let relative = if prefix.is_empty() {
                    Some(path.as_str())
                } else {
                    path.strip_prefix(prefix)
                        .and_then(|rest| rest.strip_prefix('/'))
                };
                if let Some(relative) = relative {
                    files.push((relative.to_string(), entry.filemode() == 0o120000));
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(git_error("listing the base's files"))?;
        Ok(files)
    }

    /// The commit a dry run plans against: the remote-tracking branch `origin/<base>` when
    /// there is one, else `HEAD`.
    pub fn local_base(&self, base: Option<&str>) -> Result<(Oid, String), GitError> {
        if let Some(base) = base
            && let Ok(id) = self
                .repo
                .refname_to_id(&format!("refs/remotes/origin/{base}"))
        {
            return Ok((id, format!("origin/{base}")));
        }
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(git_error("reading HEAD"))?;
        Ok((head.id(), "HEAD".to_string()))
    }
}
