//! A small GitHub REST client: the dozen endpoints `keyroll pr` needs, with one place that
//! retries (rate limits, 5xx), records every call for `--dry-run` and the run's report,
//! and refuses write calls in a dry run. Hand-written over reqwest rather than octocrab:
//! the retry and dry-run rules must wrap every call uniformly, which octocrab does not
//! offer, and it would pull a second HTTP stack into the build.

use std::fmt;
use std::sync::Mutex;

use crate::secret::redact;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub API {method} {path}: HTTP {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("GitHub API {method} {path}: {detail}")]
    Transport {
        method: String,
        path: String,
        detail: String,
    },
    #[error(
        "GitHub API {method} {path}: rate limited; GitHub asks to wait {wait_seconds} s, more than the {max_seconds} s keyroll waits"
    )]
    RateLimited {
        method: String,
        path: String,
        wait_seconds: u64,
        max_seconds: u64,
    },
    #[error("GitHub API {method} {path}: unexpected response: {detail}")]
    Decode {
        method: String,
        path: String,
        detail: String,
    },
    #[error("GitHub App: {0}")]
    App(String),
    #[error("GitHub API: {0}")]
    Insecure(String),
}

impl GitHubError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One API call, as made or (in a dry run) as it would have been made.
#[derive(Debug, Clone, Serialize)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    /// False when a dry run (or a missing token) kept it from being sent.
    pub sent: bool,
    pub status: Option<u16>,
}

/// How long and how often to retry. Tests shorten the waits.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// First backoff after a 5xx or a transport error; doubles each time.
    pub backoff: Duration,
    /// The longest single wait keyroll accepts for a rate limit (Retry-After or reset).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_secs(2),
            max_wait: Duration::from_secs(120),
        }
    }
}

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
fn clean_url<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let raw = String::deserialize(deserializer)?;
    Ok(match reqwest::Url::parse(&raw) {
        Ok(url) => url.to_string(),
        Err(_) => crate::sanitize::one_line(&raw),
    })
}

impl PullRequest {
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

pub struct GitHub {
    api: String,
    token: Option<Secret>,
    http: reqwest::Client,
    dry_run: bool,
    retry: RetryPolicy,
    calls: Mutex<Vec<ApiCall>>,
}

impl GitHub {
    /// `api` is `https://api.github.com` or a GitHub Enterprise Server's `https://HOST/api/v3`.
    pub fn new(api: &str, token: Option<Secret>, dry_run: bool, retry: RetryPolicy) -> Self {
        crate::fetch::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(crate::fetch::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client builds");
        GitHub {
            api: api.trim_end_matches('/').to_string(),
            token,
            http,
            dry_run,
            retry,
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls.lock().expect("not poisoned").clone()
    }

    /// Lists a call that a dry run would make but cannot even address yet.
    pub fn list_unsent(&self, method: &str, path: &str) {
        self.record(method, path, false, None);
    }

    fn record(&self, method: &str, path: &str, sent: bool, status: Option<u16>) {
        self.calls.lock().expect("not poisoned").push(ApiCall {
            method: method.to_string(),
            path: path.to_string(),
            sent,
            status,
        });
    }

    /// Sends one call with retries. `Ok(None)` when it was not sent (a write in a dry run,
    /// or any call without a token in a dry run).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, GitHubError> {
        let write = method != reqwest::Method::GET;
        if self.dry_run && (write || self.token.is_none()) {
            self.record(method.as_str(), path, false, None);
            return Ok(None);
        }
        let url = format!("{}{}", self.api, path);
        if self.token.is_some() {
            crate::secret::check_credential_transport(&self.api, "the GitHub API")
                .map_err(GitHubError::Insecure)?;
        }
        // A pull request body quotes metadata sources: no URL password or token goes out.
        let body = body.map(|b| redact(&b.to_string()));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                // GitHub's media type first; plain JSON too, which is what GitHub's OpenAPI
                // description declares (the contract test's mock negotiates on it).
                .header("Accept", "application/vnd.github+json, application/json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            let last = attempt >= self.retry.attempts;
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    self.record(method.as_str(), path, true, None);
                    if !last && (e.is_timeout() || e.is_connect()) {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(GitHubError::Transport {
                        method: method.to_string(),
                        path: path.to_string(),
                        detail: redact(&crate::fetch::error_chain(&e)),
                    });
                }
            };
            let status = response.status().as_u16();
            self.record(method.as_str(), path, true, Some(status));
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            if (200..300).contains(&status) {
                if text.trim().is_empty() {
                    return Ok(Some(Value::Null));
                }
                return serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| GitHubError::Decode {
                        method: method.to_string(),
                        path: path.to_string(),
                        detail: redact(&e.to_string()),
                    });
            }
            if !last {
                if let Some(wait) = rate_limit_wait(status, &headers) {
                    if wait > self.retry.max_wait {
                        return Err(GitHubError::RateLimited {
                            method: method.to_string(),
                            path: path.to_string(),
                            wait_seconds: wait.as_secs(),
                            max_seconds: self.retry.max_wait.as_secs(),
                        });
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                if status >= 500 {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
            }
            return Err(GitHubError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status,
                // Servers and proxies echo requests, Authorization header included.
                message: redact(&error_message(&text)),
            });
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry.backoff * 2u32.saturating_pow(attempt - 1)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        method: &str,
        path: &str,
        value: Value,
    ) -> Result<T, GitHubError> {
        serde_json::from_value(value).map_err(|e| GitHubError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            detail: redact(&e.to_string()),
        })
    }

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

    pub async fn close_pull(&self, repo: &RepoName, number: u64) -> Result<(), GitHubError> {
        let path = format!("/repos/{}/{}/pulls/{number}", repo.owner, repo.name);
        self.call(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({ "state": "closed" })),
        )
        .await?;
        Ok(())
    }

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
        self.call(reqwest::Method::POST, &path, Some(&json!({ "body": body })))
            .await?;
        Ok(())
    }

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

    /// A GitHub App installation token for `repo`: a JWT signed with the App's private key
    /// finds the installation, which then issues a token (valid one hour).
    pub async fn installation_token(
        &self,
        repo: &RepoName,
        app_id: &str,
        private_key_pem: &Secret,
    ) -> Result<Secret, GitHubError> {
        let jwt = app_jwt(app_id, private_key_pem, std::time::SystemTime::now())?;
        let app_client = GitHub::new(&self.api, Some(jwt), false, self.retry.clone());
        let path = format!("/repos/{}/{}/installation", repo.owner, repo.name);
        let installation = app_client
            .call(reqwest::Method::GET, &path, None)
            .await?
            .unwrap_or_default();
        let id = installation["id"]
            .as_u64()
            .ok_or_else(|| GitHubError::Decode {
                method: "GET".into(),
                path: path.clone(),
                detail: "no installation id".into(),
            })?;
        let token_path = format!("/app/installations/{id}/access_tokens");
        // Scoped to the one repository the run works on: a leaked token reaches nothing else.
        let token = app_client
            .call(
                reqwest::Method::POST,
                &token_path,
                Some(&json!({ "repositories": [repo.name] })),
            )
            .await?
            .unwrap_or_default();
        let value = token["token"].as_str().ok_or_else(|| GitHubError::Decode {
            method: "POST".into(),
            path: token_path,
            detail: "no token in the response".into(),
        })?;
        self.calls
            .lock()
            .expect("not poisoned")
            .extend(app_client.calls());
        Ok(Secret::new(value))
    }
}

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
        let escaped: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
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

    /// `POST /repos/{owner}/{repo}/issues`. `None` in a dry run.
    pub async fn create_issue(
        &self,
        repo: &RepoName,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<Option<Issue>, GitHubError> {
        let path = format!("/repos/{}/{}/issues", repo.owner, repo.name);
        let payload = json!({ "title": title, "body": body, "labels": labels });
        match self
            .call(reqwest::Method::POST, &path, Some(&payload))
            .await?
        {
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

pub struct NewPull<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub branch: &'a str,
    pub base: &'a str,
    pub draft: bool,
}

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    pub fn parse(text: &str) -> Option<RepoName> {
        let (owner, name) = text.trim().split_once('/')?;
        let name = name.trim_end_matches(".git");
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        (valid(owner) && valid(name)).then(|| RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// `owner/name` from a remote URL: `https://HOST/owner/name(.git)` or `git@HOST:owner/name`.
    pub fn from_remote_url(url: &str) -> Option<RepoName> {
        let rest = url
            .split_once("://")
            .map(|(_, r)| r.split_once('/').map_or("", |(_, p)| p))
            .or_else(|| url.split_once(':').map(|(_, p)| p))?;
        let parts: Vec<&str> = rest.trim_end_matches('/').rsplitn(3, '/').collect();
        match parts.as_slice() {
            [name, owner, ..] => RepoName::parse(&format!("{owner}/{name}")),
            _ => None,
        }
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// How long a 403/429 asks us to wait: `Retry-After` seconds, else the time until
/// `x-ratelimit-reset` when `x-ratelimit-remaining` is 0. None for other errors.
fn rate_limit_wait(status: u16, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset")?.trim().parse::<u64>().ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    // A 429 with neither header: GitHub's secondary limit advice is to wait a minute.
    (status == 429).then(|| Duration::from_secs(60))
}

fn error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.chars().take(200).collect();
    };
    let mut message = v["message"].as_str().unwrap_or("").to_string();
    if let Some(errors) = v["errors"].as_array() {
        for e in errors {
            let detail = e["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            message.push_str(&format!("; {detail}"));
        }
    }
    message
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A GitHub App JWT (RS256): issued a minute in the past against clock drift, valid for
/// nine minutes (GitHub allows ten).
pub fn app_jwt(
    app_id: &str,
    private_key_pem: &Secret,
    now: std::time::SystemTime,
) -> Result<Secret, GitHubError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = rsa_key(private_key_pem)?;
    let iat = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(60);
    let header = b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64.encode(json!({ "iat": iat, "exp": iat + 600, "iss": app_id }).to_string());
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|e| GitHubError::App(format!("signing the JWT failed: {e}")))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        b64.encode(signature)
    )))
}

const NOT_PEM: &str = "the private key is not a PEM private key (its value is not shown)";

/// The RSA key pair in a PEM private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
/// No error quotes the key.
fn rsa_key(pem: &Secret) -> Result<ring::rsa::KeyPair, GitHubError> {
    let text = pem.expose();
    let begin = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("-----BEGIN "))
        .ok_or_else(|| GitHubError::App(NOT_PEM.into()))?;
    if !begin.ends_with("PRIVATE KEY-----") {
        return Err(GitHubError::App(format!(
            "{NOT_PEM}: its armour line is {begin:?}, not a private key's"
        )));
    }
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .filter(|l| !l.is_empty())
        .collect();
    let der = crate::cert::decode_base64(&body)
        .map_err(|_| GitHubError::App(format!("{NOT_PEM}: its body is not base64")))?;
    ring::rsa::KeyPair::from_der(&der)
        .or_else(|_| ring::rsa::KeyPair::from_pkcs8(&der))
        .map_err(|e| {
            GitHubError::App(format!(
                "the private key is PEM but not a usable RSA key ({e}); GitHub App keys are RSA"
            ))
        })
}

/// The App's private key as given to `--app-private-key` / `KEYROLL_APP_PRIVATE_KEY`: PEM
/// text, or the path of a PEM file. Checked here, before any call, and never echoed: a key
/// pasted without its `-----BEGIN` line is neither PEM nor a path, and the error says so
/// without quoting it.
pub fn load_app_private_key(value: &Secret) -> Result<Secret, GitHubError> {
    let text = value.expose();
    let pem = if text.contains("-----BEGIN") {
        value.clone()
    } else if !text.contains('\n') && std::path::Path::new(text).is_file() {
        let content = std::fs::read_to_string(text)
            .map_err(|e| GitHubError::App(format!("reading the private key file {text}: {e}")))?;
        Secret::new(content)
    } else {
        return Err(GitHubError::App(format!(
            "{NOT_PEM}, and no file has that name; give the PEM text, -----BEGIN line included, or a path"
        )));
    };
    rsa_key(&pem)?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_from_remotes() {
        let want = RepoName::parse("contoso/web-apps");
        assert_eq!(
            RepoName::from_remote_url("https://github.com/contoso/web-apps.git"),
            want
        );
        assert_eq!(
            RepoName::from_remote_url("git@github.com:contoso/web-apps.git"),
            want
        );
        assert_eq!(
            RepoName::from_remote_url("https://ghe.example.com/contoso/web-apps"),
            want
        );
        assert_eq!(RepoName::parse("no-slash"), None);
    }

    #[test]
    fn app_keys_that_are_not_pem_are_refused_without_being_quoted() {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/github-app-test-key.pem"
        ))
        .unwrap();
        assert!(load_app_private_key(&Secret::new(pem.clone())).is_ok());
        let body_only: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let first_line = pem.lines().nth(1).unwrap();
        for (value, why) in [
            (
                body_only.clone(),
                "not a PEM private key (its value is not shown), and no file has that name",
            ),
            (
                pem.replace("RSA PRIVATE KEY", "CERTIFICATE"),
                "not a PEM private key (its value is not shown): its armour line is \"-----BEGIN CERTIFICATE-----\"",
            ),
            (
                pem.replace(first_line, "!!not base64!!"),
                "its body is not base64",
            ),
        ] {
            let error = load_app_private_key(&Secret::new(value))
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{error}");
            assert!(!error.contains(&first_line[..20]), "{error}");
        }
    }

    #[tokio::test]
    async fn the_token_is_never_sent_over_plain_http_to_another_host() {
        let github = GitHub::new(
            "http://ghe.example.com/api/v3",
            Some(Secret::new("ghs_plain_http_token")),
            false,
            RetryPolicy::default(),
        );
        let repo = RepoName::parse("o/r").unwrap();
        let error = github.pulls_for_branch(&repo, "b").await.unwrap_err();
        assert!(
            error.to_string().contains("refusing to send the token to the GitHub API http://ghe.example.com/api/v3 over plain http://"),
            "{error}"
        );
        assert!(github.calls().is_empty(), "nothing was sent");
    }

    #[test]
    fn branch_names_are_escaped_in_queries() {
        assert_eq!(url_escape("o:keyroll/adfs prod"), "o%3Akeyroll/adfs%20prod");
    }
}
