//! Which repository a command works on, and how it reaches it: the repository, the API URL,
//! the git remote and the token, resolved from the flags, keyroll.toml, the Actions
//! environment and the clone's origin remote, in that order. One function for `pr`,
//! `onboard`, `discover` and `dashboard`, so they cannot resolve them differently.

use super::{GitHub, GitHubError, RepoName, RetryPolicy, Secret};

/// The API every command talks to when nothing names another.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// What a command was given, each from most to least specific. Fields a command has no
/// source for stay `None`.
#[derive(Debug, Default, Clone)]
pub struct Given<'a> {
    /// `--repo OWNER/NAME`.
    pub repo: Option<String>,
    /// keyroll.toml's `[pr] repository`.
    pub configured_repo: Option<String>,
    /// `--api-url`.
    pub api_url: Option<String>,
    /// keyroll.toml's `[pr] api_url`.
    pub configured_api_url: Option<String>,
    /// `--remote`.
    pub remote: Option<String>,
    /// The URL of the clone's `origin` remote, when there is a clone with one.
    pub origin: Option<String>,
    /// `--token` (or `GITHUB_TOKEN`); an empty one is no token.
    pub token: Option<Secret>,
    /// What the error says when no repository is named anywhere.
    pub missing: &'a str,
}

/// Why the repository could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// Named nowhere: the command's own question (`Given::missing`).
    #[error("{0}")]
    Missing(String),
    #[error("{0:?} is not OWNER/NAME")]
    NotOwnerName(String),
}

/// Why a GitHub App installation token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AppTokenError {
    #[error(transparent)]
    Repository(#[from] RepoError),
    #[error(transparent)]
    PrivateKey(GitHubError),
    #[error("getting a GitHub App installation token")]
    Installation(#[source] GitHubError),
}

/// What a command works on. The repository is kept as its resolution's result, so a command
/// that needs it only on some paths (`dashboard --no-issue` does not) fails only on those.
#[derive(Debug)]
pub struct Target {
    repository: Result<RepoName, RepoError>,
    pub api_url: String,
    /// Where to fetch and push: `--remote`, else origin, else
    /// `GITHUB_SERVER_URL/OWNER/NAME.git`; None when none of them is there.
    pub remote_url: Option<String>,
    pub token: Option<Secret>,
}

/// Resolves what `given` names; `env` reads the environment (`GITHUB_REPOSITORY`,
/// `GITHUB_API_URL`, `GITHUB_SERVER_URL`), an unset or empty variable being `None`.
pub fn resolve(given: Given<'_>, env: impl Fn(&str) -> Option<String>) -> Target {
    let repository = given
        .repo
        .or(given.configured_repo)
        .or_else(|| env("GITHUB_REPOSITORY"))
        .or_else(|| {
            let origin = given.origin.as_deref()?;
            RepoName::from_remote_url(origin).map(|r| r.to_string())
        })
        .ok_or_else(|| RepoError::Missing(given.missing.to_string()))
        .and_then(|text| RepoName::parse(&text).ok_or(RepoError::NotOwnerName(text)));
    // The runner's GITHUB_API_URL before keyroll.toml's `[pr] api_url`: keyroll.toml is
    // repository content (in an organisation run, any member repository's), and the API URL
    // receives the token and the App's signed login token.
    let api_url = given
        .api_url
        .or_else(|| env("GITHUB_API_URL"))
        .or(given.configured_api_url)
        .unwrap_or_else(|| DEFAULT_API_URL.into());
    let remote_url = given.remote.or(given.origin).or_else(|| {
        let server = env("GITHUB_SERVER_URL")?;
        let repository = repository.as_ref().ok()?;
        Some(format!(
            "{}/{}.git",
            server.trim_end_matches('/'),
            repository
        ))
    });
    Target {
        repository,
        api_url,
        remote_url,
        token: given.token.filter(|t| !t.is_empty()),
    }
}

impl Target {
    /// The repository, or why none could be resolved.
    pub fn repository(&self) -> Result<&RepoName, RepoError> {
        self.repository.as_ref().map_err(Clone::clone)
    }

    /// Replaces the token with a GitHub App installation token for the repository, minted
    /// with the App's private key (`key`: the PEM, or a path to it), and returns it: a token
    /// minted here is no registered secret of a runner yet, so the caller may need to mask it.
    pub async fn mint_app_token(
        &mut self,
        app_id: &str,
        key: &Secret,
    ) -> Result<&Secret, AppTokenError> {
        let repository = self.repository()?.clone();
        let pem = super::load_app_private_key(key).map_err(AppTokenError::PrivateKey)?;
        let client = GitHub::new(&self.api_url, None, false, RetryPolicy::default());
        let minted = client
            .installation_token(&repository, app_id, &pem)
            .await
            .map_err(AppTokenError::Installation)?;
        Ok(self.token.insert(minted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_then_settings_then_environment_then_origin() {
        let given = || Given {
            origin: Some("git@github.com:from/origin.git".into()),
            missing: "which?",
            ..Default::default()
        };
        let from_origin = resolve(given(), env(&[]));
        assert_eq!(from_origin.repository().unwrap().to_string(), "from/origin");
        assert_eq!(from_origin.api_url, DEFAULT_API_URL);
        assert_eq!(
            from_origin.remote_url.as_deref(),
            Some("git@github.com:from/origin.git")
        );
        let from_env = resolve(
            given(),
            env(&[
                ("GITHUB_REPOSITORY", "from/env"),
                ("GITHUB_API_URL", "https://e/api"),
            ]),
        );
        assert_eq!(from_env.repository().unwrap().to_string(), "from/env");
        assert_eq!(from_env.api_url, "https://e/api");
        let configured = Given {
            configured_repo: Some("from/settings".into()),
            configured_api_url: Some("https://s/api".into()),
            ..given()
        };
        let from_settings = resolve(
            configured.clone(),
            env(&[("GITHUB_REPOSITORY", "from/env")]),
        );
        assert_eq!(
            from_settings.repository().unwrap().to_string(),
            "from/settings"
        );
        assert_eq!(from_settings.api_url, "https://s/api");
        // On a runner its GITHUB_API_URL wins over keyroll.toml's (repository content).
        let on_runner = resolve(configured, env(&[("GITHUB_API_URL", "https://e/api")]));
        assert_eq!(on_runner.api_url, "https://e/api");
        let flagged = Given {
            repo: Some("from/flag".into()),
            remote: Some("https://r/x.git".into()),
            ..given()
        };
        let from_flag = resolve(flagged, env(&[]));
        assert_eq!(from_flag.repository().unwrap().to_string(), "from/flag");
        assert_eq!(from_flag.remote_url.as_deref(), Some("https://r/x.git"));
    }

    #[test]
    fn the_server_names_the_remote_without_origin() {
        let given = Given {
            repo: Some("o/r".into()),
            missing: "which?",
            ..Default::default()
        };
        let target = resolve(given, env(&[("GITHUB_SERVER_URL", "https://ghe.example/")]));
        assert_eq!(
            target.remote_url.as_deref(),
            Some("https://ghe.example/o/r.git")
        );
    }

    #[test]
    fn a_missing_or_malformed_repository_is_kept_as_its_error() {
        let none = resolve(
            Given {
                missing: "which repository?",
                ..Default::default()
            },
            env(&[("GITHUB_SERVER_URL", "https://github.com")]),
        );
        assert_eq!(
            none.repository().unwrap_err().to_string(),
            "which repository?"
        );
        assert_eq!(none.remote_url, None);
        let bad = resolve(
            Given {
                repo: Some("no-slash".into()),
                token: Some(Secret::new("")),
                ..Default::default()
            },
            env(&[]),
        );
        assert_eq!(
            bad.repository().unwrap_err().to_string(),
            "\"no-slash\" is not OWNER/NAME"
        );
        assert!(bad.token.is_none());
    }
}
