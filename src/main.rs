//! Thin front: parse arguments, call the library, render, choose the exit code.

mod cli;

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

/// mimalloc, not glibc's malloc: reading an aggregate allocates pieces on one thread and
/// frees them on the workers, and glibc kept returning that memory to the kernel and faulting
/// it back in zeroed (an eighth of inspect's time, bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;

use cli::{
    ApplyArgs, Cli, Command, Format, InitArgs, InspectArgs, PlanArgs, PrArgs, ScanArgs, ScanFormat,
    ThumbprintArgs,
};
use keyroll::load::fetch::Fetcher;
use keyroll::model::cert::Certificate;
use keyroll::model::clock::{Clock, parse_rfc3339};
use keyroll::model::secret::redact;
use keyroll::model::thumbprint;
use keyroll::render;
use keyroll::render::sanitize::{json_controls, no_commands, printable, printable_block};

fn main() -> ExitCode {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { cli::unset_empty_env() };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            say_error(&error);
            ExitCode::from(1)
        }
    }
}

/// Usage errors keep the documented exit codes: `scan` exits 2 ("could not run", as
/// linters do); every other command exits 1 — never 2, which `plan --detailed-exitcode`
/// uses for "changes pending". Help and version exit 0.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
    }
    let subcommand = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-') && cli::SUBCOMMANDS.contains(&a.as_str()));
    if subcommand.as_deref() == Some("scan") {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let clock = match &cli.now {
        Some(text) => Clock::Fixed(parse_rfc3339(text).map_err(anyhow::Error::msg)?),
        None => Clock::System,
    };
    match cli.command {
        Command::Thumbprint(args) => thumbprint_command(args),
        Command::Inspect(args) => inspect_command(args, clock),
        Command::Scan(args) => scan_command(args, clock),
        Command::Plan(args) => plan_command(args.plan, clock, false, args.out.as_deref()),
        Command::Apply(args) => apply_command(args, clock),
        Command::Init(args) => init_command(args, clock),
        Command::Pr(args) => pr_command(args, clock),
        Command::Snapshot(args) => cli::org::snapshot(args, clock),
        Command::Onboard(args) => cli::org::onboard(args, clock),
        Command::Discover(args) => cli::org::discover(args),
        Command::Dashboard(args) => cli::org::dashboard(args, clock),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "keyroll", &mut out);
            print_stdout(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: Some(dir) } => {
            let command = <Cli as clap::CommandFactory>::command();
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("writing the man pages into {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: None } => {
            let command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .context("rendering the man page")?;
            print_stdout(&String::from_utf8_lossy(&out))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn thumbprint_command(args: ThumbprintArgs) -> Result<ExitCode> {
    if args.check {
        return check_command(&args);
    }
    let bytes = if args.input == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buffer)
            .context("reading the certificate from stdin")?;
        buffer
    } else {
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input))?
    };
    let cert = Certificate::from_file_bytes(&bytes).with_context(|| {
        let name = if args.input == "-" {
            "stdin"
        } else {
            &args.input
        };
        format!("{name}: not a certificate")
    })?;
    let out = match args.format {
        Format::Json => {
            json_controls(&serde_json::to_string_pretty(
                &render::CertificateJson::new(&cert),
            )?)
            .into_owned()
                + "\n"
        }
        Format::Text if args.sha256 => format!("{}\n", cert.sha256_hex()),
        Format::Text => format!("{}\n", cert.sha1),
    };
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn check_command(args: &ThumbprintArgs) -> Result<ExitCode> {
    let report = if args.x5t {
        thumbprint::check_x5t(&args.input)
    } else {
        thumbprint::check(&args.input)
    };
    if args.format == Format::Json {
        let json = serde_json::json!({
            "valid": report.result.is_ok(),
            "thumbprint": report.thumbprint(),
            "notation": report.notation,
            "lowercase": report.lowercase,
            "removed": report.removed,
            "error": report.result.as_ref().err().map(|e| e.to_string()),
        });
        print_stdout(&(json_controls(&serde_json::to_string_pretty(&json)?) + "\n"))?;
    } else {
        // stdout stays the bare thumbprint for scripts; which notation was read goes beside
        // the notes, so an x5t reading is never silent.
        eprintln!("read as {}", report.notation.describe());
        for note in &report.removed {
            eprintln!("removed {}", printable(&note.to_string()));
        }
        match &report.result {
            Ok(thumbprint) => print_stdout(&format!("{thumbprint}\n"))?,
            Err(error) => eprintln!(
                "error: not a valid SHA-1 thumbprint: {}",
                printable(&error.to_string())
            ),
        }
    }
    Ok(if report.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn inspect_command(args: InspectArgs, clock: Clock) -> Result<ExitCode> {
    let runtime = runtime()?;
    let fetcher = Fetcher::new(args.fetch.options())?;
    let now = clock.now();
    let doc = runtime.block_on(keyroll::load::metadata::load(&args.source, &fetcher, now))?;
    match args.format {
        // Written as made: an aggregate's 40,000 rows are tens of megabytes of JSON.
        Format::Json => {
            write_stdout(|out| render::write_inspect_json(&doc, now, args.warn_days, out))?
        }
        Format::Text => print_stdout(&render::inspect_text(&doc, now, args.warn_days))?,
    }
    // The process ends here: an aggregate's 40,000 keys are left to the exit, not freed one
    // by one (their memory was allocated on the stream's worker threads).
    std::mem::forget(doc);
    Ok(ExitCode::SUCCESS)
}

/// Linters' convention: 0 clean, 1 error-level findings, 2 could not run.
fn scan_command(args: ScanArgs, clock: Clock) -> Result<ExitCode> {
    let could_not_run = |e: anyhow::Error| {
        say_error(&e);
        Ok(ExitCode::from(2))
    };
    let rules = match args.rules.load() {
        Ok(rules) => rules,
        Err(e) => return could_not_run(e.into()),
    };
    let now = clock.now();
    let mut known = keyroll::load::scan::KnownCertificates {
        now: Some(now),
        warn_days: args.warn_days,
        ..Default::default()
    };
    // (source, whether its failure stops the scan): sources named on the command line must
    // load; keyroll.toml's issuers are best effort, as `pr` reports a failed issuer itself.
    let mut sources: Vec<(String, bool)> =
        args.metadata.iter().map(|s| (s.clone(), true)).collect();
    let mut config_root = None;
    if let Some(config) = &args.config {
        let settings = match keyroll::model::settings::Settings::load(config) {
            Ok(settings) => settings,
            Err(e) => return could_not_run(e.into()),
        };
        for issuer in &settings.issuers {
            for source in &issuer.metadata {
                sources.push((settings.resolve_source(source), false));
            }
        }
        config_root = Some(settings.root.clone());
    }
    if !sources.is_empty() {
        let runtime = runtime()?;
        let fetcher = Fetcher::new(args.fetch.options())?;
        for (source, required) in &sources {
            let doc = match runtime.block_on(keyroll::load::metadata::load(source, &fetcher, now)) {
                Ok(doc) => doc,
                Err(e) if !required => {
                    eprintln!(
                        "warning: {} (skipped: no expiry findings for its keys)",
                        printable(&redact(&e.to_string()))
                    );
                    continue;
                }
                Err(e) => return could_not_run(e.into()),
            };
            for key in doc.keys {
                known
                    .by_thumbprint
                    .insert(key.thumbprint(), key.certificate);
            }
        }
    }
    let paths = if args.paths.is_empty() {
        vec![config_root.unwrap_or_else(|| std::path::PathBuf::from("."))]
    } else {
        args.paths
    };
    let result =
        match keyroll::load::scan::scan_paths_with_threads(&paths, &rules, &known, args.threads) {
            Ok(result) => result,
            Err(e) => return could_not_run(e.into()),
        };
    match args.format {
        ScanFormat::Text if args.transforms => {
            print_stdout(&(render::scan_text(&result) + &render::scan_transforms(&result)))?
        }
        ScanFormat::Text => print_stdout(&render::scan_text(&result))?,
        // Written as made, as inspect's: a large estate's JSON is megabytes.
        ScanFormat::Json => write_stdout(|out| render::write_scan_json(&result, out))?,
        ScanFormat::Sarif => print_stdout(&json_controls(&render::scan_sarif(&result)))?,
        // Runner commands by design, each escaped by the runner's own rules (`escape_data`).
        ScanFormat::Github => print_commands(&render::scan_github(&result))?,
    }
    let code = match result.worst() {
        Some(keyroll::load::scan::Severity::Error) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    };
    // The process ends here: thousands of parsed files are left to the exit, not freed one
    // by one.
    std::mem::forget(result);
    Ok(code)
}

/// One writer per folder: the lock is held from before the inputs are read until the writes
/// are done, so a second run plans from the first one's result.
fn apply_command(args: ApplyArgs, clock: Clock) -> Result<ExitCode> {
    let settings = keyroll::model::settings::Settings::load(&args.plan.config)?;
    let _lock = keyroll::act::write::RunLock::acquire(
        &settings.root,
        std::time::Duration::from_secs(args.lock_timeout),
    )?;
    let Some(file) = &args.saved_plan else {
        return plan_command(args.plan, clock, true, None);
    };
    let saved = keyroll::act::saved::SavedPlan::read(file)?;
    let rules = args.plan.rules.load()?;
    let fetcher = Fetcher::new(args.plan.fetch.options())?;
    let mut inputs = runtime()?.block_on(keyroll::load::load(
        &settings,
        &rules,
        &fetcher,
        &keyroll::load::Tree::Work,
        clock.now(),
    ))?;
    // Decided again as `plan` decided it: the same acceptances must be given again.
    inputs.accept_identity_change = args.plan.accept_identity_change.iter().cloned().collect();
    let applied = saved.apply(file, &inputs, &rules)?;
    eprintln!(
        "plan {} (as of {})",
        printable(&file.display().to_string()),
        printable(&saved.as_of)
    );
    report_applied(&applied);
    for warning in &saved.warnings {
        eprintln!("warning: {}", printable(warning));
    }
    for error in &saved.errors {
        eprintln!("error: {}", printable(error));
    }
    if !saved.errors.is_empty() {
        // A saved plan keeps its errors as text: whether each names a file is not known here.
        anyhow::bail!(
            "the saved plan has {} {}: what {} was not written (every other change was)",
            saved.errors.len(),
            if saved.errors.len() == 1 {
                "error"
            } else {
                "errors"
            },
            if saved.errors.len() == 1 {
                "it names"
            } else {
                "they name"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn report_applied(applied: &keyroll::act::Applied) {
    if !applied.swept.removed.is_empty() {
        eprintln!(
            "removed {} stale staged file{} left by an interrupted run",
            applied.swept.removed.len(),
            if applied.swept.removed.len() == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    for (path, why) in &applied.swept.failed {
        eprintln!(
            "warning: could not remove the stale staged file {}: {}",
            printable(&path.display().to_string()),
            printable(&why.to_string())
        );
    }
    eprintln!(
        "applied: {} file{} written{}",
        applied.files.len(),
        if applied.files.len() == 1 { "" } else { "s" },
        if applied.lock {
            ", keyroll.lock updated"
        } else {
            ""
        }
    );
}

fn plan_command(
    args: PlanArgs,
    clock: Clock,
    apply: bool,
    out: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let settings = keyroll::model::settings::Settings::load(&args.config)?;
    let rules = args.rules.load()?;
    let fetcher = Fetcher::new(args.fetch.options())?;
    let now = clock.now();
    let mut inputs = runtime()?.block_on(keyroll::load::load(
        &settings,
        &rules,
        &fetcher,
        &keyroll::load::Tree::Work,
        now,
    ))?;
    inputs.accept_identity_change = args.accept_identity_change.iter().cloned().collect();
    let plan = keyroll::decide::decide(&inputs, &rules, now);
    if let Some(file) = out {
        let lock =
            keyroll::act::saved::lock_bytes(&settings, &keyroll::load::Tree::Work, &inputs.lock)?;
        keyroll::act::saved::SavedPlan::new(&inputs, &plan, lock.as_deref()).write(file)?;
        eprintln!(
            "saved the plan to {0}: `keyroll apply {0}` writes exactly it",
            printable(&file.display().to_string())
        );
    }
    let out = match args.format {
        Format::Json => json_controls(&render::plan_json(&plan)).into_owned(),
        Format::Text => {
            use std::io::IsTerminal as _;
            render::plan_text(&plan, std::io::stdout().is_terminal())
        }
    };
    print_stdout(&out)?;
    for warning in &plan.warnings {
        eprintln!("warning: {}", printable(warning));
    }
    if apply {
        // One file's error never blocks the others: what could be planned is written.
        let applied = keyroll::act::apply(&plan, &inputs)?;
        report_applied(&applied);
    }
    if !plan.errors.is_empty() {
        let files = plan.errors.iter().map(|e| e.file());
        anyhow::bail!("{}", errors_not_written(files, apply));
    }
    if apply {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn pr_command(args: PrArgs, clock: Clock) -> Result<ExitCode> {
    use keyroll::act::github::{GitHub, RepoName, RetryPolicy};
    let settings = keyroll::model::settings::Settings::load(&args.plan.config)?;
    let rules = args.plan.rules.load()?;
    let fetcher = Fetcher::new(args.plan.fetch.options())?;
    let now = clock.now();
    let saved = match &args.saved_plan {
        Some(file) => Some((file, keyroll::act::saved::SavedPlan::read(file)?)),
        None => None,
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let in_actions = env("GITHUB_ACTIONS").as_deref() == Some("true");
    let origin = keyroll::load::git::GitRepo::discover(&settings.root)
        .ok()
        .and_then(|r| r.remote_url("origin"));

    let repository_text = args
        .repo
        .clone()
        .or_else(|| settings.pr.repository.clone())
        .or_else(|| env("GITHUB_REPOSITORY"))
        .or_else(|| {
            origin
                .as_deref()
                .and_then(RepoName::from_remote_url)
                .map(|r| r.to_string())
        })
        .context(
            "which GitHub repository? Set --repo OWNER/NAME or [pr] repository in keyroll.toml",
        )?;
    let repository = RepoName::parse(&repository_text)
        .with_context(|| format!("{repository_text:?} is not OWNER/NAME"))?;
    let api_url = args
        .api_url
        .clone()
        .or_else(|| settings.pr.api_url.clone())
        .or_else(|| env("GITHUB_API_URL"))
        .unwrap_or_else(|| "https://api.github.com".into());
    let remote_url = args.remote.clone().or(origin).or_else(|| {
        env("GITHUB_SERVER_URL")
            .map(|server| format!("{}/{}.git", server.trim_end_matches('/'), repository))
    });

    let runtime = runtime()?;
    let mut token = args.token.clone().filter(|t| !t.is_empty());
    if let (Some(app_id), Some(key)) = (&args.app_id, &args.app_private_key) {
        let pem = keyroll::act::github::load_app_private_key(key)?;
        let client = GitHub::new(&api_url, None, false, RetryPolicy::default());
        let minted = runtime
            .block_on(client.installation_token(&repository, app_id, &pem))
            .context("getting a GitHub App installation token")?;
        if in_actions {
            // A token minted here is no registered secret yet: the runner hides it in every
            // later log line from now on. (A token given as an input already is one.)
            println!("::add-mask::{}", minted.expose());
        }
        token = Some(minted);
    }

    let options = keyroll::act::pr::PrOptions {
        dry_run: args.dry_run,
        repository,
        api_url,
        remote_url,
        token,
        retry: RetryPolicy::default(),
        body_limit: render::PR_BODY_LIMIT,
    };
    // One plan, read from the commit the pull requests target (not the work tree), with
    // every issuer loaded; each issuer's PR publishes its slice of it.
    let (repo, base) = keyroll::act::pr::prepare(&settings, &options)?;
    let tree = match (&repo, &base.planned_from) {
        (Some(repo), Some((commit, label))) => {
            let prefix = repo
                .relative(&settings.root)
                .filter(|p| p != ".")
                .unwrap_or_default();
            eprintln!(
                "planning against {} ({commit}), not the work tree",
                printable(label)
            );
            keyroll::load::Tree::Git {
                repo,
                commit: *commit,
                prefix,
            }
        }
        _ => keyroll::load::Tree::Work,
    };
    let mut inputs =
        runtime.block_on(keyroll::load::load(&settings, &rules, &fetcher, &tree, now))?;
    inputs.accept_identity_change = args.plan.accept_identity_change.iter().cloned().collect();
    let plan = match &saved {
        // Exactly the saved plan, if what it read is what the base holds now.
        Some((file, saved)) => saved.replan(file, &inputs, &tree, &rules)?,
        None => keyroll::decide::decide(&inputs, &rules, now),
    };
    if matches!(tree, keyroll::load::Tree::Git { .. }) {
        let differ: Vec<&str> = inputs
            .targets
            .iter()
            .filter(|t| std::fs::read(&t.path).ok() != Some(t.file.encoding.encode(&t.file.bytes)))
            .map(|t| t.display.as_str())
            .collect();
        if !differ.is_empty() {
            eprintln!(
                "note: the work tree differs from the base in {}; the pull requests are planned against the base",
                printable(&differ.join(", "))
            );
        }
    }
    // As `plan` does: a stale lock table, a glob matching nothing, a cacheDuration passed.
    for warning in &plan.warnings {
        eprintln!("warning: {}", printable(warning));
    }
    for error in &plan.errors {
        eprintln!("error: {}", printable(&error.to_string()));
    }
    let result = runtime.block_on(keyroll::act::pr::publish(
        &settings,
        &plan,
        &options,
        repo.as_ref(),
        &base,
        now,
    ))?;
    let out = match args.plan.format {
        Format::Json => json_controls(&render::report_json(&result)).into_owned(),
        Format::Text => render::report_text(&result),
    };
    print_stdout(&out)?;
    for (file, text) in [
        (&args.write_outputs, render::actions_outputs(&result)),
        (&args.write_summary, render::actions_summary(&result)),
    ] {
        if let Some(file) = file {
            cli::io::append(file, &text)?;
        }
    }
    if result.failed() {
        anyhow::bail!("an issuer failed; its pull request was left as it was");
    }
    if !plan.errors.is_empty() {
        anyhow::bail!(
            "{} error{}: the files named are left out of the pull requests (every other change is proposed)",
            plan.errors.len(),
            if plan.errors.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends, as the Actions runner expects for its command files.
fn init_command(args: InitArgs, clock: Clock) -> Result<ExitCode> {
    let rules = args.rules.load()?;
    let fetcher = Fetcher::new(args.fetch.options())?;
    let summary = runtime()?.block_on(keyroll::act::init::run(
        &args.dir,
        &args.metadata,
        &rules,
        &fetcher,
        clock.now(),
        args.force,
    ))?;
    print_stdout(&summary.to_text())?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A closed pipe (`keyroll inspect … | head`) is not an error.
/// Writes to stdout as `write` makes the output, redacted line by line: no copy of a long
/// report is held (an aggregate's inspect JSON is tens of megabytes). A closed pipe is not a
/// failure.
fn write_stdout(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> Result<()> {
    let stdout = std::io::stdout().lock();
    // serde_json writes a few bytes at a time: buffered before the escaping and redaction.
    let mut out = std::io::BufWriter::with_capacity(
        64 * 1024,
        JsonControls::new(keyroll::model::secret::RedactLines::new(
            std::io::BufWriter::new(stdout),
        )),
    );
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// The closing error of a run whose plan had errors, saying what was and was not written.
/// `files` holds, per error, the file it names (None when it names none: an issuer whose
/// metadata failed, a time that cannot be computed); `applied` whether the changes were
/// written (`apply`) or only planned (`plan`). Only files an error names are promised to be
/// left alone: an issuer's error leaves out what it names, not a file.
fn errors_not_written<'a>(files: impl Iterator<Item = Option<&'a str>>, applied: bool) -> String {
    let files: Vec<Option<&str>> = files.collect();
    let count = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut named: Vec<String> = files
        .iter()
        .flatten()
        .map(|f| printable(f).into())
        .collect();
    named.sort();
    named.dedup();
    let unnamed = files.iter().filter(|f| f.is_none()).count();
    let mut parts = Vec::new();
    if !named.is_empty() {
        let list = if named.len() <= 5 {
            named.join(", ")
        } else {
            format!(
                "{} ({})",
                count(named.len(), "file"),
                named[..5].join(", ") + ", …"
            )
        };
        parts.push(match (applied, named.len()) {
            (true, 1) => format!("{list} was not written"),
            (true, _) => format!("{list} were not written"),
            (false, _) => format!("apply would not write {list}"),
        });
    }
    if unnamed > 0 {
        let what = if unnamed == 1 {
            "it names"
        } else {
            "they name"
        };
        let error = if unnamed == files.len() {
            String::new()
        } else {
            format!("{} naming no file: ", count(unnamed, "error"))
        };
        parts.push(if applied {
            format!("{error}nothing was planned for what {what}")
        } else {
            format!("{error}apply would plan nothing for what {what}")
        });
    }
    format!(
        "{}{}: {} ({})",
        count(files.len(), "error"),
        if named.is_empty() {
            ", naming no file"
        } else {
            ""
        },
        parts.join("; "),
        if applied {
            "every other change was written"
        } else {
            "it would write every other change"
        }
    )
}

/// The run's error on stderr: redacted, its lines kept (some errors list several problems),
/// any line break or control character of the outside text it quotes escaped, and no line a
/// runner would read as a command.
fn say_error(error: &anyhow::Error) {
    let text = redact(&format!("{error:#}"));
    eprintln!("error: {}", no_commands(&printable_block(&text)));
}

/// Runner commands keyroll means (`scan --format github`): printed as they are.
fn print_commands(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(redact(text).as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// Reports for people (plan, inspect, pr, scan text): redacted, and no line of theirs reads
/// as a runner command whatever a config or metadata put at its start (a diff's context line
/// ` ::error::…` included; the runner trims leading blanks).
/// A writer passing whole lines of JSON on with [`json_controls`] applied (a character is never
/// cut in two: lines end at a `\n` byte, which no UTF-8 sequence holds).
struct JsonControls<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> JsonControls<W> {
    fn new(inner: W) -> Self {
        JsonControls {
            inner,
            pending: Vec::new(),
        }
    }

    fn pass(&mut self, end: usize) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(&self.pending[..end]);
        self.inner.write_all(json_controls(&text).as_bytes())?;
        self.pending.drain(..end);
        Ok(())
    }
}

impl<W: std::io::Write> std::io::Write for JsonControls<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = memchr::memrchr(b'\n', &self.pending) {
            self.pass(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.pass(self.pending.len())?;
        self.inner.flush()
    }
}

fn print_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(no_commands(&redact(text)).as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
