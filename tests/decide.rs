//! The decision core, called directly (no binary, no network, no disk): one test per
//! numbered case of the "one plan, decided once" issue, each named after what it pins.

mod kit;

use keyroll::decide::plan::{ChangeKind, KeyAction, Owner, PlanError};
use keyroll::model::lock::Lock;
use kit::{Key, add, decide, inputs, issuer, next_run, settings, settings_for, target, wif45};
use time::macros::datetime;

fn now() -> time::OffsetDateTime {
    datetime!(2026-06-01 12:00 UTC)
}

fn valid(cn: &str) -> Key {
    Key::new(
        cn,
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    )
}

/// Case 1: two issuers share one registry; keep_unknown = false. The one plan changes
/// nothing; neither issuer's slice removes the other's key.
#[test]
fn regression_shared_registry_pr_slices_never_remove_another_issuers_key() {
    let (a, b) = (valid("a"), valid("b"));
    let config = wif45(&[add(&a, "A"), add(&b, "B")]);
    let input = inputs(
        settings_for(&["a", "b"], "keep_unknown = false"),
        vec![issuer("a", &[&a]), issuer("b", &[&b])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert!(plan.files.is_empty(), "{:?}", plan.files[0].changes);
    for name in ["a", "b"] {
        assert!(plan.for_issuer(name).files.is_empty());
    }

    // a rolls: a's slice adds its new key and removes nothing of b's.
    let a2 = valid("a2");
    let input = inputs(
        settings_for(&["a", "b"], "keep_unknown = false"),
        vec![issuer("a", &[&a, &a2]), issuer("b", &[&b])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    let slice = plan.for_issuer("a");
    assert_eq!(slice.files.len(), 1);
    let kinds: Vec<_> = slice.files[0]
        .changes
        .iter()
        .map(|c| (c.kind, c.thumbprint))
        .collect();
    assert_eq!(kinds, vec![(ChangeKind::Add, Some(a2.t))]);
    assert!(plan.for_issuer("b").files.is_empty());
}

/// Case 1 (hygiene): a pasted character fixed once, in one issuer's PR, never in both.
#[test]
fn regression_hygiene_is_published_in_exactly_one_issuers_pr() {
    let (a, b) = (valid("a"), valid("b"));
    let dirty = format!("<add thumbprint=\"\u{200E}{}\" name=\"B\" />", b.hex());
    let config = wif45(&[add(&a, "A"), dirty]);
    let input = inputs(
        settings_for(&["a", "b"], ""),
        vec![issuer("a", &[&a]), issuer("b", &[&b])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    let change = &plan.files[0].changes[0];
    assert_eq!(change.kind, ChangeKind::Normalize);
    assert_eq!(change.owner, Owner::Hygiene);
    // It travels with the issuer whose key the entry holds.
    assert_eq!(change.published_with.as_deref(), Some("b"));
    assert_eq!(plan.for_issuer("b").files.len(), 1);
    assert!(plan.for_issuer("a").files.is_empty());
}

/// Case 2: `<add A/><remove A/>` with A published: keyroll does not add A again (a
/// duplicate WIF refuses), reports it, and converges.
#[test]
fn regression_no_readd_of_a_key_a_remove_withdraws() {
    let (a, n) = (valid("a"), valid("n"));
    let config = wif45(&[
        add(&a, "A"),
        add(&n, "A"),
        format!("<remove thumbprint=\"{}\" />", n.hex()),
    ]);
    let input = inputs(
        settings_for(&["a"], ""),
        vec![issuer("a", &[&a, &n])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    assert!(plan.files.is_empty(), "{:?}", plan.files);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("withdrawn by <remove>"))
    );
    let report = &plan.issuers[0];
    let key = report.keys.iter().find(|k| k.sha1 == n.t).unwrap();
    assert_eq!(key.action, KeyAction::Ignore);
    // And the next run proposes nothing either.
    let next = next_run(&input, &plan);
    assert!(decide(&next, now()).files.is_empty());
}

/// Case 2: a new entry goes after the last `<clear/>`, where WIF honours it; the result
/// loads and trusts the new key.
#[test]
fn regression_new_entry_goes_after_the_last_clear() {
    let (old, new) = (valid("old"), valid("new"));
    let config = wif45(&[add(&old, "A"), "<clear />".into()]);
    let input = inputs(
        settings_for(&["a"], ""),
        vec![issuer("a", &[&new])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let after = String::from_utf8(plan.files[0].after.clone()).unwrap();
    assert!(after.find("<clear />").unwrap() < after.find(&new.hex()).unwrap());
    let trusted = kit::wif_trusts(&after).unwrap();
    assert!(trusted[0].contains(&new.hex()), "{after}");
    assert!(decide(&next_run(&input, &plan), now()).files.is_empty());
}

/// Case 3: appSettings holds one thumbprint. A second published key never fails the run:
/// a note; when the old key leaves the metadata, the value is replaced, marked as a
/// lockout window.
#[test]
fn regression_single_value_setting_never_fails_and_switches_when_the_old_key_leaves() {
    let (old, new) = (valid("old"), valid("new"));
    let config = format!(
        "<configuration>\n  <appSettings>\n    <add key=\"ida:IssuerThumbprint\" value=\"{}\" />\n  </appSettings>\n</configuration>\n",
        old.hex()
    );
    let settings = settings_for(&["a"], "");
    let input = inputs(
        settings.clone(),
        vec![issuer("a", &[&old, &new])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert!(plan.files.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("holds one thumbprint"))
    );

    // The old key leaves the metadata (the lock remembers it).
    let next = kit::inputs(
        settings,
        vec![issuer("a", &[&new])],
        vec![target("web.config", &config, vec![0])],
        plan.lock_after.clone(),
    );
    let plan = decide(&next, now());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let change = &plan.files[0].changes[0];
    assert_eq!(change.kind, ChangeKind::Replace);
    assert!(change.lockout_window);
    assert_eq!(change.thumbprint, Some(new.t));
    let after = String::from_utf8(plan.files[0].after.clone()).unwrap();
    assert!(after.contains(&new.hex()) && !after.contains(&old.hex()));
}

/// Case 4: a file keyroll cannot read is an error naming it; the other file still changes.
#[test]
fn regression_an_unreadable_target_is_named_and_never_blocks_the_others() {
    let (a, a2) = (valid("a"), valid("a2"));
    let good = wif45(&[add(&a, "A")]);
    // Saved as ANSI: the pasted U+200E became a byte that is not UTF-8.
    let latin1 = good
        .replace(&a.hex(), &format!("\u{e9}{}", a.hex()))
        .chars()
        .map(|c| c as u32 as u8)
        .collect::<Vec<u8>>();
    let mut link = target("link/web.config", &good, vec![0]);
    link.refused = Some("is a symbolic link; keyroll does not write through links".into());
    let input = inputs(
        settings_for(&["a"], ""),
        vec![issuer("a", &[&a, &a2])],
        vec![
            target("good/web.config", &good, vec![0]),
            kit::target_bytes("ansi/web.config", latin1, vec![0]),
            target(
                "broken/web.config",
                "<configuration><oops></configuration>",
                vec![0],
            ),
            link,
        ],
        Lock::default(),
    );
    let plan = decide(&input, now());
    assert_eq!(plan.files.len(), 1);
    assert_eq!(plan.files[0].display, "good/web.config");
    let named: Vec<&str> = plan.errors.iter().filter_map(|e| e.file()).collect();
    assert_eq!(
        named,
        ["ansi/web.config", "broken/web.config", "link/web.config"]
    );
    for e in &plan.errors {
        assert!(matches!(e, PlanError::Unreadable { .. }), "{e}");
    }
    // The lock keeps what the unreadable files may still trust.
    assert!(plan.lock_after.key("a", &a.hex()).is_some());
}

/// Case 4: an unknown dialect names keyroll.toml's line.
#[test]
fn regression_unknown_dialect_names_the_keyroll_toml_line() {
    let s = settings(
        "[[issuer]]\nname = \"a\"\nmetadata = [\"a.xml\"]\n\n[[target]]\nfiles = [\"*.config\"]\ndialect = \"wif46\"\nissuers = [\"a\"]\n",
    );
    let err = keyroll::load::check_settings(&s, &keyroll::model::rules::RuleSet::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("repo/keyroll.toml:7: target dialect \"wif46\""),
        "{err}"
    );
}

/// Case 6: no arithmetic on times can panic: `--now` near the end of the calendar is an
/// error, and a duration of 100,000,000 hours is refused when keyroll.toml is read.
#[test]
fn regression_time_arithmetic_near_year_9999_is_an_error_not_a_panic() {
    let a = valid("a");
    let input = inputs(
        settings_for(&["a"], ""),
        vec![issuer("a", &[&a])],
        vec![target("web.config", &wif45(&[add(&a, "A")]), vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, datetime!(9999-12-30 0:00 UTC));
    assert!(
        matches!(plan.errors[0], PlanError::Time(_)),
        "{:?}",
        plan.errors
    );

    let err = keyroll::model::settings::Settings::parse(
        std::path::Path::new("keyroll.toml"),
        "[policy]\nremove_after = \"100000000h\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("keyroll.toml:2:"), "{err}");
}

/// Case 7: an issuer whose only published keys have expired is an error, never "keep".
#[test]
fn regression_only_expired_published_keys_is_an_error() {
    let expired = Key::new(
        "old",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2025-01-01 0:00 UTC),
    );
    let input = inputs(
        settings_for(&["a"], ""),
        vec![issuer("a", &[&expired])],
        vec![target("web.config", &wif45(&[add(&expired, "A")]), vec![0])],
        Lock::default(),
    );
    let plan = decide(&input, now());
    assert!(
        matches!(&plan.errors[..], [PlanError::Issuer { issuer, .. }] if issuer == "a"),
        "{:?}",
        plan.errors
    );
    assert!(plan.for_issuer("a").errors.len() == 1);
}

/// The lockout guard holds for the whole plan and for each issuer's slice.
#[test]
fn lockout_guard_refuses_a_plan_that_leaves_no_current_key() {
    let old = Key::new(
        "old",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-05-01 0:00 UTC),
    );
    let future = Key::new(
        "future",
        datetime!(2026-07-01 0:00 UTC),
        datetime!(2027-07-01 0:00 UTC),
    );
    let current = valid("current");
    // The lock remembers `current`, which the metadata no longer publishes; its grace
    // elapsed, so it would be removed, leaving only the not-yet-valid key.
    let seed = inputs(
        settings_for(&["a"], "remove_after = \"1d\""),
        vec![issuer("a", &[&current, &future, &old])],
        vec![target("web.config", &wif45(&[add(&current, "A")]), vec![0])],
        Lock::default(),
    );
    let lock = decide(&seed, datetime!(2026-05-20 0:00 UTC)).lock_after;
    let gone = inputs(
        settings_for(&["a"], "remove_after = \"1d\""),
        vec![issuer("a", &[&future, &old])],
        vec![target("web.config", &wif45(&[add(&current, "A")]), vec![0])],
        lock,
    );
    let lock = decide(&gone, datetime!(2026-05-25 0:00 UTC)).lock_after;
    let input = inputs(
        settings_for(&["a"], "remove_after = \"1d\""),
        vec![issuer("a", &[&future, &old])],
        vec![target("web.config", &wif45(&[add(&current, "A")]), vec![0])],
        lock,
    );
    let plan = decide(&input, now());
    assert!(
        plan.errors
            .iter()
            .any(|e| matches!(e, PlanError::Lockout { issuer, .. } if issuer == "a")),
        "{:?}",
        plan.errors
    );
    assert!(plan.files.is_empty());
}

/// Style fixes are opt-in: a spaced, lowercase entry loads and matches, so it is left alone
/// unless `tidy = true`; and nothing that isn't a change trips the lockout guard.
#[test]
fn untidy_entries_are_left_alone_unless_tidy() {
    let a = valid("a");
    let spaced = format!(
        "<add thumbprint=\"{}\" name=\"A\" />",
        a.hex()
            .to_lowercase()
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let config = wif45(&[spaced]);
    let plan = |policy: &str| {
        decide(
            &inputs(
                settings_for(&["a"], policy),
                vec![issuer("a", &[&a])],
                vec![target("web.config", &config, vec![0])],
                Lock::default(),
            ),
            now(),
        )
    };
    assert!(plan("").files.is_empty());
    let tidy = plan("tidy = true");
    let change = &tidy.files[0].changes[0];
    assert_eq!(change.kind, ChangeKind::Normalize);
    assert!(
        change.reason.to_string().contains("tidy"),
        "{}",
        change.reason
    );

    // The issuer publishes only a key that is not valid yet: with nothing to change, no
    // lockout error either.
    let future = Key::new(
        "future",
        datetime!(2026-07-01 0:00 UTC),
        datetime!(2027-07-01 0:00 UTC),
    );
    let config = wif45(&[add(&future, "A")]);
    let plan = decide(
        &inputs(
            settings_for(&["a"], ""),
            vec![issuer("a", &[&future])],
            vec![target("web.config", &config, vec![0])],
            Lock::default(),
        ),
        now(),
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
}

/// A new entry takes the name the registry already gives the issuer's keys, and the plan
/// says which and why.
#[test]
fn a_new_entry_keeps_the_registrys_name_for_the_issuer_and_says_why() {
    let (a, a2) = (valid("a"), valid("a2"));
    let config = wif45(&[add(&a, "DummySTS")]);
    let plan = decide(
        &inputs(
            settings_for(&["a"], ""),
            vec![issuer("a", &[&a, &a2])],
            vec![target("web.config", &config, vec![0])],
            Lock::default(),
        ),
        now(),
    );
    let change = &plan.files[0].changes[0];
    assert_eq!(change.kind, ChangeKind::Add);
    assert_eq!(
        change.note.as_deref(),
        Some("name \"DummySTS\": the name this registry already gives the issuer's other keys")
    );
    let after = String::from_utf8(plan.files[0].after.clone()).unwrap();
    assert!(after.contains(&format!(
        "<add thumbprint=\"{}\" name=\"DummySTS\" />",
        a2.hex()
    )));
}

/// keyroll.lock is not trusted blindly: a `not_after` edited into the past for a key the
/// metadata still publishes is an error for that issuer, never a removal.
#[test]
fn regression_a_hand_edited_lock_row_is_an_error_not_a_removal() {
    let (a, b) = (valid("a"), valid("b"));
    let config = wif45(&[add(&a, "A"), add(&b, "B")]);
    let seed = inputs(
        settings_for(&["a", "b"], ""),
        vec![issuer("a", &[&a]), issuer("b", &[&b])],
        vec![target("web.config", &config, vec![0])],
        Lock::default(),
    );
    let mut lock = decide(&seed, now()).lock_after;
    lock.issuers
        .get_mut("a")
        .unwrap()
        .get_mut(&a.hex())
        .unwrap()
        .not_after = datetime!(2020-01-01 0:00 UTC);
    let input = inputs(
        settings_for(&["a", "b"], ""),
        vec![issuer("a", &[&a]), issuer("b", &[&b])],
        vec![target("web.config", &config, vec![0])],
        lock,
    );
    let plan = decide(&input, now());
    assert!(
        plan.errors
            .iter()
            .any(|e| matches!(e, PlanError::Issuer { issuer, .. } if issuer == "a")),
        "{:?}",
        plan.errors
    );
    assert!(plan.files.is_empty());
    // The other issuer is unaffected.
    assert!(
        !plan
            .errors
            .iter()
            .any(|e| matches!(e, PlanError::Issuer { issuer, .. } if issuer == "b"))
    );
}
