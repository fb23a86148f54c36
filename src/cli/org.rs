//! The organisation commands' front (`snapshot`, `discover`, `onboard`, `dashboard`): arguments, calls
//! into the library, output and exit codes. Kept apart from main.rs so that file only
//! dispatches to them.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

use keyroll::act::github::{GitHub, RepoName, RetryPolicy, Secret};
use keyroll::model::clock::Clock;

use crate::cli::{FetchArgs, Format, RulesArgs};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The central keyroll.toml naming every issuer (targets are not read).
    #[arg(long, default_value = "keyroll.toml", value_name = "FILE")]
    pub config: std::path::PathBuf,

    /// The folder to write (created; manifest.json and documents/ are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// List an organisation's repositories (GET /orgs/ORG/repos) instead of the App
    /// installation's (GET /installation/repositories, which needs an installation token).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,

    /// Where keyroll.toml may be in a repository (repeatable, tried in order).
    #[arg(long = "path", default_value = "keyroll.toml", value_name = "PATH")]
    pub paths: Vec<String>,

    #[arg(long)]
    pub include_archived: bool,
    #[arg(long)]
    pub include_disabled: bool,
    #[arg(long)]
    pub include_forks: bool,

    /// Repositories per matrix (GitHub Actions runs at most 256 jobs per matrix).
    #[arg(long, default_value_t = keyroll::act::discover::MATRIX_LIMIT, value_name = "N")]
    pub batch_size: usize,

    /// Look-ups in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrency: usize,

    /// Also list, under "onboarding", the repositories with WIF configs (as the dialect rules
    /// recognise them) but no keyroll.toml, found with GitHub's code search. When the token
    /// may not search code, "onboarding_search" says why and that the list is not complete.
    #[arg(long)]
    pub onboarding: bool,

    #[command(flatten)]
    pub rules: RulesArgs,

    /// An installation token (or, with --org, a token that can read the organisation).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = Secret::parse_arg
    )]
    pub token: Option<Secret>,

    /// GitHub API base (default: GITHUB_API_URL, https://api.github.com).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Append `batch-count`, `repositories` and `matrix-1` … `matrix-N` (with --onboarding also
    /// `onboarding-count` and `onboarding-matrix`) to FILE ($GITHUB_OUTPUT).
    #[arg(long, value_name = "FILE")]
    pub write_outputs: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// owner/name of the repository to onboard (default: GITHUB_REPOSITORY, the origin remote).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    /// A clone of the repository (its base branch is fetched into it; the work tree is not read).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: std::path::PathBuf,

    /// Issuer metadata URL (repeatable). Default with --snapshot: every source the snapshot holds.
    #[arg(long, value_name = "URL")]
    pub metadata: Vec<String>,

    /// Where keyroll.toml goes in the repository (its folder is what init scans).
    #[arg(long, default_value = "keyroll.toml", value_name = "PATH")]
    pub config_path: String,

    /// The branch the pull request targets (default: the repository's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,

    /// Show the files, the pull request and every API call; push nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// A token with contents: write and pull-requests: write on the repository.
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = Secret::parse_arg
    )]
    pub token: Option<Secret>,

    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// git remote to fetch from and push to (default: origin, else GITHUB_SERVER_URL/owner/name.git).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,

    #[command(flatten)]
    pub rules: RulesArgs,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// A folder of per-repository results (sub-folders with repository.txt, pr.json, stderr.txt, exit-code.txt).
    #[arg(long, value_name = "DIR")]
    pub results: std::path::PathBuf,

    /// `keyroll discover`'s JSON: its skipped and failed repositories are listed too.
    #[arg(long, value_name = "FILE")]
    pub discovery: Option<std::path::PathBuf>,

    /// The central repository that holds the dashboard issue (default: GITHUB_REPOSITORY).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    #[arg(long, default_value = keyroll::act::dashboard::DEFAULT_TITLE)]
    pub title: String,

    /// The label that finds the issue in one call (the hidden marker is checked too).
    #[arg(long, default_value = keyroll::act::dashboard::DEFAULT_LABEL)]
    pub label: String,

    /// Print the body and the API calls; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Only write the job summary / print the body: no issue.
    #[arg(long)]
    pub no_issue: bool,

    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = Secret::parse_arg
    )]
    pub token: Option<Secret>,

    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Append the Markdown table to FILE ($GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub write_summary: Option<std::path::PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn api_url(given: &Option<String>) -> String {
    given
        .clone()
        .or_else(|| env("GITHUB_API_URL"))
        .unwrap_or_else(|| "https://api.github.com".into())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(keyroll::model::secret::redact(text).as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

pub fn snapshot(args: SnapshotArgs, clock: Clock) -> Result<ExitCode> {
    if args.fetch.snapshot.is_some() {
        anyhow::bail!("snapshot reads the identity providers: --snapshot does not apply to it");
    }
    let settings = keyroll::model::settings::Settings::load(&args.config)?;
    let fetcher = keyroll::load::fetch::Fetcher::new(args.fetch.options())?.recording();
    let now = clock.now();
    let manifest = runtime()?.block_on(keyroll::load::snapshot::take(
        &settings,
        &args.config.display().to_string(),
        &fetcher,
        now,
        &args.out,
    ))?;
    let mut failures = 0;
    for issuer in &manifest.issuers {
        for source in &issuer.sources {
            if let Some(error) = &source.error {
                failures += 1;
                eprintln!(
                    "warning: {}: {} (recorded: every repository reading this snapshot reports it)",
                    issuer.name, error
                );
            }
        }
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&manifest)? + "\n",
        Format::Text => {
            let documents = manifest.documents.len();
            let mut text = format!(
                "snapshot {} ({}): {documents} document{}\n",
                args.out.display(),
                manifest.taken_at,
                if documents == 1 { "" } else { "s" }
            );
            for issuer in &manifest.issuers {
                for source in &issuer.sources {
                    let state = match (&source.error, &source.skipped, &source.signature) {
                        (Some(e), _, _) => format!("failed: {e}"),
                        (_, Some(s), _) => format!("skipped: {s}"),
                        (_, _, Some(sig)) => sig.summary.clone(),
                        _ => "no signature (not SAML)".into(),
                    };
                    text.push_str(&format!(
                        "  {} {}\n    SHA-256 {}  {}\n",
                        issuer.name,
                        source.source,
                        source.sha256.as_deref().unwrap_or("-"),
                        state
                    ));
                }
            }
            text
        }
    };
    print(&out)?;
    if failures > 0 {
        eprintln!(
            "{failures} source{} failed; the snapshot records why",
            if failures == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn discover(args: DiscoverArgs) -> Result<ExitCode> {
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .context("discover needs a token: an App installation token, or with --org one that can read the organisation (--token or GITHUB_TOKEN)")?;
    let github = GitHub::new(&api_url(&args.api_url), Some(token), false, retry_policy());
    let options = keyroll::act::discover::Options {
        scope: match &args.org {
            Some(org) => keyroll::act::discover::Scope::Org(org.clone()),
            None => keyroll::act::discover::Scope::Installation,
        },
        paths: args.paths.clone(),
        include_archived: args.include_archived,
        include_disabled: args.include_disabled,
        include_forks: args.include_forks,
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        onboarding: if args.onboarding {
            Some(args.rules.load()?)
        } else {
            None
        },
    };
    let discovery = runtime()?.block_on(keyroll::act::discover::discover(&github, &options))?;
    for failed in &discovery.failed {
        eprintln!("warning: {}: {}", failed.repository, failed.reason);
    }
    if let Some(search) = &discovery.onboarding_search
        && let Some(note) = &search.note
    {
        // Not an error: the matrix is whole; only the onboarding list is not.
        eprintln!("warning: the onboarding list is not complete: {note}");
    }
    if let Some(path) = &args.write_outputs {
        super::io::append(path, &keyroll::act::discover::outputs(&discovery))?;
    }
    print(&(serde_json::to_string_pretty(&discovery)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Tests shorten the client's waits (`KEYROLL_TEST_FAST_RETRY=1`); real runs keep GitHub's.
fn retry_policy() -> RetryPolicy {
    if env("KEYROLL_TEST_FAST_RETRY").is_some() {
        RetryPolicy {
            attempts: 2,
            backoff: std::time::Duration::from_millis(10),
            max_wait: std::time::Duration::from_secs(1),
        }
    } else {
        RetryPolicy::default()
    }
}

pub fn dashboard(args: DashboardArgs, clock: Clock) -> Result<ExitCode> {
    let results = keyroll::act::dashboard::read_results(&args.results)?;
    let discovery = match &args.discovery {
        Some(path) => Some(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{}: not keyroll discover's JSON", path.display()))?,
        ),
        None => None,
    };
    let run_url = match (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        (Some(server), Some(repo), Some(run)) => Some(format!(
            "{}/{repo}/actions/runs/{run}",
            server.trim_end_matches('/')
        )),
        _ => None,
    };
    let now = rfc3339(clock.now());
    // Pull requests are linked only on the GitHub this run talks to: the runner's server,
    // else the web server of the API URL (a GitHub Enterprise Server run outside Actions).
    let server = env("GITHUB_SERVER_URL")
        .or_else(|| keyroll::act::dashboard::server_of_api(&api_url(&args.api_url)))
        .unwrap_or_else(|| "https://github.com".into());
    let render = |limit| {
        keyroll::act::dashboard::render_linked(
            &results,
            discovery.as_ref(),
            run_url.as_deref(),
            &server,
            &now,
            limit,
        )
    };
    let body = render(keyroll::act::dashboard::BODY_LIMIT);
    if let Some(path) = &args.write_summary {
        super::io::append(path, &render(keyroll::act::dashboard::SUMMARY_LIMIT))?;
    }
    let failed = results
        .iter()
        .filter(|r| !keyroll::act::dashboard::row(r).failures.is_empty())
        .count();
    if args.no_issue {
        print(&body)?;
        return Ok(ExitCode::SUCCESS);
    }
    let repo_text = args
        .repo
        .clone()
        .or_else(|| env("GITHUB_REPOSITORY"))
        .context("which repository holds the dashboard? Set --repo OWNER/NAME")?;
    let repo =
        RepoName::parse(&repo_text).with_context(|| format!("{repo_text:?} is not OWNER/NAME"))?;
    let token = args.token.clone().filter(|t| !t.is_empty());
    if token.is_none() && !args.dry_run {
        anyhow::bail!(
            "dashboard needs a token with issues: write on {repo} (--token or GITHUB_TOKEN), or --dry-run"
        );
    }
    let github = GitHub::new(&api_url(&args.api_url), token, args.dry_run, retry_policy());
    let published = runtime()?.block_on(keyroll::act::dashboard::publish(
        &github,
        &repo,
        &args.title,
        &args.label,
        &body,
    ))?;
    let report = serde_json::json!({
        "repository": repo.to_string(),
        "issue": match published {
            keyroll::act::dashboard::Published::Created(n) => serde_json::json!({"operation": "created", "number": n}),
            keyroll::act::dashboard::Published::Updated(n) => serde_json::json!({"operation": "updated", "number": n}),
        },
        "repositories": results.len(),
        "failed": failed,
        "dry_run": args.dry_run,
        "api_calls": github.calls(),
        "body": body,
    });
    print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

pub fn onboard(args: OnboardArgs, clock: Clock) -> Result<ExitCode> {
    let repo = keyroll::load::git::GitRepo::discover(&args.dir)?;
    let origin = repo.remote_url("origin");
    let repo_text = args
        .repo
        .clone()
        .or_else(|| env("GITHUB_REPOSITORY"))
        .or_else(|| {
            origin
                .as_deref()
                .and_then(RepoName::from_remote_url)
                .map(|r| r.to_string())
        })
        .context("which repository? Set --repo OWNER/NAME")?;
    let repository =
        RepoName::parse(&repo_text).with_context(|| format!("{repo_text:?} is not OWNER/NAME"))?;
    let mut sources = args.metadata.clone();
    if sources.is_empty()
        && let Some(dir) = &args.fetch.snapshot
    {
        let snapshot = keyroll::load::snapshot::Snapshot::open(dir)?;
        for issuer in &snapshot.manifest().issuers {
            for source in &issuer.sources {
                match (&source.error, &source.skipped) {
                    // The manifest keeps no credentials: a source that had them is recorded
                    // as `https://***@host/…`, which no repository can fetch.
                    (None, None) if source.source.contains("://***@") => eprintln!(
                        "warning: {} {}: left out (the snapshot does not store the URL's credentials: name it with --metadata)",
                        issuer.name, source.source
                    ),
                    (None, None) => sources.push(source.source.clone()),
                    (Some(why), _) | (None, Some(why)) => eprintln!(
                        "warning: {} {}: left out ({why})",
                        issuer.name, source.source
                    ),
                }
            }
        }
    }
    let remote_url = args.remote.clone().or(origin).or_else(|| {
        env("GITHUB_SERVER_URL")
            .map(|server| format!("{}/{}.git", server.trim_end_matches('/'), repository))
    });
    let options = keyroll::act::onboard::OnboardOptions {
        dry_run: args.dry_run,
        repository,
        api_url: api_url(&args.api_url),
        remote_url,
        token: args.token.clone().filter(|t| !t.is_empty()),
        retry: retry_policy(),
        base: args.base.clone(),
        config_path: args.config_path.clone(),
        sources,
    };
    let rules = args.rules.load()?;
    let fetcher = keyroll::load::fetch::Fetcher::new(args.fetch.options())?;
    let report = runtime()?.block_on(keyroll::act::onboard::onboard(
        &repo,
        &options,
        &rules,
        &fetcher,
        clock.now(),
    ))?;
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Text => report.to_text(),
    };
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
