//! `keyroll db check` and `keyroll db apply`: `[[database]]` targets read live through their
//! `url_env` connection, compared with the plan, and (apply) brought in step in one
//! transaction per table.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use keyroll::decide::database::{DatabasePlan, RowChangeKind};
use keyroll::decide::plan::{Plan, PlanError};
use keyroll::load::database::Live;
use keyroll::model::clock::Clock;
use keyroll::model::database::DatabaseSettings;
use keyroll::model::settings::Settings;
use keyroll::render::sanitize::{json_controls, printable};

use crate::cli::commands::load_work_tree;
use crate::cli::io::{ErrorLines, Threads, print, runtime, say};
use crate::cli::{FetchArgs, Format, PlanArgs, RulesArgs};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Read each table through its url_env and report drift against the plan (read-only).
    #[command(
        after_help = "Examples:\n  TENANT_DB_URL=postgres://keyroll@db.example.com/app?sslmode=verify-full keyroll db check\n  keyroll db check --database tenants --format json\n\nDrift: a key the issuer publishes that the table lacks (with the days before it is expected to sign tokens), a retired key still trusted, a row holding pasted characters, a missing tenant row.\nExit codes: 0 in step, 2 drift, 1 error (no connection, a missing table or column, permission denied)."
    )]
    Check(DbArgs),
    /// Run the planned statements on each table, one transaction per table, then check again.
    #[command(
        after_help = "Examples:\n  keyroll db apply --database tenants\n\nRun it behind a review gate (a GitHub environment with required reviewers): it changes what the app trusts.\nExit codes: 0 in step afterwards, 1 error (nothing half-done: a failing statement rolls its table back)."
    )]
    Apply(DbArgs),
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Only this [[database]] target (default: every one).
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,

    /// Path of keyroll.toml.
    #[arg(long, default_value = "keyroll.toml", value_name = "FILE")]
    pub config: std::path::PathBuf,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub rules: RulesArgs,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

pub fn db(command: DbCommand, clock: Clock) -> Result<ExitCode> {
    let (args, apply) = match command {
        DbCommand::Check(args) => (args, false),
        DbCommand::Apply(args) => (args, true),
    };
    let settings = Settings::load(&args.config)?;
    let chosen = choose(&settings, args.database.as_deref())?;
    let format = args.format;
    let plan_args = PlanArgs {
        config: args.config,
        format: crate::cli::PlanFormat::Text,
        detailed_exitcode: false,
        accept_identity_change: Vec::new(),
        rules: args.rules,
        fetch: args.fetch,
    };
    let rules = plan_args.rules.load()?;
    let now = clock.now();
    let inputs = load_work_tree(&plan_args, &settings, &rules, now)?;
    for db in &chosen {
        if let Some(Live::Failed(detail)) | Some(Live::Unset { var: detail }) =
            inputs.databases.get(&db.name)
        {
            anyhow::bail!(
                "{}: {}",
                settings.path.display(),
                match inputs.databases.get(&db.name) {
                    Some(Live::Unset { .. }) => format!(
                        "database \"{}\": {detail} is not set; `db` commands read the table through it",
                        db.name
                    ),
                    _ => detail.clone(),
                }
            );
        }
        if db.url_env.is_none() {
            anyhow::bail!(
                "{}:{}: database \"{}\" has no url_env: `db` commands need a connection URL in an environment variable",
                settings.path.display(),
                settings.line_of(&format!("\"{}\"", db.name)),
                db.name
            );
        }
    }
    let plan = keyroll::decide::decide(&inputs, &rules, now);
    let errors = errors_of(&plan, &chosen);
    if !apply || !errors.is_empty() {
        return finish(&plan, &chosen, &errors, format, apply);
    }
    let runtime = runtime(Threads::Current)?;
    for db in &chosen {
        let plans: Vec<&DatabasePlan> = plan
            .databases
            .iter()
            .filter(|p| p.database == db.name)
            .collect();
        if plans.is_empty() {
            continue;
        }
        runtime.block_on(keyroll::act::database::run_statements(db, &plans))?;
        let n: usize = plans.iter().map(|p| p.statements.len()).sum();
        let issuers: Vec<String> = plans
            .iter()
            .map(|p| printable(&p.issuer).into_owned())
            .collect();
        say(&format!(
            "database \"{}\": ran {n} statement{} for issuer{} {} in one transaction",
            db.name,
            if n == 1 { "" } else { "s" },
            if issuers.len() == 1 { "" } else { "s" },
            issuers.join(", ")
        ));
    }
    // Read again: what the table holds now is what counts.
    let inputs = load_work_tree(&plan_args, &settings, &rules, now)?;
    let after = keyroll::decide::decide(&inputs, &rules, now);
    let errors = errors_of(&after, &chosen);
    finish(&after, &chosen, &errors, format, apply)
}

fn choose<'s>(settings: &'s Settings, name: Option<&str>) -> Result<Vec<&'s DatabaseSettings>> {
    match name {
        Some(name) => match settings.databases.iter().find(|d| d.name == name) {
            Some(db) => Ok(vec![db]),
            None => anyhow::bail!(
                "{}: no [[database]] is named {name:?} (defined: {})",
                settings.path.display(),
                names(settings)
            ),
        },
        None if settings.databases.is_empty() => anyhow::bail!(
            "{}: no [[database]] target is configured",
            settings.path.display()
        ),
        None => Ok(settings.databases.iter().collect()),
    }
}

fn names(settings: &Settings) -> String {
    let names: Vec<String> = settings
        .databases
        .iter()
        .map(|d| format!("{:?}", d.name))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The plan's errors that concern the chosen tables: theirs, and their issuers'.
fn errors_of(plan: &Plan, chosen: &[&DatabaseSettings]) -> Vec<String> {
    plan.errors
        .iter()
        .filter(|e| match e {
            PlanError::Database { database, .. } | PlanError::DatabaseLockout { database, .. } => {
                chosen.iter().any(|d| &d.name == database)
            }
            PlanError::Issuer { issuer, .. } => chosen.iter().any(|d| d.issuers.contains(issuer)),
            // A run-wide error (the time given is out of range): nothing was decided, so
            // nothing may read as "in step".
            PlanError::Time(_) => true,
            // Each of these names a file or a federated domain: not the tables' concern.
            PlanError::Unreadable { .. }
            | PlanError::Lockout { .. }
            | PlanError::AmbiguousRegistry { .. }
            | PlanError::NoReplacement { .. }
            | PlanError::Patch(_)
            | PlanError::Federation { .. } => false,
        })
        .map(|e| e.to_string())
        .collect()
}

/// One line per drift, in words a person acts on.
fn drift_line(plan: &DatabasePlan, change: &keyroll::decide::database::RowChange) -> String {
    let value = keyroll::decide::sql::comment_safe(&change.value);
    let what = match change.kind {
        RowChangeKind::Add => {
            let when = match (change.days_left, &change.primary_by) {
                (Some(days), Some(by)) if days >= 0 => format!(
                    "; expected to sign tokens from {} ({days} day{} left)",
                    &by[..10],
                    if days == 1 { "" } else { "s" }
                ),
                (Some(_), Some(by)) => format!(
                    "; expected to sign tokens since {}: sign-ins signed with it fail now",
                    &by[..10]
                ),
                _ => String::new(),
            };
            format!("missing published key {value}{when}")
        }
        RowChangeKind::Remove => format!("retired key still trusted: {value}"),
        RowChangeKind::RemoveJunk => format!("pasted row {value}"),
        RowChangeKind::AddTenant => format!("tenant row {value} missing"),
    };
    format!(
        "database {} issuer {}: {what} ({})",
        printable(&plan.database),
        printable(&plan.issuer),
        printable(&change.why)
    )
}

fn finish(
    plan: &Plan,
    chosen: &[&DatabaseSettings],
    errors: &[String],
    format: Format,
    applied: bool,
) -> Result<ExitCode> {
    let drift: Vec<&DatabasePlan> = plan
        .databases
        .iter()
        .filter(|p| chosen.iter().any(|d| d.name == p.database))
        .collect();
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "as_of": keyroll::model::cert::rfc3339(plan.now),
                "databases": chosen.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
                "in_step": drift.is_empty() && errors.is_empty(),
                "drift": drift,
                "errors": errors,
            });
            print(&json_controls(
                &(serde_json::to_string_pretty(&json).expect("serializes") + "\n"),
            ))?;
        }
        Format::Text => {
            let mut out = String::new();
            for p in &drift {
                for change in &p.changes {
                    out.push_str(&drift_line(p, change));
                    out.push('\n');
                }
            }
            if drift.is_empty() && errors.is_empty() {
                out.push_str(&format!(
                    "{} in step with the issuers' metadata\n",
                    chosen
                        .iter()
                        .map(|d| format!("database {}", d.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            print(&out)?;
        }
    }
    if !errors.is_empty() {
        return Err(ErrorLines(errors.iter().map(|e| printable(e).into_owned()).collect()).into());
    }
    Ok(if drift.is_empty() {
        ExitCode::SUCCESS
    } else if applied {
        say("the tables are still not in step after db apply");
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    })
}
