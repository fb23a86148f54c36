//! Pull requests: listing keyroll's, creating, updating, closing, commenting, labels,
//! assignees, reviewers, and deleting a branch.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Find, GitHub, GitHubError, RepoName, request_marker, url_escape, with_marker};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PullRequest {
    pub number: u64,
    /// Normalised on the way in: it reaches Markdown links and `$GITHUB_OUTPUT`.
    #[serde(deserialize_with = "clean_url")]
    pub html_url: String,
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub title: String,
    pub head: PullHead,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PullHead {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A URL from an API answer as the WHATWG parser reads it (tabs and line breaks dropped,
/// spaces and quotes percent-encoded); a value that is no URL is kept on one line.
pub(crate) fn clean_url<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let raw = String::deserialize(deserializer)?;
    Ok(match reqwest::Url::parse(&raw) {
        Ok(url) => url.to_string(),
        Err(_) => crate::render::sanitize::one_line(&raw),
    })
}

impl PullRequest {
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

pub struct NewPull<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub branch: &'a str,
    pub base: &'a str,
    pub draft: bool,
}

impl GitHub {
    /// Every pull request, open or closed, whose head is `owner:branch` (newest first).
    /// Empty when the call was not sent.
    pub async fn pulls_for_branch(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Vec<PullRequest>, GitHubError> {
        let path = format!(
            "/repos/{}/{}/pulls?head={}&state=all&per_page=100",
            repo.owner,
            repo.name,
            url_escape(&format!("{}:{}", repo.owner, branch))
        );
        match self.call(reqwest::Method::GET, &path, None).await? {
            None => Ok(Vec::new()),
            Some(v) => {
                let pulls: Vec<PullRequest> = Self::decode("GET", &path, v)?;
                // The filter is GitHub's; the check is ours.
                Ok(pulls
                    .into_iter()
                    .filter(|p| p.head.branch == branch)
                    .collect())
            }
        }
    }

    /// `POST /repos/{owner}/{repo}/pulls`. Sent again after a timeout or a 5xx: if the
    /// first send opened the pull request, GitHub refuses the second for the same head
    /// (422 "already exists"), which the callers turn into finding and updating it.
    pub async fn create_pull(
        &self,
        repo: &RepoName,
        new: &NewPull<'_>,
    ) -> Result<Option<PullRequest>, GitHubError> {
        let path = format!("/repos/{}/{}/pulls", repo.owner, repo.name);
        let body = json!({
            "title": new.title,
            "body": new.body,
            "head": new.branch,
            "base": new.base,
            "draft": new.draft,
            "maintainer_can_modify": false,
        });
        match self.call(reqwest::Method::POST, &path, Some(&body)).await? {
            None => Ok(None),
            Some(v) => Self::decode("POST", &path, v).map(Some),
        }
    }

    pub async fn update_pull(
        &self,
        repo: &RepoName,
        number: u64,
        title: &str,
        body: &str,
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{}/{}/pulls/{number}", repo.owner, repo.name);
        let payload = json!({ "title": title, "body": body });
        self.call(reqwest::Method::PATCH, &path, Some(&payload))
            .await?;
        Ok(())
    }

    pub async fn close_pull(
        &self,
        repo: &RepoName,
        number: u64,
        body: Option<&str>,
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{}/{}/pulls/{number}", repo.owner, repo.name);
        let update = match body {
            Some(body) => json!({ "state": "closed", "body": body }),
            None => json!({ "state": "closed" }),
        };
        self.call(reqwest::Method::PATCH, &path, Some(&update))
            .await?;
        Ok(())
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`. The body gets a hidden marker
    /// of its own, so that after a timeout or a 5xx the comment is looked for before it is
    /// sent again (`GitHub::create_once`): a person is never told the same thing twice.
    pub async fn comment(
        &self,
        repo: &RepoName,
        number: u64,
        body: &str,
    ) -> Result<(), GitHubError> {
        let path = format!(
            "/repos/{}/{}/issues/{number}/comments",
            repo.owner, repo.name
        );
        let marker = request_marker();
        let marked = with_marker(body, &marker);
        let payload = json!({ "body": marked.as_deref().unwrap_or(body) });
        let find = marked.is_some().then_some(Find::Comment {
            repo,
            number,
            marker,
        });
        self.create_once(&path, &payload, find).await?;
        Ok(())
    }

    /// `POST …/issues/{number}/labels`. Adds to a set: sent twice, the labels are there
    /// once, so it is retried like a read.
    pub async fn add_labels(
        &self,
        repo: &RepoName,
        number: u64,
        labels: &[String],
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{}/{}/issues/{number}/labels", repo.owner, repo.name);
        self.call(
            reqwest::Method::POST,
            &path,
            Some(&json!({ "labels": labels })),
        )
        .await?;
        Ok(())
    }

    /// `POST …/issues/{number}/assignees`. Adds to a set, retried like a read.
    pub async fn add_assignees(
        &self,
        repo: &RepoName,
        number: u64,
        assignees: &[String],
    ) -> Result<(), GitHubError> {
        let path = format!(
            "/repos/{}/{}/issues/{number}/assignees",
            repo.owner, repo.name
        );
        self.call(
            reqwest::Method::POST,
            &path,
            Some(&json!({ "assignees": assignees })),
        )
        .await?;
        Ok(())
    }

    /// `POST …/pulls/{number}/requested_reviewers`. Adds to the set of pending requests,
    /// retried like a read.
    pub async fn request_reviewers(
        &self,
        repo: &RepoName,
        number: u64,
        reviewers: &[String],
        team_reviewers: &[String],
    ) -> Result<(), GitHubError> {
        let path = format!(
            "/repos/{}/{}/pulls/{number}/requested_reviewers",
            repo.owner, repo.name
        );
        self.call(
            reqwest::Method::POST,
            &path,
            Some(&json!({ "reviewers": reviewers, "team_reviewers": team_reviewers })),
        )
        .await?;
        Ok(())
    }

    pub async fn delete_branch(&self, repo: &RepoName, branch: &str) -> Result<(), GitHubError> {
        let path = format!(
            "/repos/{}/{}/git/refs/heads/{}",
            repo.owner,
            repo.name,
            url_escape(branch)
        );
        match self.call(reqwest::Method::DELETE, &path, None).await {
            // Already gone (deleted by GitHub's "delete head branch" setting, say).
            Err(e) if matches!(e.status(), Some(404 | 422)) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
