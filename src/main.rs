//! Thin front: parse arguments, call the library, render, choose the exit code.

mod cli;

use std::process::ExitCode;

use anyhow::{Context as _, Result};

/// mimalloc, not glibc's malloc: reading an aggregate allocates pieces on one thread and
/// frees them on the workers, and glibc kept returning that memory to the kernel and faulting
/// it back in zeroed (an eighth of inspect's time, bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser as _;

use cli::commands::{self, Mode};
use cli::io::{print, say_error};
use cli::{Cli, Command};
use keyroll::model::clock::{Clock, parse_rfc3339};

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
        Command::Thumbprint(args) => commands::thumbprint(args),
        Command::Inspect(args) => commands::inspect(args, clock),
        Command::Scan(args) => commands::scan(args, clock),
        Command::Plan(args) => {
            let mode = Mode::Plan {
                save_to: args.out.as_deref(),
            };
            commands::plan(args.plan, clock, mode)
        }
        Command::Apply(args) => commands::apply(args, clock),
        Command::Init(args) => commands::init(args, clock),
        Command::Pr(args) => cli::pr::pr(args, clock),
        Command::Db(command) => cli::db::db(command, clock),
        Command::Snapshot(args) => cli::org::snapshot(args, clock),
        Command::Onboard(args) => cli::org::onboard(args, clock),
        Command::Discover(args) => cli::org::discover(args),
        Command::Dashboard(args) => cli::org::dashboard(args, clock),
        Command::Entra(command) => cli::entra::run(command, clock),
        Command::Completions { shell } => completions(shell),
        Command::Man { dir: Some(dir) } => man_pages(&dir),
        Command::Man { dir: None } => man_page(),
    }
}

fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "keyroll", &mut out);
    print(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}

/// keyroll.1 and a page per subcommand, written into `dir`.
fn man_pages(dir: &std::path::Path) -> Result<ExitCode> {
    let command = <Cli as clap::CommandFactory>::command();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing the man pages into {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn man_page() -> Result<ExitCode> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .context("rendering the man page")?;
    print(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}
