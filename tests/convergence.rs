//! Properties of the decision core over generated registries: random `<add>` (clean,
//! pasted or spaced), `<remove>` and `<clear/>` sequences, two issuers sharing the
//! registry, random metadata before and after a roll, random policy. For every case:
//! - every file keyroll writes loads under WIF's rules and trusts exactly what the plan
//!   says (its keys, as WIF matches them);
//! - `plan → apply → plan` is empty (convergence);
//! - no issuer's slice removes a key any configured issuer publishes, and whichever subset
//!   of the issuers' pull requests is merged, the file loads and every issuer that had a
//!   valid key still has one.

mod kit;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use keyroll::decide::plan::{ChangeKind, Plan};
use keyroll::model::rules::RuleSet;
use kit::{Key, decide, inputs, issuer, next_run, settings_for, target, wif45};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use time::macros::datetime;

/// Six keys: 0-2 belong to issuer a, 3-5 to b. 2 and 5 are not yet valid at the second
/// run; 1 expires between the two runs.
fn pool() -> &'static [Key] {
    static POOL: OnceLock<Vec<Key>> = OnceLock::new();
    POOL.get_or_init(|| {
        let y = |y: i32| {
            time::Date::from_calendar_date(y, time::Month::January, 1)
                .unwrap()
                .midnight()
                .assume_utc()
        };
        vec![
            Key::new("a0", y(2025), y(2028)),
            Key::new("a1", y(2025), datetime!(2026-05-20 0:00 UTC)),
            Key::new("a2", datetime!(2026-07-01 0:00 UTC), y(2028)),
            Key::new("b0", y(2025), y(2028)),
            Key::new("b1", y(2025), y(2028)),
            Key::new("b2", datetime!(2026-07-01 0:00 UTC), y(2028)),
        ]
    })
}

#[derive(Debug, Clone)]
enum Op {
    Add { key: usize, style: u8 },
    Remove { key: usize },
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..6usize, 0..4u8).prop_map(|(key, style)| Op::Add { key, style }),
        2 => (0..6usize).prop_map(|key| Op::Remove { key }),
        1 => Just(Op::Clear),
    ]
}

fn render(ops: &[Op]) -> String {
    let pool = pool();
    let lines: Vec<String> = ops
        .iter()
        .map(|op| match op {
            Op::Add { key, style } => {
                let hex = pool[*key].hex();
                let value = match style {
                    // Pasted from the Windows dialog: invisible mark, spaced lowercase pairs.
                    1 => format!(
                        "\u{200E}{}",
                        hex.as_bytes()
                            .chunks(2)
                            .map(|p| std::str::from_utf8(p).unwrap().to_ascii_lowercase())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    2 => hex.to_ascii_lowercase(),
                    _ => hex,
                };
                let name = if *key < 3 { "A" } else { "B" };
                format!("<add thumbprint=\"{value}\" name=\"{name}\" />")
            }
            Op::Remove { key } => format!("<remove thumbprint=\"{}\" />", pool[*key].hex()),
            Op::Clear => "<clear />".to_string(),
        })
        .collect();
    wif45(&lines)
}

fn published(mask: u8, range: std::ops::Range<usize>) -> Vec<&'static Key> {
    let pool = pool();
    let chosen: Vec<&Key> = range
        .clone()
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| &pool[i])
        .collect();
    if chosen.is_empty() {
        vec![&pool[range.start]]
    } else {
        chosen
    }
}

fn is_hex40(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What WIF would match, as 40-hex keys, for registry 0 of `text`.
fn wif_keys(text: &str) -> Result<BTreeSet<String>, String> {
    kit::wif_trusts(text).map(|sets| {
        sets.into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .filter(|k| is_hex40(k))
            .collect()
    })
}

fn check_plan(
    input: &keyroll::load::Inputs,
    plan: &Plan,
    now: time::OffsetDateTime,
) -> Result<(), TestCaseError> {
    let pool = pool();
    let base = &input.targets[0];
    let before_text = String::from_utf8(base.file.bytes.clone()).unwrap();
    let published_by_any: BTreeSet<_> = input
        .issuers
        .iter()
        .filter_map(|i| i.keys.as_ref().ok())
        .flat_map(|k| k.published.keys().copied())
        .collect();
    for file in &plan.files {
        let after = String::from_utf8(file.after.clone()).unwrap();
        // Loads under WIF's rules, and WIF matches exactly the keys keyroll intends.
        let got = wif_keys(&after).map_err(|e| TestCaseError::fail(format!("{e}\n{after}")))?;
        let changes: Vec<&keyroll::decide::plan::PlannedChange> = file.changes.iter().collect();
        let intended: BTreeSet<String> = keyroll::decide::trusted_sets(&base.file, &changes)
            .get(&0)
            .map(|s| s.iter().map(|t| t.to_upper_hex()).collect())
            .unwrap_or_default();
        prop_assert_eq!(&got, &intended, "{}", after);
        for change in &file.changes {
            if change.kind == ChangeKind::Remove {
                let t = change.thumbprint.unwrap();
                prop_assert!(
                    !published_by_any.contains(&t),
                    "removed a published key {t}"
                );
            }
        }
        // Every subset of the issuers' slices, merged alone or together.
        let publishers: Vec<&String> = file.slices.keys().collect();
        for subset in 0..(1u32 << publishers.len()) {
            let chosen: Vec<&keyroll::decide::plan::PlannedChange> = file
                .changes
                .iter()
                .filter(|c| {
                    publishers.iter().enumerate().any(|(i, p)| {
                        subset & (1 << i) != 0 && c.published_with.as_deref() == Some(p.as_str())
                    })
                })
                .collect();
            let raw: Vec<_> = chosen.iter().map(|c| c.change.clone()).collect();
            let merged = keyroll::decide::patch::apply(&base.file, &raw, &RuleSet::builtin())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let merged = String::from_utf8(merged).unwrap();
            // A base WIF already refuses stays refused without the slice that fixes it;
            // a base that loads must load whatever is merged.
            let Ok(before_keys) = wif_keys(&before_text) else {
                continue;
            };
            let keys = wif_keys(&merged)
                .map_err(|e| TestCaseError::fail(format!("subset {subset}: {e}\n{merged}")))?;
            for (name, range) in [("a", 0..3), ("b", 3..6)] {
                let current = |set: &BTreeSet<String>| {
                    pool[range.clone()].iter().any(|k| {
                        set.contains(&k.hex())
                            && input
                                .issuers
                                .iter()
                                .find(|i| i.name == name)
                                .and_then(|i| i.keys.as_ref().ok())
                                .is_some_and(|ks| ks.published.contains_key(&k.t))
                            && k.cert.is_current(now)
                    })
                };
                prop_assert!(
                    !current(&before_keys) || current(&keys),
                    "subset {subset} leaves {name} without a valid key:\n{merged}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
        // A failing case is saved in tests/convergence.proptest-regressions (committed, as
        // tests/patch_props.proptest-regressions is) and tried first by every later run.
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn plan_apply_plan_converges_and_every_write_loads_in_wif(
        ops in proptest::collection::vec(op(), 0..8),
        first in any::<u8>(),
        second in any::<u8>(),
        keep_unknown in any::<bool>(),
        tidy in any::<bool>(),
    ) {
        let pool = pool();
        let policy = format!("keep_unknown = {keep_unknown}\ntidy = {tidy}\nremove_after = \"3d\"\n");
        let settings = settings_for(&["a", "b"], &policy);
        let config = render(&ops);
        let t1 = datetime!(2026-05-01 0:00 UTC);
        let t2 = datetime!(2026-06-01 0:00 UTC);
        let _ = pool;
        // First run: what both issuers published a month earlier.
        let input = inputs(
            settings.clone(),
            vec![issuer("a", &published(first, 0..3)), issuer("b", &published(first, 3..6))],
            vec![target("web.config", &config, vec![0])],
            keyroll::model::lock::Lock::default(),
        );
        let plan = decide(&input, t1);
        check_plan(&input, &plan, t1)?;
        let mut next = next_run(&input, &plan);
        // Second run: the issuers rolled.
        next.issuers = vec![issuer("a", &published(second, 0..3)), issuer("b", &published(second, 3..6))];
        let plan = decide(&next, t2);
        check_plan(&next, &plan, t2)?;
        // Converged: the run after that proposes nothing for the file.
        let again = next_run(&next, &plan);
        let plan3 = decide(&again, t2);
        prop_assert!(
            plan3.files.is_empty(),
            "not converged: {:?}\n{}",
            plan3.files[0].changes,
            String::from_utf8_lossy(&plan3.files[0].before)
        );
    }
}

/// A registry in one of WIF 4.5's two places, under a named or unnamed
/// identityConfiguration, its entries in random sibling forms (attribute order, quotes, an
/// extra attribute where WIF allows it), with a Release transform beside it whose
/// `Replace`d registry holds its own random entries.
fn wif_file(ops: &[Op], form: u8, handler_level: bool, named: bool) -> String {
    let pool = pool();
    let entries: Vec<String> = ops
        .iter()
        .map(|op| match op {
            Op::Add { key, style } => {
                let hex = pool[*key].hex();
                let value = if *style == 2 {
                    hex.to_ascii_lowercase()
                } else {
                    hex
                };
                match form % 4 {
                    0 => format!("<add thumbprint=\"{value}\" name=\"n\" />"),
                    1 => format!("<add name=\"n\" thumbprint=\"{value}\"/>"),
                    // Two attributes WIF accepts: the thumbprint and any other one.
                    2 => format!("<add thumbprint='{value}' comment='rotated' />"),
                    _ => format!("<add\n  thumbprint=\"{value}\"\n  name=\"n\" />"),
                }
            }
            Op::Remove { key } => format!("<remove thumbprint=\"{}\" />", pool[*key].hex()),
            Op::Clear => "<clear/>".to_string(),
        })
        .collect();
    let registry = format!(
        "<issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">\n<trustedIssuers>\n{}\n</trustedIssuers>\n</issuerNameRegistry>",
        entries.join("\n")
    );
    let inner = if handler_level {
        format!(
            "<securityTokenHandlers><securityTokenHandlerConfiguration>{registry}</securityTokenHandlerConfiguration></securityTokenHandlers>"
        )
    } else {
        registry
    };
    format!(
        "<configuration>\n<configSections><section name=\"system.identityModel\" type=\"x\" /></configSections>\n<system.identityModel>\n<identityConfiguration{}>\n{inner}\n</identityConfiguration>\n</system.identityModel>\n</configuration>\n",
        if named { " name=\"app\"" } else { "" }
    )
}

fn release_of(base: &str) -> String {
    base.replace(
        "<configuration>",
        "<configuration xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\">",
    )
    .replace(
        "<trustedIssuers>",
        "<trustedIssuers xdt:Transform=\"Replace\">",
    )
    .replace(
        "<configSections><section name=\"system.identityModel\" type=\"x\" /></configSections>\n",
        "",
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000),
        // A failing case is saved in tests/convergence.proptest-regressions (committed, as
        // tests/patch_props.proptest-regressions is) and tried first by every later run.
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_write_loads_in_every_build_configuration(
        base_ops in proptest::collection::vec(op(), 0..6),
        release_ops in proptest::collection::vec(op(), 0..6),
        form in any::<u8>(),
        handler_level in any::<bool>(),
        named in any::<bool>(),
        first in any::<u8>(),
        second in any::<u8>(),
    ) {
        let settings = kit::settings(
            "[[issuer]]\nname = \"a\"\nmetadata = [\"a.xml\"]\n\n[[issuer]]\nname = \"b\"\nmetadata = [\"b.xml\"]\n\n[[target]]\nfiles = [\"**/Web.config\", \"**/Web.Release.config\"]\nissuers = [\"a\", \"b\"]\n\n[policy]\nremove_after = \"3d\"\n",
        );
        let base = wif_file(&base_ops, form, handler_level, named);
        let release = release_of(&wif_file(&release_ops, form.wrapping_add(1), handler_level, named));
        let targets = vec![
            target("App/Web.config", &base, vec![0]),
            target("App/Web.Release.config", &release, vec![0]),
        ];
        let input = inputs(
            settings,
            vec![issuer("a", &published(first, 0..3)), issuer("b", &published(first, 3..6))],
            targets,
            keyroll::model::lock::Lock::default(),
        );
        let t1 = datetime!(2026-05-01 0:00 UTC);
        let t2 = datetime!(2026-06-01 0:00 UTC);
        let plan = decide(&input, t1);
        let mut next = next_run(&input, &plan);
        next.issuers = vec![issuer("a", &published(second, 0..3)), issuer("b", &published(second, 3..6))];
        let plan2 = decide(&next, t2);
        for (inputs_now, plan) in [(&input, &plan), (&next, &plan2)] {
            for file in &plan.files {
                let text = String::from_utf8(file.after.clone()).unwrap();
                let got = wif_keys(&text).map_err(|e| TestCaseError::fail(format!("{}: {e}\n{text}", file.display)))?;
                // keyroll's own re-scan of what it wrote: no load error, no duplicate.
                let rescanned = keyroll::load::scan::parse_config(
                    std::path::Path::new(&file.display),
                    file.after.clone(),
                    &RuleSet::builtin(),
                    &keyroll::load::scan::KnownCertificates::default(),
                );
                prop_assert!(rescanned.problems.iter().all(|p| p.finding.severity != keyroll::load::scan::Severity::Error), "{:?}\n{text}", rescanned.problems);
                prop_assert!(rescanned.entries.iter().all(|e| e.duplicate_of.is_none()), "{text}");
                let base_file = &inputs_now.targets.iter().find(|t| t.display == file.display).unwrap().file;
                let changes: Vec<&keyroll::decide::plan::PlannedChange> = file.changes.iter().collect();
                let intended: BTreeSet<String> = keyroll::decide::trusted_sets(base_file, &changes)
                    .values()
                    .flat_map(|s| s.iter().map(|t| t.to_upper_hex()))
                    .collect();
                prop_assert_eq!(&got, &intended, "{}", text);
            }
        }
        let again = decide(&next_run(&next, &plan2), t2);
        prop_assert!(again.files.is_empty(), "not converged: {:?}", again.files.iter().map(|f| (&f.display, &f.changes)).collect::<Vec<_>>());
    }
}
