//! `keyroll pr`'s runner: resolves where the pull requests go, plans against the commit they
//! target, publishes, prints what was done and chooses the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use keyroll::act::github::target::{self, Given};
use keyroll::act::pr::{Base, PrOptions};
use keyroll::act::saved::SavedPlan;
use keyroll::decide::plan::Plan;
use keyroll::load::fetch::Fetcher;
use keyroll::load::git::GitRepo;
use keyroll::load::{Inputs, Tree};
use keyroll::model::clock::Clock;
use keyroll::model::settings::Settings;
use keyroll::render;
use keyroll::render::sanitize::{json_controls, printable};

use crate::cli::io::{self, Threads, count, print, retry_policy, say};
use crate::cli::{PlanFormat, PrArgs};

pub fn pr(args: PrArgs, clock: Clock) -> Result<ExitCode> {
    let settings = Settings::load(&args.plan.config)?;
    let rules = args.plan.rules.load()?;
    let fetcher = Fetcher::new(args.plan.fetch.options())?;
    let now = clock.now();
    let saved = match &args.saved_plan {
        Some(file) => Some((file, SavedPlan::read(file)?)),
        None => None,
    };
    let runtime = io::runtime(Threads::Current)?;
    let options = options(&args, &settings, &runtime)?;
    // One plan, read from the commit the pull requests target (not the work tree), with
    // every issuer loaded; each issuer's PR publishes its slice of it.
    let (repo, base) = keyroll::act::pr::prepare(&settings, &options)?;
    let tree = base_tree(&settings, repo.as_ref(), &base);
    let mut inputs =
        runtime.block_on(keyroll::load::load(&settings, &rules, &fetcher, &tree, now))?;
    inputs.accept_identity_change = args.plan.accept_identity_change.iter().cloned().collect();
    let plan = match &saved {
        // Exactly the saved plan, if what it read is what the base holds now.
        Some((file, saved)) => saved.replan(file, &inputs, &tree, &rules, now)?,
        None => keyroll::decide::decide(&inputs, &rules, now),
    };
    say_planned(&inputs, &tree, &plan);
    let result = runtime.block_on(keyroll::act::pr::publish(
        &settings,
        &plan,
        &options,
        repo.as_ref(),
        &base,
        now,
    ))?;
    report(&args, &result, &plan)
}

/// Where the pull requests go and how: the repository, API URL and remote resolved from the
/// flags, keyroll.toml, the Actions environment and the origin remote; the token given, or
/// one minted for the GitHub App.
fn options(
    args: &PrArgs,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> Result<PrOptions> {
    let origin = GitRepo::discover(&settings.root)
        .ok()
        .and_then(|r| r.remote_url("origin"));
    let given = Given {
        repo: args.repo.clone(),
        configured_repo: settings.pr.repository.clone(),
        api_url: args.api_url.clone(),
        configured_api_url: settings.pr.api_url.clone(),
        remote: args.remote.clone(),
        origin,
        token: args.token.clone(),
        missing: "which GitHub repository? Set --repo OWNER/NAME or [pr] repository in keyroll.toml",
    };
    let mut target = target::resolve(given, io::env);
    let repository = target.repository()?.clone();
    if let (Some(app_id), Some(key)) = (&args.app_id, &args.app_private_key) {
        let minted = runtime.block_on(target.mint_app_token(app_id, key))?;
        if io::env("GITHUB_ACTIONS").as_deref() == Some("true") {
            // A token minted here is no registered secret yet: the runner hides it in every
            // later log line from now on. (A token given as an input already is one.) The
            // one line printed unredacted, as the runner must read the token itself.
            println!("::add-mask::{}", minted.expose());
        }
    }
    Ok(PrOptions {
        dry_run: args.dry_run,
        repository,
        api_url: target.api_url,
        remote_url: target.remote_url,
        token: target.token,
        retry: retry_policy(),
        body_limit: render::PR_BODY_LIMIT,
    })
}

/// The tree the plan is read from: the base commit when there is one, else the work tree.
fn base_tree<'a>(settings: &Settings, repo: Option<&'a GitRepo>, base: &Base) -> Tree<'a> {
    let (Some(repo), Some((commit, label))) = (repo, &base.planned_from) else {
        return Tree::Work;
    };
    let prefix = repo
        .relative(&settings.root)
        .filter(|p| p != ".")
        .unwrap_or_default();
    say(&format!(
        "planning against {} ({commit}), not the work tree",
        printable(label)
    ));
    Tree::Git {
        repo,
        commit: *commit,
        prefix,
    }
}

/// What the plan leaves to say before publishing: the files the work tree changed since the
/// base, and (as `plan` does) its warnings and errors: a stale lock table, a glob matching
/// nothing, a cacheDuration passed.
fn say_planned(inputs: &Inputs, tree: &Tree, plan: &Plan) {
    if matches!(tree, Tree::Git { .. }) {
        let differ = inputs.differing_from_work_tree();
        if !differ.is_empty() {
            say(&format!(
                "note: the work tree differs from the base in {}; the pull requests are planned against the base",
                printable(&differ.join(", "))
            ));
        }
    }
    for warning in &plan.warnings {
        say(&format!("warning: {}", printable(warning)));
    }
    for error in &plan.errors {
        say(&format!("error: {}", printable(&error.to_string())));
    }
}

/// What the run did, on stdout and in the runner's files; the exit code.
fn report(args: &PrArgs, result: &keyroll::act::pr::PrReport, plan: &Plan) -> Result<ExitCode> {
    let out = match args.plan.format {
        PlanFormat::Json => json_controls(&render::report_json(result)).into_owned(),
        PlanFormat::Markdown => render::actions_summary(result, plan.now),
        PlanFormat::Text => render::report_text(result),
    };
    print(&out)?;
    let files: [(&Option<PathBuf>, String); 2] = [
        (&args.write_outputs, render::actions_outputs(result)),
        (
            &args.write_summary,
            render::actions_summary(result, plan.now),
        ),
    ];
    for (file, text) in files {
        if let Some(file) = file {
            io::append(file, &text)?;
        }
    }
    if result.failed() {
        anyhow::bail!("an issuer failed; its pull request was left as it was");
    }
    if !plan.errors.is_empty() {
        anyhow::bail!(
            "{}: the files named are left out of the pull requests (every other change is proposed)",
            count(plan.errors.len(), "error")
        );
    }
    Ok(ExitCode::SUCCESS)
}
