//! What an organisation run reads and writes: installation and organisation repositories,
//! repository contents, and the dashboard issue.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::pulls::clean_url;
use super::{
    Find, GitHub, GitHubError, RepoName, Secret, query_escape, request_marker, url_escape,
    with_marker,
};

/// A repository as the list endpoints describe it (only what discovery reads).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Repository {
    pub full_name: String,
    pub name: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub fork: bool,
    #[serde(default)]
    pub default_branch: Option<String>,
    /// Whose the repository is: code search scopes a query with `org:` or `user:` by it.
    #[serde(default)]
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Owner {
    pub login: String,
    /// `Organization` or `User`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// An issue, as the dashboard reads it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Issue {
    pub number: u64,
    #[serde(deserialize_with = "clean_url")]
    pub html_url: String,
    pub state: String,
    #[serde(default)]
    pub body: Option<String>,
    /// Set when the "issue" is a pull request (the issues endpoints list both).
    #[serde(default)]
    pub pull_request: Option<Value>,
    /// Who opened it (`user.type` is `Bot` for an App's or Actions' token).
    #[serde(default)]
    pub user: Option<Owner>,
    /// The opener's standing in the repository: `OWNER`, `MEMBER`, `COLLABORATOR`, ...
    #[serde(default)]
    pub author_association: Option<String>,
}

impl Issue {
    /// Whether the repository's own people or its installed bots opened it: anyone may open
    /// an issue on a public repository and paste the dashboard's marker into it, and such an
    /// issue, updated by keyroll, would stay its opener's to edit. (`CONTRIBUTOR` is not
    /// enough: anyone whose pull request was merged is one.)
    pub fn opened_from_inside(&self) -> bool {
        let bot = self
            .user
            .as_ref()
            .is_some_and(|u| u.kind.as_deref() == Some("Bot"));
        let member = self
            .author_association
            .as_deref()
            .is_some_and(|a| ["OWNER", "MEMBER", "COLLABORATOR"].contains(&a));
        bot || member
    }
}

/// One page of a list endpoint: the items and whether another page may follow.
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// Items per page on list endpoints: GitHub's maximum, so an organisation costs fewest calls.
pub const PER_PAGE: usize = 100;

impl GitHub {
    /// `GET /installation/repositories`: the repositories an App installation token reaches.
    /// Pages end when `total_count` is reached or a page comes back short.
    pub async fn installation_repositories(
        &self,
        page: u32,
    ) -> Result<Page<Repository>, GitHubError> {
        let path = format!("/installation/repositories?per_page={PER_PAGE}&page={page}");
        let Some(v) = self.call(reqwest::Method::GET, &path, None).await? else {
            return Ok(Page {
                items: Vec::new(),
                more: false,
            });
        };
        let total = v["total_count"].as_u64().unwrap_or(0) as usize;
        let items: Vec<Repository> = Self::decode("GET", &path, v["repositories"].clone())?;
        let more = items.len() == PER_PAGE && (page as usize) * PER_PAGE < total;
        Ok(Page { items, more })
    }

    /// `GET /orgs/{org}/repos`: every repository of an organisation the token can see.
    pub async fn org_repositories(
        &self,
        org: &str,
        page: u32,
    ) -> Result<Page<Repository>, GitHubError> {
        let path = format!(
            "/orgs/{}/repos?type=all&per_page={PER_PAGE}&page={page}",
            url_escape(org)
        );
        let Some(v) = self.call(reqwest::Method::GET, &path, None).await? else {
            return Ok(Page {
                items: Vec::new(),
                more: false,
            });
        };
        let items: Vec<Repository> = Self::decode("GET", &path, v)?;
        let more = items.len() == PER_PAGE;
        Ok(Page { items, more })
    }

    /// `GET /repos/{owner}/{repo}/contents/{path}` on the default branch: whether a file is
    /// there (404: not there; a folder there is not a file either).
    pub async fn file_exists(&self, repo: &RepoName, file: &str) -> Result<bool, GitHubError> {
        let path = format!(
            "/repos/{}/{}/contents/{}",
            repo.owner,
            repo.name,
            url_escape(file.trim_start_matches('/'))
        );
        match self.call(reqwest::Method::GET, &path, None).await {
            Ok(Some(v)) => Ok(v.is_object() && v["type"].as_str().is_none_or(|t| t == "file")),
            Ok(None) => Ok(false),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /repos/{owner}/{repo}/issues?labels=…&state=all`: issues (not pull requests)
    /// carrying `label`, newest first.
    pub async fn issues_with_label(
        &self,
        repo: &RepoName,
        label: &str,
    ) -> Result<Vec<Issue>, GitHubError> {
        let path = format!(
            "/repos/{}/{}/issues?labels={}&state=all&per_page={PER_PAGE}",
            repo.owner,
            repo.name,
            url_escape(label)
        );
        match self.call(reqwest::Method::GET, &path, None).await? {
            None => Ok(Vec::new()),
            Some(v) => {
                let issues: Vec<Issue> = Self::decode("GET", &path, v)?;
                Ok(issues
                    .into_iter()
                    .filter(|i| i.pull_request.is_none())
                    .collect())
            }
        }
    }

    /// `GET /search/issues?q=…`: issues of `repo` whose body holds `marker` (the fallback
    /// when someone removed the label).
    pub async fn search_issues_by_marker(
        &self,
        repo: &RepoName,
        marker: &str,
    ) -> Result<Vec<Issue>, GitHubError> {
        let query = format!(
            "\"{marker}\" repo:{}/{} is:issue in:body",
            repo.owner, repo.name
        );
        let escaped = query_escape(&query);
        let path = format!("/search/issues?q={escaped}&per_page={PER_PAGE}");
        match self.call(reqwest::Method::GET, &path, None).await? {
            None => Ok(Vec::new()),
            Some(v) => {
                let issues: Vec<Issue> = Self::decode("GET", &path, v["items"].clone())?;
                Ok(issues
                    .into_iter()
                    .filter(|i| i.pull_request.is_none())
                    .collect())
            }
        }
    }

    /// `POST /repos/{owner}/{repo}/issues`. `None` in a dry run. The body gets a hidden
    /// marker of its own, so that after a timeout or a 5xx the issue is looked for before
    /// it is sent again (`GitHub::create_once`): a second dashboard issue is never made.
    pub async fn create_issue(
        &self,
        repo: &RepoName,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<Option<Issue>, GitHubError> {
        let path = format!("/repos/{}/{}/issues", repo.owner, repo.name);
        let marker = request_marker();
        let marked = with_marker(body, &marker);
        let payload = json!({
            "title": title,
            "body": marked.as_deref().unwrap_or(body),
            "labels": labels,
        });
        let find = marked.is_some().then_some(Find::Issue { repo, marker });
        match self.create_once(&path, &payload, find).await? {
            None => Ok(None),
            Some(v) => Self::decode("POST", &path, v).map(Some),
        }
    }

    /// `PATCH /repos/{owner}/{repo}/issues/{number}`: title and body replaced, reopened.
    pub async fn update_issue(
        &self,
        repo: &RepoName,
        number: u64,
        title: &str,
        body: &str,
    ) -> Result<(), GitHubError> {
        let path = format!("/repos/{}/{}/issues/{number}", repo.owner, repo.name);
        let payload = json!({ "title": title, "body": body, "state": "open" });
        self.call(reqwest::Method::PATCH, &path, Some(&payload))
            .await?;
        Ok(())
    }

    /// `POST /app/installations/{id}/access_tokens` with `repositories`: a token that reaches
    /// only the repositories named (by name, without the owner). The client's token must be
    /// the App's JWT ([`app_jwt`]).
    pub async fn scoped_installation_token(
        &self,
        installation_id: u64,
        repositories: &[&str],
    ) -> Result<Option<Secret>, GitHubError> {
        let path = format!("/app/installations/{installation_id}/access_tokens");
        // Sent again after a timeout or 5xx like a read: a second token is no object anyone
        // sees, its answer reached no one, and it expires within the hour.
        let payload = json!({ "repositories": repositories });
        match self
            .call(reqwest::Method::POST, &path, Some(&payload))
            .await?
        {
            None => Ok(None),
            Some(v) => v["token"]
                .as_str()
                .map(|t| Some(Secret::new(t)))
                .ok_or_else(|| GitHubError::Decode {
                    method: "POST".into(),
                    path,
                    detail: "no token in the response".into(),
                }),
        }
    }
}

/// One hit of `GET /search/code`: a file in a repository.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CodeHit {
    pub path: String,
    pub repository: CodeHitRepository,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CodeHitRepository {
    pub full_name: String,
}

/// One page of `GET /search/code`.
pub struct CodePage {
    pub items: Vec<CodeHit>,
    pub total_count: u64,
    /// GitHub stopped searching before it was done (a timeout on its side): the hits are
    /// not every match.
    pub incomplete_results: bool,
    pub more: bool,
}

/// GitHub's code search returns at most the first 1,000 results of a query.
pub const SEARCH_RESULT_LIMIT: u64 = 1000;

impl GitHub {
    /// `GET /search/code?q=…`: files on default branches matching `query` (GitHub's own
    /// syntax: terms and qualifiers such as `org:`, `extension:`). Search has its own rate
    /// limit (30 calls a minute with a token, 10 without); its 403/429 with
    /// `x-ratelimit-remaining: 0` or `Retry-After` is waited out by [`GitHub::call`] like any
    /// other rate limit. A refusal (an App installation token on a GitHub that does not allow
    /// it, 422 for a query it will not run) comes back as the error.
    pub async fn search_code(&self, query: &str, page: u32) -> Result<CodePage, GitHubError> {
        let escaped = query_escape(query);
        let path = format!("/search/code?q={escaped}&per_page={PER_PAGE}&page={page}");
        let Some(v) = self.call(reqwest::Method::GET, &path, None).await? else {
            return Ok(CodePage {
                items: Vec::new(),
                total_count: 0,
                incomplete_results: false,
                more: false,
            });
        };
        let total_count = v["total_count"].as_u64().unwrap_or(0);
        let incomplete_results = v["incomplete_results"].as_bool().unwrap_or(false);
        let items: Vec<CodeHit> = Self::decode("GET", &path, v["items"].clone())?;
        let reached = u64::from(page) * PER_PAGE as u64;
        let more = items.len() == PER_PAGE && reached < total_count.min(SEARCH_RESULT_LIMIT);
        Ok(CodePage {
            items,
            total_count,
            incomplete_results,
            more,
        })
    }
}
