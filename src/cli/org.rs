//! The organisation commands' runners (`snapshot`, `discover`, `onboard`, `dashboard`):
//! calls into the library, output and exit codes. Their arguments are defined with the
//! others, in `cli/mod.rs`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use keyroll::act::dashboard::{self, Published, RepoResult};
use keyroll::act::github::GitHub;
use keyroll::act::github::target::{self, Given, Target};
use keyroll::load::snapshot::Manifest;
use keyroll::model::clock::Clock;

use crate::cli::io::{self, Threads, count, env, print_as_is, retry_policy, say};
use crate::cli::{DashboardArgs, DiscoverArgs, Format, OnboardArgs, SnapshotArgs};

/// The organisation commands' look-ups run side by side on two worker threads.
fn runtime() -> Result<tokio::runtime::Runtime> {
    io::runtime(Threads::Workers(2))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
                say(&format!(
                    "warning: {}: {} (recorded: every repository reading this snapshot reports it)",
                    issuer.name, error
                ));
            }
        }
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&manifest)? + "\n",
        Format::Text => snapshot_text(&manifest, &args.out),
    };
    print_as_is(&out)?;
    if failures > 0 {
        say(&format!(
            "{} failed; the snapshot records why",
            count(failures, "source")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The snapshot written to `out`, one entry per source, for people.
fn snapshot_text(manifest: &Manifest, out: &Path) -> String {
    let mut text = format!(
        "snapshot {} ({}): {}\n",
        out.display(),
        manifest.taken_at,
        count(manifest.documents.len(), "document")
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

pub fn discover(args: DiscoverArgs) -> Result<ExitCode> {
    let given = Given {
        api_url: args.api_url.clone(),
        token: args.token.clone(),
        ..Default::default()
    };
    let target = target::resolve(given, env);
    let token = target.token.context("discover needs a token: an App installation token, or with --org one that can read the organisation (--token or GITHUB_TOKEN)")?;
    let github = GitHub::new(&target.api_url, Some(token), false, retry_policy());
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
        say(&format!(
            "warning: {}: {}",
            failed.repository, failed.reason
        ));
    }
    if let Some(search) = &discovery.onboarding_search
        && let Some(note) = &search.note
    {
        // Not an error: the matrix is whole; only the onboarding list is not.
        say(&format!(
            "warning: the onboarding list is not complete: {note}"
        ));
    }
    if let Some(path) = &args.write_outputs {
        io::append(path, &keyroll::act::discover::outputs(&discovery))?;
    }
    print_as_is(&(serde_json::to_string_pretty(&discovery)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

pub fn dashboard(args: DashboardArgs, clock: Clock) -> Result<ExitCode> {
    let results = dashboard::read_results(&args.results)?;
    let discovery = match &args.discovery {
        Some(path) => Some(read_discovery(path)?),
        None => None,
    };
    let given = Given {
        repo: args.repo.clone(),
        api_url: args.api_url.clone(),
        token: args.token.clone(),
        missing: "which repository holds the dashboard? Set --repo OWNER/NAME",
        ..Default::default()
    };
    let target = target::resolve(given, env);
    // Pull requests are linked only on the GitHub this run talks to: the runner's server,
    // else the web server of the API URL (a GitHub Enterprise Server run outside Actions).
    let server = env("GITHUB_SERVER_URL")
        .or_else(|| dashboard::server_of_api(&target.api_url))
        .unwrap_or_else(|| "https://github.com".into());
    let now = rfc3339(clock.now());
    let run_url = run_url();
    let render = |limit| {
        dashboard::render_linked(
            &results,
            discovery.as_ref(),
            run_url.as_deref(),
            &server,
            &now,
            limit,
        )
    };
    let body = render(dashboard::BODY_LIMIT);
    if let Some(path) = &args.write_summary {
        io::append(path, &render(dashboard::SUMMARY_LIMIT))?;
    }
    if args.no_issue {
        print_as_is(&body)?;
        return Ok(ExitCode::SUCCESS);
    }
    publish_dashboard(&args, target, &results, body)
}

/// `keyroll discover`'s JSON, read back.
fn read_discovery(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not keyroll discover's JSON", path.display()))
}

/// The Actions run this one is, when run in Actions.
fn run_url() -> Option<String> {
    match (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        (Some(server), Some(repo), Some(run)) => Some(format!(
            "{}/{repo}/actions/runs/{run}",
            server.trim_end_matches('/')
        )),
        _ => None,
    }
}

/// The dashboard issue created or updated with `body`; what was done, as JSON on stdout.
fn publish_dashboard(
    args: &DashboardArgs,
    target: Target,
    results: &[RepoResult],
    body: String,
) -> Result<ExitCode> {
    let repo = target.repository()?.clone();
    if target.token.is_none() && !args.dry_run {
        anyhow::bail!(
            "dashboard needs a token with issues: write on {repo} (--token or GITHUB_TOKEN), or --dry-run"
        );
    }
    let github = GitHub::new(&target.api_url, target.token, args.dry_run, retry_policy());
    let published = runtime()?.block_on(dashboard::publish(
        &github,
        &repo,
        &args.title,
        &args.label,
        &body,
    ))?;
    let failed = results
        .iter()
        .filter(|r| !dashboard::row(r).failures.is_empty())
        .count();
    let report = serde_json::json!({
        "repository": repo.to_string(),
        "issue": match published {
            Published::Created(n) => serde_json::json!({"operation": "created", "number": n}),
            Published::Updated(n) => serde_json::json!({"operation": "updated", "number": n}),
        },
        "repositories": results.len(),
        "failed": failed,
        "dry_run": args.dry_run,
        "api_calls": github.calls(),
        "body": body,
    });
    print_as_is(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

pub fn onboard(args: OnboardArgs, clock: Clock) -> Result<ExitCode> {
    let repo = keyroll::load::git::GitRepo::discover(&args.dir)?;
    let given = Given {
        repo: args.repo.clone(),
        api_url: args.api_url.clone(),
        remote: args.remote.clone(),
        origin: repo.remote_url("origin"),
        token: args.token.clone(),
        missing: "which repository? Set --repo OWNER/NAME",
        ..Default::default()
    };
    let target = target::resolve(given, env);
    let repository = target.repository()?.clone();
    let sources = match &args.fetch.snapshot {
        Some(dir) if args.metadata.is_empty() => snapshot_sources(dir)?,
        _ => args.metadata.clone(),
    };
    let options = keyroll::act::onboard::OnboardOptions {
        dry_run: args.dry_run,
        repository,
        api_url: target.api_url,
        remote_url: target.remote_url,
        token: target.token,
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
    match args.format {
        Format::Json => print_as_is(&(serde_json::to_string_pretty(&report)? + "\n"))?,
        // No line of it a runner would run, whatever a repository's config holds.
        Format::Text => io::print(&report.to_text())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Every source the snapshot in `dir` holds that a repository can fetch; why each other
/// one is left out, on stderr.
fn snapshot_sources(dir: &Path) -> Result<Vec<String>> {
    let snapshot = keyroll::load::snapshot::Snapshot::open(dir)?;
    let mut sources = Vec::new();
    for issuer in &snapshot.manifest().issuers {
        for source in &issuer.sources {
            match (&source.error, &source.skipped) {
                // The manifest keeps no credentials: a source that had them is recorded
                // as `https://***@host/…`, which no repository can fetch.
                (None, None) if source.source.contains("://***@") => say(&format!(
                    "warning: {} {}: left out (the snapshot does not store the URL's credentials: name it with --metadata)",
                    issuer.name, source.source
                )),
                (None, None) => sources.push(source.source.clone()),
                (Some(why), _) | (None, Some(why)) => say(&format!(
                    "warning: {} {}: left out ({why})",
                    issuer.name, source.source
                )),
            }
        }
    }
    Ok(sources)
}
