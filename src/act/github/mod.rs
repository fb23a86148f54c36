//! A small GitHub REST client: the dozen endpoints `keyroll pr` needs, with one place that
//! retries (rate limits, 5xx, timeouts), records every call for `--dry-run` and the run's
//! report, and refuses write calls in a dry run. A call that creates something each time it
//! is sent (a comment, an issue) is sent again only when GitHub surely did not act on it, or
//! after looking for it by its marker (`GitHub::create_once`). Hand-written over reqwest
//! rather than octocrab: the retry and dry-run rules must wrap every call uniformly, which
//! octocrab does not offer, and it would pull a second HTTP stack into the build.

use std::fmt;
use std::sync::Mutex;

use crate::model::secret::redact;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use crate::model::secret::Secret;

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
    #[error(
        "{cause}; whether GitHub carried out {method} {path} is unknown and {check}, so it was not sent again (a second send could make a second one)"
    )]
    Unconfirmed {
        method: String,
        path: String,
        cause: Box<GitHubError>,
        check: String,
    },
    #[error(
        "branch {branch} changed on GitHub since keyroll read it (at {checked}; now {now}): it was not moved; the next run decides again"
    )]
    Moved {
        branch: String,
        checked: String,
        now: String,
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

pub use crate::model::api_call::ApiCall;

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

/// What one send's answer says about sending the call again.
enum Attempt {
    Done(Value),
    /// GitHub did not act on it (no connection, a rate limit): it may be sent again after
    /// `wait`.
    NotDone {
        error: GitHubError,
        wait: Duration,
    },
    /// GitHub may have acted on it (a timeout, a 5xx).
    Unknown {
        error: GitHubError,
        wait: Duration,
    },
    Failed(GitHubError),
}

/// Where [`GitHub::create_once`] looks for what a send that went unanswered may have
/// created, and the marker it carries.
enum Find<'a> {
    Comment {
        repo: &'a RepoName,
        number: u64,
        marker: String,
    },
    Issue {
        repo: &'a RepoName,
        marker: String,
    },
}

/// How far back the look for an unanswered creation reaches (in updated time).
const FIND_WINDOW: time::Duration = time::Duration::minutes(30);
/// Pages of that window read at most: an issue thread with more than 1,000 comments
/// updated in half an hour is not one keyroll comments on.
const FIND_PAGES: u32 = 10;

/// GitHub refuses issue and comment bodies over this many characters.
const BODY_LIMIT: usize = 65_536;

/// A hidden marker unique to one creation, for [`GitHub::create_once`] to find it by:
/// the time, the process and a counter, so two runs (or two calls) never share one.
fn request_marker() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "<!-- keyroll-request: {nanos:x}-{:x}-{count} -->",
        std::process::id()
    )
}

/// `body` with `marker` on a line of its own at the end, when that stays within
/// GitHub's limit; `None` when it would not (the call is then not retried after a timeout).
fn with_marker(body: &str, marker: &str) -> Option<String> {
    let marked = format!("{}\n\n{marker}\n", body.trim_end_matches('\n'));
    (marked.chars().count() <= BODY_LIMIT).then_some(marked)
}

mod app;
mod gitdata;
mod org;
mod pulls;
pub use gitdata::TreeEntry;
pub mod target;

pub use app::{app_jwt, load_app_private_key};
pub use org::{
    CodeHit, CodeHitRepository, CodePage, Issue, Owner, Page, Repository, SEARCH_RESULT_LIMIT,
};
pub use pulls::{NewPull, PullHead, PullRequest};

pub struct GitHub {
    api: String,
    token: Option<Secret>,
    http: reqwest::Client,
    timeout: Duration,
    dry_run: bool,
    retry: RetryPolicy,
    calls: Mutex<Vec<ApiCall>>,
}

impl GitHub {
    /// `api` is `https://api.github.com` or a GitHub Enterprise Server's `https://HOST/api/v3`.
    pub fn new(api: &str, token: Option<Secret>, dry_run: bool, retry: RetryPolicy) -> Self {
        crate::load::fetch::install_crypto_provider();
        GitHub {
            api: api.trim_end_matches('/').to_string(),
            token,
            http: http_client(DEFAULT_TIMEOUT),
            timeout: DEFAULT_TIMEOUT,
            dry_run,
            retry,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The longest one call may take, answer included (60 s unless set). Tests shorten it
    /// to see what a timeout does.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout);
        self.timeout = timeout;
        self
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls.lock().expect("not poisoned").clone()
    }

    /// Lists a call that a dry run would make but cannot even address yet.
    pub fn list_unsent(&self, method: &str, path: &str) {
        self.record(method, path, false, None);
    }

    pub(crate) fn record(&self, method: &str, path: &str, sent: bool, status: Option<u16>) {
        self.calls.lock().expect("not poisoned").push(ApiCall {
            method: method.to_string(),
            path: path.to_string(),
            sent,
            status,
        });
    }

    /// Sends one call with retries. `Ok(None)` when it was not sent (a write in a dry run,
    /// or any call without a token in a dry run).
    ///
    /// Only for calls that may be sent twice: reads, `PATCH`, `DELETE`, and the `POST`s
    /// whose repeat changes nothing (see [`Repeat`]). A `POST` that creates something a
    /// person sees goes through [`GitHub::create_once`].
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, GitHubError> {
        let Some(body) = self.prepare(&method, path, body)? else {
            return Ok(None);
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            match self.attempt(&method, path, body.as_deref(), attempt).await {
                Attempt::Done(v) => return Ok(Some(v)),
                Attempt::Failed(e) => return Err(e),
                Attempt::NotDone { error, wait } | Attempt::Unknown { error, wait } => {
                    if last {
                        return Err(error);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Sends a `POST` that creates something each time it is sent (an issue, a comment).
    /// It is sent again only when the first send provably did not happen: the connection
    /// was refused, or GitHub answered with a rate limit (it refuses those unperformed).
    /// After a timeout or a 5xx, which GitHub may answer after creating the object, `find`
    /// first looks for the object by the hidden marker `body` carries; found, it is the
    /// answer; not found, the call is sent again. With no way to look (`find` is `None`),
    /// the error is returned and the call is not sent again.
    async fn create_once(
        &self,
        path: &str,
        body: &Value,
        find: Option<Find<'_>>,
    ) -> Result<Option<Value>, GitHubError> {
        let method = reqwest::Method::POST;
        let Some(sent) = self.prepare(&method, path, Some(body))? else {
            return Ok(None);
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            match self.attempt(&method, path, sent.as_deref(), attempt).await {
                Attempt::Done(v) => return Ok(Some(v)),
                Attempt::Failed(e) => return Err(e),
                Attempt::NotDone { error, wait } => {
                    if last {
                        return Err(error);
                    }
                    tokio::time::sleep(wait).await;
                }
                Attempt::Unknown { error, wait } => {
                    let Some(find) = &find else {
                        return Err(GitHubError::Unconfirmed {
                            method: method.to_string(),
                            path: path.to_string(),
                            cause: Box::new(error),
                            check: "it carries no marker to look for".into(),
                        });
                    };
                    // GitHub may still be writing the object it answered 5xx for: look
                    // after the wait the retry would have made anyway.
                    tokio::time::sleep(wait).await;
                    match self.find(find).await {
                        Ok(Some(found)) => return Ok(Some(found)),
                        Ok(None) if !last => {}
                        Ok(None) => return Err(error),
                        Err(check) => {
                            return Err(GitHubError::Unconfirmed {
                                method: method.to_string(),
                                path: path.to_string(),
                                cause: Box::new(error),
                                check: format!("looking for it failed: {check}"),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Records and skips a dry run's write; refuses a token over plain http. The body to
    /// send (`Some(None)` for none), or `None` when the call is not sent.
    #[allow(clippy::option_option)]
    fn prepare(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Option<String>>, GitHubError> {
        let write = method != reqwest::Method::GET;
        if self.dry_run && (write || self.token.is_none()) {
            self.record(method.as_str(), path, false, None);
            return Ok(None);
        }
        if self.token.is_some() {
            crate::model::secret::check_credential_transport(&self.api, "the GitHub API")
                .map_err(GitHubError::Insecure)?;
        }
        // A pull request body quotes metadata sources: no URL password or token goes out.
        Ok(Some(body.map(|b| redact(&b.to_string()))))
    }

    /// An answer cut off before its end (the connection closed, or the deadline came): never
    /// read as an empty answer. GitHub received the request and may have acted on it.
    fn cut_off(
        &self,
        method: &reqwest::Method,
        path: &str,
        status: u16,
        e: &reqwest::Error,
        attempt: u32,
    ) -> Attempt {
        let error = GitHubError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            detail: redact(&format!(
                "the answer ({status}) was cut off: {}",
                crate::load::fetch::error_chain(e)
            )),
        };
        let wait = self.backoff(attempt);
        Attempt::Unknown { error, wait }
    }

    /// One send of one call, and what its answer says about sending it again.
    async fn attempt(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: Option<&str>,
        attempt: u32,
    ) -> Attempt {
        let url = format!("{}{}", self.api, path);
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
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.record(method.as_str(), path, true, None);
                let error = GitHubError::Transport {
                    method: method.to_string(),
                    path: path.to_string(),
                    detail: redact(&crate::load::fetch::error_chain(&e)),
                };
                let wait = self.backoff(attempt);
                // No connection: the request never reached GitHub. A timeout: it may have,
                // and GitHub may have acted on it.
                return if e.is_connect() {
                    Attempt::NotDone { error, wait }
                } else if e.is_timeout() {
                    Attempt::Unknown { error, wait }
                } else {
                    Attempt::Failed(error)
                };
            }
        };
        let status = response.status().as_u16();
        self.record(method.as_str(), path, true, Some(status));
        let headers = response.headers().clone();
        let text = match response.text().await {
            Ok(text) => text,
            // A refusal is classed by its status and headers, whatever became of its body.
            Err(e) if (200..300).contains(&status) => {
                return self.cut_off(method, path, status, &e, attempt);
            }
            Err(_) => String::new(),
        };
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Attempt::Done(Value::Null);
            }
            return match serde_json::from_str(&text) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Failed(GitHubError::Decode {
                    method: method.to_string(),
                    path: path.to_string(),
                    detail: redact(&e.to_string()),
                }),
            };
        }
        let error = GitHubError::Status {
            method: method.to_string(),
            path: path.to_string(),
            status,
            // Servers and proxies echo requests, Authorization header included.
            message: redact(&error_message(&text)),
        };
        if let Some(wait) = rate_limit_wait(status, &headers) {
            if wait > self.retry.max_wait {
                return Attempt::Failed(GitHubError::RateLimited {
                    method: method.to_string(),
                    path: path.to_string(),
                    wait_seconds: wait.as_secs(),
                    max_seconds: self.retry.max_wait.as_secs(),
                });
            }
            // A rate-limited request is refused before GitHub acts on it.
            return Attempt::NotDone { error, wait };
        }
        if status >= 500 {
            // GitHub answers 5xx for requests it carried out too (a timeout behind its
            // front end): whether it acted is unknown.
            return Attempt::Unknown {
                error,
                wait: self.backoff(attempt),
            };
        }
        Attempt::Failed(error)
    }

    /// Looks for an object a [`GitHub::create_once`] may have created, by its marker.
    async fn find(&self, find: &Find<'_>) -> Result<Option<Value>, GitHubError> {
        // Both lists filter on the time an object was last updated, which is at or after
        // its creation; the window allows for a runner's clock being off.
        let since = crate::model::cert::rfc3339(
            time::OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                - FIND_WINDOW,
        );
        let (marker, list) = match find {
            Find::Comment {
                repo,
                number,
                marker,
            } => (
                marker,
                format!(
                    "/repos/{}/{}/issues/{number}/comments?since={}&per_page={}",
                    repo.owner,
                    repo.name,
                    query_escape(&since),
                    org::PER_PAGE
                ),
            ),
            Find::Issue { repo, marker } => (
                marker,
                format!(
                    "/repos/{}/{}/issues?state=all&sort=created&direction=desc&since={}&per_page={}",
                    repo.owner,
                    repo.name,
                    query_escape(&since),
                    org::PER_PAGE
                ),
            ),
        };
        for page in 1..=FIND_PAGES {
            let path = format!("{list}&page={page}");
            let Some(v) = self.call(reqwest::Method::GET, &path, None).await? else {
                return Ok(None);
            };
            let Some(items) = v.as_array() else {
                return Err(GitHubError::Decode {
                    method: "GET".into(),
                    path,
                    detail: "not a list".into(),
                });
            };
            if let Some(found) = items.iter().find(|item| {
                item["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(marker.as_str()))
            }) {
                return Ok(Some(found.clone()));
            }
            if items.len() < org::PER_PAGE {
                break;
            }
        }
        Ok(None)
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.retry.backoff * 2u32.saturating_pow(attempt - 1)
    }

    pub(crate) fn decode<T: serde::de::DeserializeOwned>(
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
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(crate::load::fetch::USER_AGENT)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .build()
        .expect("HTTP client builds")
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
pub(crate) fn rate_limit_wait(
    status: u16,
    headers: &reqwest::header::HeaderMap,
) -> Option<Duration> {
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

pub(crate) fn error_message(body: &str) -> String {
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

pub(crate) fn url_escape(text: &str) -> String {
    percent_escape(text, b"/")
}

/// A search query's value: every byte but RFC 3986's unreserved characters escaped, `/`
/// included (`repo:owner/name` goes as `repo%3Aowner%2Fname`).
pub(crate) fn query_escape(text: &str) -> String {
    percent_escape(text, b"")
}

/// `%XX` for every byte that is not an RFC 3986 unreserved character or in `keep`.
fn percent_escape(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ if keep.contains(&b) => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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
