//! Git objects made through the REST API (Git Database), so that GitHub signs the commit:
//! blobs, a tree on the base tree with each file's mode, a commit with no author or
//! committer (GitHub fills in the App's bot and marks the commit Verified), and the branch
//! ref created or force-updated. In a dry run every call is listed with its full path and
//! the SHAs it would get back are shown as placeholders.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::{GitHub, GitHubError, RepoName, query_escape};

/// One file of the new tree: its path in the repository, its git mode (`100644`, `100755`)
/// and its blob.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    pub path: String,
    pub mode: &'static str,
    pub sha: String,
}

#[derive(Deserialize)]
struct Created {
    sha: String,
}

impl GitHub {
    /// `POST /repos/{o}/{r}/git/blobs`: the file's exact bytes (base64, so no text
    /// conversion touches them). The blob's SHA, or `{blob}` when not sent.
    pub async fn create_blob(&self, repo: &RepoName, bytes: &[u8]) -> Result<String, GitHubError> {
        let path = format!("/repos/{}/{}/git/blobs", repo.owner, repo.name);
        let body = json!({
            "content": base64::engine::general_purpose::STANDARD.encode(bytes),
            "encoding": "base64",
        });
        self.created(&path, &body, "{blob}").await
    }

    /// `POST /repos/{o}/{r}/git/trees`: `base_tree` with `entries` put in.
    pub async fn create_tree(
        &self,
        repo: &RepoName,
        base_tree: &str,
        entries: &[TreeEntry],
    ) -> Result<String, GitHubError> {
        let path = format!("/repos/{}/{}/git/trees", repo.owner, repo.name);
        let tree: Vec<_> = entries
            .iter()
            .map(|e| json!({ "path": e.path, "mode": e.mode, "type": "blob", "sha": e.sha }))
            .collect();
        let body = json!({ "base_tree": base_tree, "tree": tree });
        self.created(&path, &body, "{tree}").await
    }

    /// `POST /repos/{o}/{r}/git/commits` with no author, committer or signature: GitHub
    /// makes the commit as the token's App and signs it.
    pub async fn create_commit(
        &self,
        repo: &RepoName,
        message: &str,
        tree: &str,
        parent: &str,
    ) -> Result<String, GitHubError> {
        let path = format!("/repos/{}/{}/git/commits", repo.owner, repo.name);
        let body = json!({ "message": message, "tree": tree, "parents": [parent] });
        self.created(&path, &body, "{commit}").await
    }

    /// Points `refs/heads/<branch>` at `sha`: `PATCH …/git/refs/heads%2F<branch>` with
    /// `force` when the branch exists, else `POST …/git/refs`.
    /// `checked`: the head keyroll read the branch at and checked (every commit its own), or
    /// `None` when it found no branch (then it is created, never moved).
    pub async fn set_branch(
        &self,
        repo: &RepoName,
        branch: &str,
        sha: &str,
        checked: Option<&str>,
    ) -> Result<(), GitHubError> {
        if let Some(checked) = checked {
            // GitHub's REST API moves a ref with no compare-and-swap: the branch is read just
            // before it is moved and left alone unless it is still the head keyroll checked
            // (a person's push since is never overwritten). Only a push in the moment
            // between the two calls escapes this lease; `git push` (commits = "git") has
            // none such (act/git.rs).
            if !self.dry_run {
                let now = self.branch_sha(repo, branch).await?;
                if now.as_deref() != Some(checked) {
                    return Err(GitHubError::Moved {
                        branch: branch.to_string(),
                        checked: checked.to_string(),
                        now: now.map_or("gone".to_string(), |sha| format!("at {sha}")),
                    });
                }
            }
            // `{ref}` is one path segment in GitHub's description: its slashes go as `%2F`,
            // as Octokit sends them.
            let path = format!(
                "/repos/{}/{}/git/refs/{}",
                repo.owner,
                repo.name,
                query_escape(&format!("heads/{branch}"))
            );
            let body = json!({ "sha": sha, "force": true });
            self.call(reqwest::Method::PATCH, &path, Some(&body))
                .await?;
        } else {
            let path = format!("/repos/{}/{}/git/refs", repo.owner, repo.name);
            let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
            if let Err(error) = self.call(reqwest::Method::POST, &path, Some(&body)).await {
                // The create is sent again after a timeout or a 5xx, which GitHub may answer
                // after making the ref: the repeat is then refused (422, "Reference already
                // exists"). A branch that exists and points at `sha` is what was asked for;
                // one pointing elsewhere (another run's) is the error it was.
                let refused = matches!(error, GitHubError::Status { status: 422, .. });
                if refused && self.branch_sha(repo, branch).await?.as_deref() == Some(sha) {
                    return Ok(());
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// `GET /repos/{o}/{r}/git/ref/heads%2F<branch>`: the commit the branch points at, `None`
    /// when there is no such branch.
    async fn branch_sha(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<String>, GitHubError> {
        #[derive(Deserialize)]
        struct Ref {
            object: Created,
        }
        let path = format!(
            "/repos/{}/{}/git/ref/{}",
            repo.owner,
            repo.name,
            query_escape(&format!("heads/{branch}"))
        );
        match self.call(reqwest::Method::GET, &path, None).await {
            Ok(Some(v)) => Ok(Some(Self::decode::<Ref>("GET", &path, v)?.object.sha)),
            Ok(None) | Err(GitHubError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A `POST` whose answer names what it made by `sha`. Made again when sent twice, such a
    /// git object is the same object: these calls may be repeated.
    async fn created(
        &self,
        path: &str,
        body: &serde_json::Value,
        placeholder: &str,
    ) -> Result<String, GitHubError> {
        match self.call(reqwest::Method::POST, path, Some(body)).await? {
            None => Ok(placeholder.to_string()),
            Some(v) => Ok(Self::decode::<Created>("POST", path, v)?.sha),
        }
    }
}
