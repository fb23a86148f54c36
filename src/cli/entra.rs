//! `keyroll entra check` / `entra apply`, and the Entra ID part of `plan`: each
//! `[[federated_domain]]`'s certificates in Entra ID against its issuer's AD FS metadata.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Result, bail};

use keyroll::act::entra::{Credential, Entra, EntraOptions, NO_CREDENTIAL};
use keyroll::decide::federation::{DomainReport, EntraRead, add_to_plan};
use keyroll::load::Tree;
use keyroll::load::fetch::{FetchOptions, Fetcher};
use keyroll::model::clock::Clock;
use keyroll::model::settings::{FederatedDomain, Settings};
use keyroll::render::sanitize::{json_controls, printable};

use crate::cli::io::{Threads, env, print, runtime, say};
use crate::cli::{EntraCommand, FetchArgs, Format};

pub fn run(command: EntraCommand, clock: Clock) -> Result<ExitCode> {
    let (args, apply) = match command {
        EntraCommand::Check(args) => (args, false),
        EntraCommand::Apply(args) => (args, true),
    };
    let settings = Settings::load(&args.config)?;
    check_selection(&settings, &args.domain)?;
    let selected = |d: &FederatedDomain| {
        args.domain.is_empty()
            || args
                .domain
                .iter()
                .any(|w| w.eq_ignore_ascii_case(&d.domain))
    };
    let credential = Credential::from_env(env).ok_or_else(|| anyhow::anyhow!(NO_CREDENTIAL))?;
    // Which one was found, never its value: a run signing in with an unexpected credential
    // (a stale secret beside the OIDC token) says so.
    say(&format!("entra: signing in with {}", credential.describe()));
    let rules = args.rules.load()?;
    let now = clock.now();
    let rt = runtime(Threads::Current)?;
    let fetcher = Fetcher::new(FetchOptions {
        http_loopback_only: true,
        ..args.fetch.options()
    })?;
    let mut inputs = rt.block_on(keyroll::load::load(
        &settings,
        &rules,
        &fetcher,
        &Tree::Work,
        now,
    ))?;
    inputs.accept_identity_change = args.accept_identity_change.iter().cloned().collect();
    let entra = Entra::new(credential, options(&args.fetch));
    let domains: Vec<&FederatedDomain> = settings
        .federated_domains
        .iter()
        .filter(|d| selected(d))
        .collect();
    let decide = |reads: &BTreeMap<String, EntraRead>| -> Vec<DomainReport> {
        let mut plan = keyroll::decide::decide(&inputs, &rules, now);
        add_to_plan(&mut plan, &inputs, reads);
        plan.federation
            .into_iter()
            .filter(|r| reads.contains_key(&r.domain))
            .collect()
    };
    let mut reports = decide(&rt.block_on(read_all(&entra, &domains)));
    let mut applied = Vec::new();
    if apply {
        for report in &reports {
            let (Some(next), Some(id)) = (report.to_apply(), &report.config_id) else {
                continue;
            };
            let domain = domains
                .iter()
                .find(|d| d.domain == report.domain)
                .expect("reports come from the selected domains");
            let issuer = settings
                .issuer(&domain.issuer)
                .expect("keyroll.toml checked the issuer");
            let der = rt
                .block_on(keyroll::load::published_der(
                    &settings, issuer, &fetcher, next,
                ))
                .map_err(anyhow::Error::msg)?;
            rt.block_on(entra.set_next(domain, id, &der))?;
            say(&format!(
                "entra: set {}'s nextSigningCertificate to {next}",
                printable(&domain.domain)
            ));
            applied.push(serde_json::json!({ "domain": domain.domain, "next": next }));
        }
        if !applied.is_empty() {
            // What Entra ID holds now, read back: the exit code says whether it is in step.
            reports = decide(&rt.block_on(read_all(&entra, &domains)));
        }
    }
    print_reports(&reports, &applied, args.format, now)?;
    Ok(ExitCode::from(exit_code(&reports, apply)))
}

/// 1 when a domain has an error, else 2 when one lacks its next key (`check`; for `apply`,
/// which promised every domain in step, that is an error too), else 0.
fn exit_code(reports: &[DomainReport], apply: bool) -> u8 {
    let codes: Vec<u8> = reports.iter().map(DomainReport::exit_code).collect();
    if codes.contains(&1) || (apply && codes.contains(&2)) {
        1
    } else if codes.contains(&2) {
        2
    } else {
        0
    }
}

/// keyroll.toml has federated domains, and each `--domain` is one of them.
fn check_selection(settings: &Settings, wanted: &[String]) -> Result<()> {
    if settings.federated_domains.is_empty() {
        bail!(
            "{}: no [[federated_domain]] is configured; add one with domain, issuer, tenant and client_id",
            printable(&settings.path.display().to_string())
        );
    }
    for wanted in wanted {
        if !settings
            .federated_domains
            .iter()
            .any(|d| d.domain.eq_ignore_ascii_case(wanted))
        {
            bail!(
                "--domain {}: no [[federated_domain]] has that domain",
                printable(wanted)
            );
        }
    }
    Ok(())
}

fn options(fetch: &FetchArgs) -> EntraOptions {
    EntraOptions {
        allow_http: fetch.allow_http,
        timeout: std::time::Duration::from_secs(fetch.timeout),
        ..Default::default()
    }
}

async fn read_all(entra: &Entra, domains: &[&FederatedDomain]) -> BTreeMap<String, EntraRead> {
    let mut reads = BTreeMap::new();
    for domain in domains {
        let read = match entra.read(domain).await {
            Ok(state) => EntraRead::State(state),
            Err(e) => EntraRead::Failed(e.to_string()),
        };
        reads.insert(domain.domain.clone(), read);
    }
    reads
}

/// For `plan`: Entra's state of every domain when a credential is at hand, else each domain
/// marked not read (shown, never an error: `plan` runs where no credential is given).
pub fn read_for_plan(
    settings: &Settings,
    fetch: &FetchArgs,
) -> Result<BTreeMap<String, EntraRead>> {
    let domains: Vec<&FederatedDomain> = settings.federated_domains.iter().collect();
    let Some(credential) = Credential::from_env(env) else {
        return Ok(domains
            .iter()
            .map(|d| (d.domain.clone(), EntraRead::NotRead(NO_CREDENTIAL.into())))
            .collect());
    };
    let entra = Entra::new(credential, options(fetch));
    Ok(runtime(Threads::Current)?.block_on(read_all(&entra, &domains)))
}

fn print_reports(
    reports: &[DomainReport],
    applied: &[serde_json::Value],
    format: Format,
    now: time::OffsetDateTime,
) -> Result<()> {
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "schema": "keyroll.entra/v1",
                "as_of": keyroll::model::cert::rfc3339(now),
                "federated_domains": reports,
                "applied": applied,
            });
            print(&json_controls(
                &(serde_json::to_string_pretty(&json)? + "\n"),
            ))
        }
        Format::Text => {
            let text: String = reports.iter().map(keyroll::render::domain_text).collect();
            print(text.trim_start_matches('\n'))
        }
    }
}
