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
//!
//! Onboarding (`--onboarding`): the repositories that hold WIF configs but no keyroll.toml,
//! found with GitHub's code search (`GET /search/code`) — see [`search_terms`] for the query,
//! taken from the dialect rules the scanner uses. Code search is not always allowed (App
//! installation tokens on some GitHubs, GHES without it): then the list says it is not
//! complete and why ([`OnboardingSearch`]), and the rest of discovery stands.

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::act::github::{GitHub, GitHubError, RepoName, Repository};

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
    /// Also list the repositories without keyroll.toml whose configs these rules recognise
    /// (code search); None: no search.
    pub onboarding: Option<crate::model::rules::RuleSet>,
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

/// A repository whose look-up failed. Both fields are printed on a line of their own by
/// `keyroll discover` (a warning each), so both hold the API's text escaped with
/// [`printable`](crate::render::sanitize::printable): a repository name or an error answer holding a
/// line break cannot print a runner command. Names GitHub accepts are unchanged.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failed {
    pub repository: String,
    pub reason: String,
}

impl Failed {
    fn new(repository: &str, reason: &str) -> Failed {
        use crate::render::sanitize::printable;
        Failed {
            repository: printable(repository).into_owned(),
            reason: printable(reason).into_owned(),
        }
    }
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
    /// Code search pages (`--onboarding`).
    pub search: usize,
}

/// A repository to onboard: WIF configs (as the rules recognise them) and no keyroll.toml.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnboardingEntry {
    pub repository: String,
    pub owner: String,
    pub name: String,
    /// Where keyroll.toml would go (the first `--path`).
    pub config: String,
    /// The config files code search found, sorted.
    pub files: Vec<String>,
}

/// How the onboarding list was made, and whether it can be trusted to be whole.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnboardingSearch {
    /// The code search queries, as sent.
    pub queries: Vec<String>,
    /// False when a query was refused or failed, or GitHub said its results are partial
    /// (`incomplete_results`, or more than the 1,000 results it returns per query): the
    /// list then holds what was found, not every repository to onboard.
    pub complete: bool,
    /// Why the list is not complete (None when it is).
    pub note: Option<String>,
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
    /// `--onboarding`: repositories holding WIF configs and no keyroll.toml (sorted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onboarding: Option<Vec<OnboardingEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onboarding_search: Option<OnboardingSearch>,
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

/// Three stages: the listing's pages ([`list_repositories`]), the filter (archived, disabled
/// and forks skipped, then each repository's keyroll.toml looked up: [`look_up`]), and the
/// outputs (batches and the onboarding list).
pub async fn discover(github: &GitHub, options: &Options) -> Result<Discovery, DiscoverError> {
    check_options(options)?;
    let mut calls = Calls::default();
    let listed = list_repositories(github, &options.scope, &mut calls).await?;
    let (skipped, candidates) = skip_rules(options, &listed);
    let looked_up = look_up(github, options, candidates).await;
    let Found {
        repositories,
        failed,
        without_config,
        unconfigured,
    } = sort_outcomes(looked_up, &mut calls);

    let batches = repositories
        .chunks(options.batch_size)
        .map(|c| Batch {
            include: c.to_vec(),
        })
        .collect();
    let (onboarding, onboarding_search) = match &options.onboarding {
        Some(rules) => {
            let config = options.paths[0].clone();
            let (entries, search) = onboarding(
                github,
                &options.scope,
                rules,
                &unconfigured,
                &config,
                &mut calls,
            )
            .await;
            (Some(entries), Some(search))
        }
        None => (None, None),
    };
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
        onboarding,
        onboarding_search,
        api_calls: calls,
    })
}

fn check_options(options: &Options) -> Result<(), DiscoverError> {
    if options.batch_size == 0 || options.batch_size > MATRIX_LIMIT {
        return Err(DiscoverError::BatchSize(options.batch_size));
    }
    for path in &options.paths {
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == "..") {
            return Err(DiscoverError::Path(path.clone()));
        }
    }
    Ok(())
}

/// Every page of the listing, sorted by name, each repository once.
async fn list_repositories(
    github: &GitHub,
    scope: &Scope,
    calls: &mut Calls,
) -> Result<Vec<Repository>, DiscoverError> {
    let mut listed = Vec::new();
    let mut page = 1;
    loop {
        let result = match scope {
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
    Ok(listed)
}

/// The listed repositories the archived / disabled / fork rules leave out, and the others.
fn skip_rules(options: &Options, listed: &[Repository]) -> (Vec<Skipped>, Vec<Repository>) {
    let mut skipped = Vec::new();
    let mut candidates: Vec<Repository> = Vec::new();
    for repo in listed {
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
    (skipped, candidates)
}

/// A repository looked up: the `contents` calls made, and the path of its keyroll.toml
/// (`None`: none at any path) or why the look-up failed.
type LookedUp = (Repository, usize, Result<Option<String>, String>);

/// Each candidate's paths tried in order, `options.concurrency` repositories at once; the
/// outcomes in the candidates' order.
async fn look_up(github: &GitHub, options: &Options, candidates: Vec<Repository>) -> Vec<LookedUp> {
    let concurrency = options.concurrency.max(1);
    futures_util::stream::iter(candidates.into_iter().map(|repo| async move {
        let Some(name) = RepoName::parse(&repo.full_name) else {
            let reason = format!(
                "\"{}\" is not an owner/name",
                crate::render::sanitize::printable(&repo.full_name)
            );
            return (repo, 0, Err(reason));
        };
        let mut made = 0;
        for path in &options.paths {
            made += 1;
            match github.file_exists(&name, path).await {
                Ok(true) => return (repo, made, Ok(Some(path.clone()))),
                Ok(false) => {}
                Err(e) => {
                    return (
                        repo,
                        made,
                        Err(crate::model::secret::redact(&e.to_string())),
                    );
                }
            }
        }
        (repo, made, Ok(None))
    }))
    .buffered(concurrency)
    .collect()
    .await
}

/// The look-ups sorted by outcome.
struct Found {
    repositories: Vec<MatrixEntry>,
    failed: Vec<Failed>,
    without_config: usize,
    /// The repositories without keyroll.toml: where onboarding searches.
    unconfigured: Vec<Repository>,
}

fn sort_outcomes(looked_up: Vec<LookedUp>, calls: &mut Calls) -> Found {
    let mut found = Found {
        repositories: Vec::new(),
        failed: Vec::new(),
        without_config: 0,
        unconfigured: Vec::new(),
    };
    for (repo, made, outcome) in looked_up {
        calls.contents += made;
        match outcome {
            Ok(Some(config)) => {
                let (owner, name) = repo
                    .full_name
                    .split_once('/')
                    .map(|(o, n)| (o.to_string(), n.to_string()))
                    .unwrap_or_default();
                found.repositories.push(MatrixEntry {
                    repository: repo.full_name.clone(),
                    owner,
                    name,
                    config,
                });
            }
            Ok(None) => {
                found.without_config += 1;
                found.unconfigured.push(repo.clone());
            }
            Err(reason) => found.failed.push(Failed::new(&repo.full_name, &reason)),
        }
    }
    found
}

/// Folders the scanner never reads (build output): a config found there is no source.
/// (The same list as the scanner's walk.)
const BUILD_DIRS: &[&str] = &["bin", "obj"];

/// What to search for: the element names every registry path of the WIF dialects shares
/// (the rules without an appSettings-style `key`), and the file extensions their `files`
/// globs name. With the built-in rules: `issuerNameRegistry` in `*.config` — every
/// WIF 4.5, WIF 3.5 and ValidatingIssuerNameRegistry registry sits under one. A rule set
/// sharing no element gives one term per rule (its own common element). Extensions are
/// empty when a glob is not `*.EXT` (the search is then over every file, filtered after).
pub fn search_terms(rules: &crate::model::rules::RuleSet) -> (Vec<String>, Vec<String>) {
    let registry_rules: Vec<&crate::model::rules::Rule> = rules
        .rules
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.spec.entry.key.is_none() && !r.registry_paths.is_empty())
        .collect();
    let common = |paths: &mut dyn Iterator<Item = &Vec<String>>| -> Vec<String> {
        let mut shared: Option<Vec<String>> = None;
        for path in paths {
            shared = Some(match shared {
                None => path.clone(),
                Some(s) => s.into_iter().filter(|seg| path.contains(seg)).collect(),
            });
        }
        shared.unwrap_or_default()
    };
    // The last shared element is the most specific one (the section name is too common).
    let all = common(&mut registry_rules.iter().flat_map(|r| r.registry_paths.iter()));
    let mut terms: Vec<String> = match all.last() {
        Some(term) => vec![term.clone()],
        None => registry_rules
            .iter()
            .filter_map(|r| common(&mut r.registry_paths.iter()).last().cloned())
            .collect(),
    };
    terms.sort();
    terms.dedup();
    let mut extensions = Vec::new();
    for rule in &registry_rules {
        for glob in &rule.spec.files {
            match glob.strip_prefix("*.") {
                Some(ext) if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    extensions.push(ext.to_ascii_lowercase())
                }
                _ => return (terms, Vec::new()),
            }
        }
    }
    extensions.sort();
    extensions.dedup();
    (terms, extensions)
}

/// The code search queries: one per term, extension and owner (`org:` for organisations,
/// `user:` for users; an installation may span several).
fn queries(
    scope: &Scope,
    rules: &crate::model::rules::RuleSet,
    repos: &[Repository],
) -> Vec<String> {
    let (terms, extensions) = search_terms(rules);
    let owners: Vec<String> = match scope {
        Scope::Org(org) => vec![format!("org:{org}")],
        Scope::Installation => {
            let mut owners: Vec<String> = repos
                .iter()
                .filter_map(|r| {
                    let login = r
                        .owner
                        .as_ref()
                        .map(|o| o.login.clone())
                        .or_else(|| r.full_name.split_once('/').map(|(o, _)| o.to_string()))?;
                    let user = r
                        .owner
                        .as_ref()
                        .and_then(|o| o.kind.as_deref())
                        .is_some_and(|k| k == "User");
                    Some(format!("{}:{login}", if user { "user" } else { "org" }))
                })
                .collect();
            owners.sort();
            owners.dedup();
            owners
        }
    };
    let extensions: Vec<Option<&String>> = if extensions.is_empty() {
        vec![None]
    } else {
        extensions.iter().map(Some).collect()
    };
    let mut out = Vec::new();
    for term in &terms {
        for extension in &extensions {
            for owner in &owners {
                out.push(match extension {
                    Some(ext) => format!("{term} extension:{ext} {owner}"),
                    None => format!("{term} {owner}"),
                });
            }
        }
    }
    out
}

/// Why a code search failed, in words a person can act on.
fn refusal(error: &GitHubError) -> String {
    let why = match error {
        GitHubError::Status { status: 401, .. } => "GitHub refused the token for code search (401)",
        GitHubError::Status { status: 403, .. } => {
            "GitHub refused code search for this token (403): App installation tokens cannot search code on every GitHub, and the token needs read access to the repositories' contents; run discover --onboarding with a token that can search the organisation's code"
        }
        GitHubError::Status { status: 404, .. } => {
            "this GitHub has no code search endpoint (404; GitHub Enterprise Server without code search?)"
        }
        GitHubError::Status { status: 422, .. } => {
            "GitHub would not run the code search query (422)"
        }
        GitHubError::RateLimited { .. } => {
            "code search's rate limit (30 calls a minute) asked to wait longer than keyroll waits"
        }
        _ => "code search failed",
    };
    format!(
        "{why}: {}",
        crate::model::secret::redact(&error.to_string())
    )
}

/// Searches code for WIF configs and keeps the repositories among `unconfigured` (listed,
/// not skipped, looked up, no keyroll.toml) that hold one the rules recognise.
async fn onboarding(
    github: &GitHub,
    scope: &Scope,
    rules: &crate::model::rules::RuleSet,
    unconfigured: &[Repository],
    config: &str,
    calls: &mut Calls,
) -> (Vec<OnboardingEntry>, OnboardingSearch) {
    let queries = queries(scope, rules, unconfigured);
    let wanted: std::collections::BTreeSet<&str> =
        unconfigured.iter().map(|r| r.full_name.as_str()).collect();
    let mut notes: Vec<String> = Vec::new();
    if unconfigured.is_empty() {
        return (
            Vec::new(),
            OnboardingSearch {
                queries: Vec::new(),
                complete: true,
                note: None,
            },
        );
    }
    if queries.is_empty() {
        notes.push("the rules name no registry element to search for".into());
    }
    let found = search(github, rules, &queries, &wanted, calls, &mut notes).await;
    let entries = onboarding_entries(found, config);
    let complete = notes.is_empty();
    (
        entries,
        OnboardingSearch {
            queries,
            complete,
            // Printed as a warning: the queries hold owners' logins and the notes GitHub's
            // answers, escaped so that neither can start a line.
            note: (!complete)
                .then(|| crate::render::sanitize::printable(&notes.join("; ")).into_owned()),
        },
    )
}

/// Repository → the config files of it the queries found (the rules' files, outside build
/// output, in a `wanted` repository). Why a query fell short goes to `notes`.
async fn search(
    github: &GitHub,
    rules: &crate::model::rules::RuleSet,
    queries: &[String],
    wanted: &std::collections::BTreeSet<&str>,
    calls: &mut Calls,
    notes: &mut Vec<String>,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut found: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    'queries: for query in queries {
        let mut page = 1;
        loop {
            calls.search += 1;
            let result = match github.search_code(query, page).await {
                Ok(result) => result,
                Err(e) => {
                    notes.push(format!("query \"{query}\": {}", refusal(&e)));
                    // A refusal is the token's, not the query's: the next would fail alike.
                    if matches!(e.status(), Some(401 | 403 | 404))
                        || matches!(e, GitHubError::RateLimited { .. })
                    {
                        break 'queries;
                    }
                    break;
                }
            };
            if result.incomplete_results {
                notes.push(format!(
                    "query \"{query}\": GitHub reports incomplete results (its search timed out)"
                ));
            }
            if page == 1 && result.total_count > crate::act::github::SEARCH_RESULT_LIMIT {
                notes.push(format!(
                    "query \"{query}\": {} files match; GitHub returns the first {} only",
                    result.total_count,
                    crate::act::github::SEARCH_RESULT_LIMIT
                ));
            }
            for hit in result.items {
                let file_name = hit.path.rsplit('/').next().unwrap_or(&hit.path);
                let in_build_output = hit
                    .path
                    .split('/')
                    .rev()
                    .skip(1)
                    .any(|dir| BUILD_DIRS.iter().any(|b| dir.eq_ignore_ascii_case(b)));
                if in_build_output
                    || !rules.applies_to_file(file_name)
                    || !wanted.contains(hit.repository.full_name.as_str())
                {
                    continue;
                }
                found
                    .entry(hit.repository.full_name.clone())
                    .or_default()
                    .insert(hit.path);
            }
            if !result.more {
                break;
            }
            page += 1;
        }
    }
    found
}

/// One entry per repository found, its files sorted; keyroll.toml would go to `config`.
fn onboarding_entries(
    found: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    config: &str,
) -> Vec<OnboardingEntry> {
    found
        .into_iter()
        .map(|(repository, files)| {
            let (owner, name) = repository
                .split_once('/')
                .map(|(o, n)| (o.to_string(), n.to_string()))
                .unwrap_or_default();
            OnboardingEntry {
                repository,
                owner,
                name,
                config: config.to_string(),
                files: files.into_iter().collect(),
            }
        })
        .collect()
}

/// `$GITHUB_OUTPUT` lines: `batch-count`, `repositories` (how many), and `matrix-1` …
/// `matrix-N`, each a `strategy.matrix` value (`{"include":[…]}`) for one matrix job. With
/// `--onboarding`: `onboarding-count` and `onboarding-matrix` (the first 256; how many wait
/// for a later run in `onboarding-deferred`), and `onboarding-note` when the list is not
/// complete.
pub fn outputs(discovery: &Discovery) -> String {
    let mut out =
        crate::render::sanitize::output_entry("batch-count", &discovery.batches.len().to_string());
    out.push_str(&crate::render::sanitize::output_entry(
        "repositories",
        &discovery.repositories.len().to_string(),
    ));
    for (i, batch) in discovery.batches.iter().enumerate() {
        out.push_str(&crate::render::sanitize::output_entry(
            &format!("matrix-{}", i + 1),
            &serde_json::to_string(batch).expect("batch serializes"),
        ));
    }
    if let Some(entries) = &discovery.onboarding {
        // One matrix: the first 256 (the Actions limit); the rest wait for a later run
        // (onboarding PRs are not urgent, and each run opens at most this many).
        let include: Vec<&OnboardingEntry> = entries.iter().take(MATRIX_LIMIT).collect();
        out.push_str(&crate::render::sanitize::output_entry(
            "onboarding-count",
            &include.len().to_string(),
        ));
        out.push_str(&crate::render::sanitize::output_entry(
            "onboarding-matrix",
            &serde_json::json!({ "include": include }).to_string(),
        ));
        if entries.len() > MATRIX_LIMIT {
            out.push_str(&crate::render::sanitize::output_entry(
                "onboarding-deferred",
                &(entries.len() - MATRIX_LIMIT).to_string(),
            ));
        }
    }
    if let Some(note) = discovery
        .onboarding_search
        .as_ref()
        .and_then(|s| s.note.as_ref())
    {
        out.push_str(&crate::render::sanitize::output_entry(
            "onboarding-note",
            &crate::render::sanitize::one_line(note),
        ));
    }
    out
}
