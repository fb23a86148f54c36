//! `keyroll discover`: the repositories a GitHub App installation (or an organisation, with a
//! token) reaches that hold a keyroll.toml, as JSON ready for a workflow's `strategy.matrix`.
//!
//! Cost: one call per page of 100 repositories, then one `contents` call per configured path
//! per repository that is not skipped (archived, disabled and forks are skipped before any
//! call unless asked for), stopping at the first path found.
//!
//! Batching rule: GitHub Actions runs at most 256 jobs per matrix, so the repositories are cut,
//! in the listing's order sorted by name, into consecutive batches of at most `batch_size`
//! (256 by default and at most); batch `i` (from 1) is `{"include": [...]}` for the `i`-th
//! matrix job of the workflow.

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::github::{GitHub, GitHubError, RepoName, Repository};

pub const SCHEMA: &str = "keyroll.discover/v1";
/// GitHub Actions' limit on the jobs one matrix generates.
pub const MATRIX_LIMIT: usize = 256;

#[derive(Debug, Clone)]
pub enum Scope {
    /// `GET /installation/repositories` with an installation token.
    Installation,
    /// `GET /orgs/{org}/repos` with a token that can read the organisation.
    Org(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scope: Scope,
    /// Where keyroll.toml may be, tried in order (the first found wins).
    pub paths: Vec<String>,
    pub include_archived: bool,
    pub include_disabled: bool,
    pub include_forks: bool,
    pub batch_size: usize,
    /// `contents` calls in flight at once.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MatrixEntry {
    /// `owner/name`.
    pub repository: String,
    pub owner: String,
    /// Without the owner: what `actions/create-github-app-token`'s `repositories` takes.
    pub name: String,
    /// keyroll.toml's path in the repository.
    pub config: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub repository: String,
    /// `archived`, `disabled`, `fork`.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failed {
    pub repository: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub include: Vec<MatrixEntry>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Calls {
    /// Pages of the repository listing.
    pub list: usize,
    /// `contents` look-ups.
    pub contents: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub schema: &'static str,
    /// `installation` or `org:NAME`.
    pub scope: String,
    pub batch_size: usize,
    /// Repositories listed, before any filter.
    pub listed: usize,
    pub repositories: Vec<MatrixEntry>,
    pub batches: Vec<Batch>,
    /// Repositories left out by the archived / disabled / fork rules.
    pub skipped: Vec<Skipped>,
    /// How many repositories hold no keyroll.toml at any of the paths.
    pub without_config: usize,
    /// Repositories whose look-up failed (after the client's retries), with the reason.
    pub failed: Vec<Failed>,
    pub api_calls: Calls,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("listing the repositories failed: {0}")]
    List(GitHubError),
    #[error(
        "--batch-size must be between 1 and {MATRIX_LIMIT} (GitHub Actions' matrix limit), not {0}"
    )]
    BatchSize(usize),
    #[error("--path \"{0}\" must be a relative path inside the repository")]
    Path(String),
}

pub async fn discover(github: &GitHub, options: &Options) -> Result<Discovery, DiscoverError> {
    if options.batch_size == 0 || options.batch_size > MATRIX_LIMIT {
        return Err(DiscoverError::BatchSize(options.batch_size));
    }
    for path in &options.paths {
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err(DiscoverError::Path(path.clone()));
        }
    }
    let mut calls = Calls::default();
    let mut listed = Vec::new();
    let mut page = 1;
    loop {
        let result = match &options.scope {
            Scope::Installation => github.installation_repositories(page).await,
            Scope::Org(org) => github.org_repositories(org, page).await,
        };
        calls.list += 1;
        let result = result.map_err(DiscoverError::List)?;
        listed.extend(result.items);
        if !result.more {
            break;
        }
        page += 1;
    }
    // An App installation may list a repository twice across pages when one is added during
    // the listing; each is looked at once.
    listed.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    listed.dedup_by(|a, b| a.full_name == b.full_name);

    let mut skipped = Vec::new();
    let mut candidates: Vec<Repository> = Vec::new();
    for repo in &listed {
        let reason = if repo.archived && !options.include_archived {
            Some("archived")
        } else if repo.disabled && !options.include_disabled {
            Some("disabled")
        } else if repo.fork && !options.include_forks {
            Some("fork")
        } else {
            None
        };
        match reason {
            Some(reason) => skipped.push(Skipped {
                repository: repo.full_name.clone(),
                reason: reason.into(),
            }),
            None => candidates.push(repo.clone()),
        }
    }

    let concurrency = options.concurrency.max(1);
    let looked_up: Vec<(Repository, usize, Result<Option<String>, String>)> =
        futures_util::stream::iter(candidates.into_iter().map(|repo| async move {
            let Some(name) = RepoName::parse(&repo.full_name) else {
                let reason = format!("\"{}\" is not an owner/name", repo.full_name);
                return (repo, 0, Err(reason));
            };
            let mut made = 0;
            for path in &options.paths {
                made += 1;
                match github.file_exists(&name, path).await {
                    Ok(true) => return (repo, made, Ok(Some(path.clone()))),
                    Ok(false) => {}
                    Err(e) => return (repo, made, Err(crate::secret::redact(&e.to_string()))),
                }
            }
            (repo, made, Ok(None))
        }))
        .buffered(concurrency)
        .collect()
        .await;

    let mut repositories = Vec::new();
    let mut failed = Vec::new();
    let mut without_config = 0;
    for (repo, made, outcome) in looked_up {
        calls.contents += made;
        match outcome {
            Ok(Some(config)) => {
                let (owner, name) = repo
                    .full_name
                    .split_once('/')
                    .map(|(o, n)| (o.to_string(), n.to_string()))
                    .unwrap_or_default();
                repositories.push(MatrixEntry {
                    repository: repo.full_name.clone(),
                    owner,
                    name,
                    config,
                });
            }
            Ok(None) => without_config += 1,
            Err(reason) => failed.push(Failed {
                repository: repo.full_name.clone(),
                reason,
            }),
        }
    }
    let batches = repositories
        .chunks(options.batch_size)
        .map(|c| Batch {
            include: c.to_vec(),
        })
        .collect();
    Ok(Discovery {
        schema: SCHEMA,
        scope: match &options.scope {
            Scope::Installation => "installation".into(),
            Scope::Org(org) => format!("org:{org}"),
        },
        batch_size: options.batch_size,
        listed: listed.len(),
        repositories,
        batches,
        skipped,
        without_config,
        failed,
        api_calls: calls,
    })
}

/// `$GITHUB_OUTPUT` lines: `batch-count`, `repositories` (how many), and `matrix-1` …
/// `matrix-N`, each a `strategy.matrix` value (`{"include":[…]}`) for one matrix job.
pub fn outputs(discovery: &Discovery) -> String {
    let mut out =
        crate::sanitize::output_entry("batch-count", &discovery.batches.len().to_string());
    out.push_str(&crate::sanitize::output_entry(
        "repositories",
        &discovery.repositories.len().to_string(),
    ));
    for (i, batch) in discovery.batches.iter().enumerate() {
        out.push_str(&crate::sanitize::output_entry(
            &format!("matrix-{}", i + 1),
            &serde_json::to_string(batch).expect("batch serializes"),
        ));
    }
    out
}
