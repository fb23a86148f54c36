//! The repository commands' runners (`thumbprint`, `inspect`, `scan`, `plan`, `apply`,
//! `init`): each calls the library, prints what it returned and chooses the exit code.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use keyroll::decide::plan::Plan;
use keyroll::load::fetch::Fetcher;
use keyroll::load::scan::{KnownCertificates, ScanResult, Severity};
use keyroll::load::{Inputs, Tree};
use keyroll::model::cert::Certificate;
use keyroll::model::clock::Clock;
use keyroll::model::rules::RuleSet;
use keyroll::model::secret::redact;
use keyroll::model::settings::Settings;
use keyroll::model::thumbprint;
use keyroll::render;
use keyroll::render::sanitize::{json_controls, printable};

use crate::cli::io::{Threads, count, print, print_as_is, runtime, say, say_error, write_stdout};
use crate::cli::{
    ApplyArgs, Format, InitArgs, InspectArgs, PlanArgs, PlanFormat, ScanArgs, ScanFormat,
    ThumbprintArgs,
};

pub fn thumbprint(args: ThumbprintArgs) -> Result<ExitCode> {
    if args.check {
        return check(&args);
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
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn check(args: &ThumbprintArgs) -> Result<ExitCode> {
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
        print(&(json_controls(&serde_json::to_string_pretty(&json)?) + "\n"))?;
    } else {
        // stdout stays the bare thumbprint for scripts; which notation was read goes beside
        // the notes, so an x5t reading is never silent.
        say(&format!("read as {}", report.notation.describe()));
        for note in &report.removed {
            say(&format!("removed {}", printable(&note.to_string())));
        }
        match &report.result {
            Ok(thumbprint) => print(&format!("{thumbprint}\n"))?,
            Err(error) => say(&format!(
                "error: not a valid SHA-1 thumbprint: {}",
                printable(&error.to_string())
            )),
        }
    }
    Ok(if report.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn inspect(args: InspectArgs, clock: Clock) -> Result<ExitCode> {
    let runtime = runtime(Threads::Current)?;
    let fetcher = Fetcher::new(args.fetch.options())?;
    let now = clock.now();
    let doc = runtime.block_on(keyroll::load::metadata::load(&args.source, &fetcher, now))?;
    match args.format {
        // Written as made: an aggregate's 40,000 rows are tens of megabytes of JSON.
        Format::Json => {
            write_stdout(|out| render::write_inspect_json(&doc, now, args.warn_days, out))?
        }
        Format::Text => print(&render::inspect_text(&doc, now, args.warn_days))?,
    }
    // The process ends here: an aggregate's 40,000 keys are left to the exit, not freed one
    // by one (their memory was allocated on the stream's worker threads).
    std::mem::forget(doc);
    Ok(ExitCode::SUCCESS)
}

/// A step of `scan`: its value, or why the scan could not run (exit 2). The outer error is
/// any other failure (exit 1).
type Step<T> = Result<Result<T, anyhow::Error>>;

/// Linters' convention: 0 clean, 1 error-level findings, 2 could not run.
pub fn scan(args: ScanArgs, clock: Clock) -> Result<ExitCode> {
    let result = match scan_result(&args, clock.now())? {
        Ok(result) => result,
        Err(e) => {
            say_error(&e);
            return Ok(ExitCode::from(2));
        }
    };
    match args.format {
        ScanFormat::Text if args.transforms => {
            print(&(render::scan_text(&result) + &render::scan_transforms(&result)))?
        }
        ScanFormat::Text => print(&render::scan_text(&result))?,
        // Written as made, as inspect's: a large estate's JSON is megabytes.
        ScanFormat::Json => write_stdout(|out| render::write_scan_json(&result, out))?,
        ScanFormat::Sarif => print_as_is(&json_controls(&render::scan_sarif(&result)))?,
        // Runner commands by design, each escaped by the runner's own rules (`escape_data`).
        ScanFormat::Github => print_as_is(&render::scan_github(&result))?,
    }
    let code = match result.worst() {
        Some(Severity::Error) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    };
    // The process ends here: thousands of parsed files are left to the exit, not freed one
    // by one.
    std::mem::forget(result);
    Ok(code)
}

fn scan_result(args: &ScanArgs, now: time::OffsetDateTime) -> Step<ScanResult> {
    let rules = match args.rules.load() {
        Ok(rules) => rules,
        Err(e) => return Ok(Err(e.into())),
    };
    let (sources, config_root) = match scan_sources(args) {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    let known = match known_certificates(args, &sources, now)? {
        Ok(known) => known,
        Err(e) => return Ok(Err(e)),
    };
    let paths = if args.paths.is_empty() {
        vec![config_root.unwrap_or_else(|| PathBuf::from("."))]
    } else {
        args.paths.clone()
    };
    Ok(
        keyroll::load::scan::scan_paths_with_threads(&paths, &rules, &known, args.threads)
            .map_err(Into::into),
    )
}

/// A metadata source `scan` reads for the expiry findings.
struct Source {
    name: String,
    /// Whether its failure stops the scan: sources named on the command line must load;
    /// keyroll.toml's issuers are best effort, as `pr` reports a failed issuer itself.
    required: bool,
}

/// The metadata sources to read, and keyroll.toml's folder when one is read.
fn scan_sources(args: &ScanArgs) -> Result<(Vec<Source>, Option<PathBuf>)> {
    let mut sources: Vec<Source> = args
        .metadata
        .iter()
        .map(|s| Source {
            name: s.clone(),
            required: true,
        })
        .collect();
    let Some(config) = &args.config else {
        return Ok((sources, None));
    };
    let settings = Settings::load(config)?;
    for issuer in &settings.issuers {
        for source in &issuer.metadata {
            sources.push(Source {
                name: settings.resolve_source(source),
                required: false,
            });
        }
    }
    Ok((sources, Some(settings.root.clone())))
}

/// The certificates the sources publish, for the expiry findings.
fn known_certificates(
    args: &ScanArgs,
    sources: &[Source],
    now: time::OffsetDateTime,
) -> Step<KnownCertificates> {
    let mut known = KnownCertificates {
        now: Some(now),
        warn_days: args.warn_days,
        ..Default::default()
    };
    if sources.is_empty() {
        return Ok(Ok(known));
    }
    let runtime = runtime(Threads::Current)?;
    let fetcher = Fetcher::new(args.fetch.options())?;
    for source in sources {
        let loaded = keyroll::load::metadata::load(&source.name, &fetcher, now);
        let doc = match runtime.block_on(loaded) {
            Ok(doc) => doc,
            Err(e) if !source.required => {
                say(&format!(
                    "warning: {} (skipped: no expiry findings for its keys)",
                    printable(&redact(&e.to_string()))
                ));
                continue;
            }
            Err(e) => return Ok(Err(e.into())),
        };
        for key in doc.keys {
            known
                .by_thumbprint
                .insert(key.thumbprint(), key.certificate);
        }
    }
    Ok(Ok(known))
}

/// What a run of `plan` or `apply` does with the plan.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// Prints it, and saves it to the file when one is given (`plan --out`).
    Plan { save_to: Option<&'a Path> },
    /// Prints it and writes its changes (`apply` without a saved plan).
    Apply,
}

/// One writer per folder: the lock is held from before the inputs are read until the writes
/// are done, so a second run plans from the first one's result.
pub fn apply(args: ApplyArgs, clock: Clock) -> Result<ExitCode> {
    let settings = Settings::load(&args.plan.config)?;
    let _lock = keyroll::act::write::RunLock::acquire(
        &settings.root,
        std::time::Duration::from_secs(args.lock_timeout),
    )?;
    let Some(file) = &args.saved_plan else {
        return plan_with(args.plan, settings, clock, Mode::Apply);
    };
    let saved = keyroll::act::saved::SavedPlan::read(file)?;
    let rules = args.plan.rules.load()?;
    // Decided again as `plan` decided it: the same acceptances must be given again.
    let inputs = load_work_tree(&args.plan, &settings, &rules, clock.now())?;
    let (applied, plan) = saved.replan_and_write(file, &inputs, &rules, clock.now())?;
    say(&format!(
        "plan {} (as of {})",
        printable(&file.display().to_string()),
        printable(&saved.as_of)
    ));
    report_applied(&applied);
    // The errors and warnings of the plan as decided again, not the file's (which anyone
    // holding it could have emptied).
    for warning in &plan.warnings {
        say(&format!("warning: {}", printable(warning)));
    }
    for error in &plan.errors {
        say(&format!("error: {}", printable(&error.to_string())));
    }
    if !plan.errors.is_empty() {
        let n = plan.errors.len();
        anyhow::bail!(
            "the saved plan has {}: what {} was not written (every other change was)",
            count(n, "error"),
            if n == 1 { "it names" } else { "they name" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The work tree's inputs, with the identity changes the run accepts.
pub(crate) fn load_work_tree(
    args: &PlanArgs,
    settings: &Settings,
    rules: &RuleSet,
    now: time::OffsetDateTime,
) -> Result<Inputs> {
    let fetcher = Fetcher::new(args.fetch.options())?;
    let mut inputs = runtime(Threads::Current)?.block_on(keyroll::load::load(
        settings,
        rules,
        &fetcher,
        &Tree::Work,
        now,
    ))?;
    inputs.accept_identity_change = args.accept_identity_change.iter().cloned().collect();
    Ok(inputs)
}

fn report_applied(applied: &keyroll::act::Applied) {
    if !applied.swept.removed.is_empty() {
        say(&format!(
            "removed {} left by an interrupted run",
            count(applied.swept.removed.len(), "stale staged file")
        ));
    }
    for (path, why) in &applied.swept.failed {
        say(&format!(
            "warning: could not remove the stale staged file {}: {}",
            printable(&path.display().to_string()),
            printable(&why.to_string())
        ));
    }
    say(&format!(
        "applied: {} written{}",
        count(applied.files.len(), "file"),
        if applied.lock {
            ", keyroll.lock updated"
        } else {
            ""
        }
    ));
}

pub fn plan(args: PlanArgs, clock: Clock, mode: Mode) -> Result<ExitCode> {
    let settings = Settings::load(&args.config)?;
    plan_with(args, settings, clock, mode)
}

fn plan_with(args: PlanArgs, settings: Settings, clock: Clock, mode: Mode) -> Result<ExitCode> {
    let rules = args.rules.load()?;
    let now = clock.now();
    let inputs = load_work_tree(&args, &settings, &rules, now)?;
    let mut plan = keyroll::decide::decide(&inputs, &rules, now);
    if !settings.federated_domains.is_empty() {
        let reads = crate::cli::entra::read_for_plan(&settings, &args.fetch)?;
        keyroll::decide::federation::add_to_plan(&mut plan, &inputs, &reads);
    }
    if let Mode::Plan {
        save_to: Some(file),
    } = mode
    {
        let lock = keyroll::act::saved::lock_bytes(&settings, &Tree::Work, &inputs.lock)?;
        keyroll::act::saved::SavedPlan::new(&inputs, &plan, lock.as_deref()).write(file)?;
        say(&format!(
            "saved the plan to {0}: `keyroll apply {0}` writes exactly it",
            printable(&file.display().to_string())
        ));
    }
    print_plan(&plan, args.format)?;
    if let Mode::Apply = mode {
        // One file's error never blocks the others: what could be planned is written.
        let applied = keyroll::act::write_plan(&plan, &inputs)?;
        report_applied(&applied);
    }
    if !plan.errors.is_empty() {
        let files = plan.errors.iter().map(|e| e.file());
        anyhow::bail!("{}", errors_not_written(files, mode));
    }
    Ok(match mode {
        Mode::Plan { .. } if args.detailed_exitcode && plan.has_changes() => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

/// The plan on stdout, its warnings on stderr.
fn print_plan(plan: &Plan, format: PlanFormat) -> Result<()> {
    let out = match format {
        PlanFormat::Json => json_controls(&render::plan_json(plan)).into_owned(),
        PlanFormat::Markdown => render::plan_markdown(plan),
        PlanFormat::Text => {
            use std::io::IsTerminal as _;
            render::plan_text(plan, std::io::stdout().is_terminal())
        }
    };
    print(&out)?;
    for warning in &plan.warnings {
        say(&format!("warning: {}", printable(warning)));
    }
    Ok(())
}

/// The closing error of a run whose plan had errors, saying what was and was not written.
/// `files` holds, per error, the file it names (None when it names none: an issuer whose
/// metadata failed, a time that cannot be computed); `mode` whether the changes were
/// written (`apply`) or only planned (`plan`). Only files an error names are promised to be
/// left alone: an issuer's error leaves out what it names, not a file.
fn errors_not_written<'a>(files: impl Iterator<Item = Option<&'a str>>, mode: Mode) -> String {
    let applied = matches!(mode, Mode::Apply);
    let files: Vec<Option<&str>> = files.collect();
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
        parts.push(named_not_written(&named, applied));
    }
    if unnamed > 0 {
        parts.push(unnamed_not_planned(unnamed, files.len(), applied));
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

/// "a.config was not written", "apply would not write 7 files (a, b, c, d, e, …)".
fn named_not_written(named: &[String], applied: bool) -> String {
    let list = if named.len() <= 5 {
        named.join(", ")
    } else {
        format!(
            "{} ({})",
            count(named.len(), "file"),
            named[..5].join(", ") + ", …"
        )
    };
    match (applied, named.len()) {
        (true, 1) => format!("{list} was not written"),
        (true, _) => format!("{list} were not written"),
        (false, _) => format!("apply would not write {list}"),
    }
}

/// What the `unnamed` errors naming no file (of `all` errors) left out.
fn unnamed_not_planned(unnamed: usize, all: usize, applied: bool) -> String {
    let what = if unnamed == 1 {
        "it names"
    } else {
        "they name"
    };
    let error = if unnamed == all {
        String::new()
    } else {
        format!("{} naming no file: ", count(unnamed, "error"))
    };
    if applied {
        format!("{error}nothing was planned for what {what}")
    } else {
        format!("{error}apply would plan nothing for what {what}")
    }
}

pub fn init(args: InitArgs, clock: Clock) -> Result<ExitCode> {
    let rules = args.rules.load()?;
    let fetcher = Fetcher::new(args.fetch.options())?;
    let summary = runtime(Threads::Current)?.block_on(keyroll::act::init::run(
        &args.dir,
        &args.metadata,
        &rules,
        &fetcher,
        clock.now(),
        args.force,
    ))?;
    print(&summary.to_text())?;
    Ok(ExitCode::SUCCESS)
}
