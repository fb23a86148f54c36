//! What keyroll refuses to read (issue 15): issuer names and branch names in keyroll.toml,
//! and every kind of bad row in keyroll.lock — each an error naming the line.

mod kit;

use std::path::Path;

use keyroll::model::lock::{Lock, LockError, LockProblemKind};
use keyroll::model::settings::Settings;
use time::macros::datetime;

fn settings_error(toml: &str) -> String {
    Settings::parse(Path::new("keyroll.toml"), toml)
        .expect_err("refused")
        .to_string()
}

fn issuer(name: &str) -> String {
    format!(
        "[[issuer]]\nname = {}\nmetadata = [\"md.xml\"]\n\n",
        toml::Value::String(name.into())
    )
}

#[test]
fn issuers_whose_branches_collide_are_an_error_naming_both() {
    let toml = format!(
        "{}{}[[target]]\nfiles = [\"**/Web.config\"]\nissuers = [\"Contoso ADFS\"]\n",
        issuer("Contoso ADFS"),
        issuer("contoso-adfs")
    );
    let err = settings_error(&toml);
    assert!(
        err.starts_with("keyroll.toml:6:8: issuers \"Contoso ADFS\" and \"contoso-adfs\" both get the branch \"keyroll/contoso-adfs\""),
        "{err}"
    );
    // Apart, each is fine, and the branch is the slug.
    let one = Settings::parse(Path::new("keyroll.toml"), &issuer("Contoso ADFS")).unwrap();
    assert_eq!(one.branch_name("Contoso ADFS"), "keyroll/contoso-adfs");
    assert_eq!(
        keyroll::act::pr::branch_name(&one, "Contoso ADFS"),
        "keyroll/contoso-adfs"
    );
}

#[test]
fn issuer_names_that_are_empty_climb_or_hide_characters_are_refused() {
    for (name, why) in [
        ("", "is empty"),
        ("   ", "is empty"),
        ("../x", "contains a path separator"),
        ("a/b", "contains a path separator"),
        ("a\\b", "contains a path separator"),
        ("a..b", "contains \"..\""),
        ("tab\there", "contains a control or invisible character"),
        ("\u{200E}adfs", "contains a control or invisible character"),
        ("adfs\u{FEFF}", "contains a control or invisible character"),
        (" adfs", "starts or ends with white space"),
    ] {
        let err = settings_error(&issuer(name));
        assert!(
            err.starts_with("keyroll.toml:2:8: issuer name") && err.contains(why),
            "{name:?}: {err}"
        );
    }
    // A name whose slug is empty gives the branch "keyroll/", which git refuses.
    let err = settings_error(&issuer("---"));
    assert!(
        err.contains("issuer \"---\" gives the branch \"keyroll/\", which git refuses"),
        "{err}"
    );
}

#[test]
fn a_branch_prefix_git_refuses_is_an_error() {
    for prefix in [
        "../refs/heads/main",
        "keyroll..",
        "a b/",
        "x.lock/",
        "/keyroll/",
        "a~b/",
    ] {
        let toml = format!("{}[pr]\nbranch_prefix = \"{prefix}\"\n", issuer("adfs"));
        let err = settings_error(&toml);
        assert!(
            err.starts_with("keyroll.toml:6:1: branch_prefix"),
            "{prefix}: {err}"
        );
    }
    for prefix in ["keyroll/", "bots/keyroll-", "KeyRoll_"] {
        let toml = format!("{}[pr]\nbranch_prefix = \"{prefix}\"\n", issuer("adfs"));
        Settings::parse(Path::new("keyroll.toml"), &toml).unwrap();
    }
}

// ---- keyroll.lock ----

const ROW: &str = "sha1 = \"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\"\nsha256 = \"4A51C9456BF3A1CAD8E03BC2A8B15A4C68180140AAB0ED62E7E66820355D361C\"\nsubject = \"CN=x\"\nnot_before = \"2025-12-13T09:14:02Z\"\nnot_after = \"2026-12-13T09:14:02Z\"\nfirst_seen = \"2025-12-13T10:00:00Z\"\n";

fn lock_text(issuers: &[(&str, &[&str])]) -> String {
    let mut text = String::from("version = 1\n");
    for (name, rows) in issuers {
        text.push_str(&format!("\n[[issuer]]\nname = \"{name}\"\n"));
        for row in *rows {
            text.push_str(&format!("\n[[issuer.key]]\n{row}"));
        }
    }
    text
}

fn problems(text: &str) -> Vec<(Option<usize>, LockProblemKind, String)> {
    match Lock::parse(Path::new("keyroll.lock"), text) {
        Err(LockError::Rows(problems)) => problems
            .into_iter()
            .map(|p| (p.line, p.kind.clone(), p.to_string()))
            .collect(),
        other => panic!("expected row problems, got {other:?}"),
    }
}

#[test]
fn a_good_lock_reads_and_remembers_its_lines() {
    let lock = Lock::parse(Path::new("keyroll.lock"), &lock_text(&[("adfs", &[ROW])])).unwrap();
    let origin = lock.origin.as_ref().unwrap();
    assert_eq!(origin.issuers["adfs"], 4);
    assert_eq!(
        origin.rows[&(
            "adfs".to_string(),
            "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379".to_string()
        )],
        7
    );
}

#[test]
fn each_bad_row_is_an_error_naming_its_line() {
    let cases: [(String, &str, usize); 7] = [
        (
            ROW.replace(
                "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379",
                "5DD3BCFB7A24B73D741CC063ECCD46AE9CD4337Z",
            ),
            "is not 40 hexadecimal digits",
            7,
        ),
        (
            ROW.replace("5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379", "5DD3BC"),
            "is not 40 hexadecimal digits",
            7,
        ),
        (
            ROW.replace("4A51C9456BF3", "4A51C9456BF"),
            "is not 64 hexadecimal digits",
            7,
        ),
        (
            ROW.replace("2026-12-13T09:14:02Z", "next year"),
            "not_after: 'next year' is not an RFC 3339 time",
            11,
        ),
        (
            ROW.replace("2026-12-13T09:14:02Z", "2024-01-01T00:00:00Z"),
            "not_before 2025-12-13T09:14:02Z is not before not_after 2024-01-01T00:00:00Z",
            7,
        ),
        (
            format!("{ROW}missing_since = \"2025-01-01T00:00:00Z\"\n"),
            "missing_since 2025-01-01T00:00:00Z is before first_seen 2025-12-13T10:00:00Z",
            7,
        ),
        (
            ROW.replace("2025-12-13T10:00:00Z", "2025-13-45T10:00:00Z"),
            "first_seen: '2025-13-45T10:00:00Z' is not an RFC 3339 time",
            12,
        ),
    ];
    for (row, says, line) in cases {
        let found = problems(&lock_text(&[("adfs", &[&row])]));
        assert_eq!(found.len(), 1, "{says}: {found:?}");
        assert_eq!(found[0].0, Some(line), "{says}: {found:?}");
        assert!(
            found[0]
                .2
                .starts_with(&format!("keyroll.lock:{line}: issuer \"adfs\""))
                && found[0].2.contains(says),
            "{says}: {}",
            found[0].2
        );
    }
}

#[test]
fn duplicate_tables_and_rows_and_empty_names_are_errors_all_reported_at_once() {
    let lower = ROW.replace(
        "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379",
        "5dd3bcfb7a24b73d741cc063eccd46ae9cd43379",
    );
    let text = lock_text(&[("adfs", &[ROW, &lower]), ("", &[]), ("adfs", &[ROW])]);
    let found = problems(&text);
    let kinds: Vec<&LockProblemKind> = found.iter().map(|f| &f.1).collect();
    assert_eq!(
        kinds,
        [
            &LockProblemKind::DuplicateRow { first_line: 7 },
            &LockProblemKind::EmptyIssuerName,
            &LockProblemKind::DuplicateIssuer { first_line: 4 },
        ]
    );
    assert_eq!(found[0].0, Some(15));
    assert!(
        found[0].2.contains("is listed twice (first at line 7)"),
        "{}",
        found[0].2
    );
    assert!(
        found[2]
            .2
            .contains("has a second [[issuer]] table (the first is at line 4)")
    );
    // The error shows them all, one per line.
    let all = Lock::parse(Path::new("keyroll.lock"), &text)
        .unwrap_err()
        .to_string();
    assert_eq!(all.lines().count(), 3, "{all}");
}

#[test]
fn rows_are_checked_against_the_certificates_the_run_holds() {
    let key = kit::Key::new(
        "CN=adfs",
        datetime!(2026-01-01 00:00 UTC),
        datetime!(2027-01-01 00:00 UTC),
    );
    let row = |not_after: &str, sha256: &str| {
        format!(
            "sha1 = \"{}\"\nsha256 = \"{sha256}\"\nsubject = \"CN=adfs\"\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"{not_after}\"\nfirst_seen = \"2026-01-02T00:00:00Z\"\n",
            key.hex()
        )
    };
    let good = row("2027-01-01T00:00:00Z", &key.cert.sha256_hex());
    let read = |text: &str| Lock::parse(Path::new("keyroll.lock"), text).unwrap();

    let lock = read(&lock_text(&[("adfs", &[&good])]));
    assert_eq!(lock.check_against(&["adfs"], [key.cert.as_ref()]), []);
    // No certificate known for the row: nothing to compare.
    assert_eq!(lock.check_against(&["adfs"], []), []);

    // A not_after edited into the past: an error naming the line, never a removal.
    let edited = row("2026-02-01T00:00:00Z", &key.cert.sha256_hex());
    let lock = read(&lock_text(&[("adfs", &[&edited])]));
    let found = lock.check_against(&["adfs"], [key.cert.as_ref()]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].is_error());
    assert_eq!(found[0].line, Some(7));
    let text = found[0].to_string();
    assert!(
        text.starts_with(&format!("keyroll.lock:7: issuer \"adfs\", key {}: not_after 2026-02-01T00:00:00Z differs from the certificate's 2027-01-01T00:00:00Z", key.hex())),
        "{text}"
    );

    let wrong_hash = row("2027-01-01T00:00:00Z", &"AB".repeat(32));
    let lock = read(&lock_text(&[("adfs", &[&wrong_hash])]));
    let found = lock.check_against(&["adfs"], [key.cert.as_ref()]);
    assert!(
        matches!(&found[..], [p] if matches!(p.kind, LockProblemKind::Mismatch { field: "sha256", .. })),
        "{found:?}"
    );

    // A table for an issuer keyroll.toml does not define: reported (a warning), kept.
    let lock = read(&lock_text(&[("adfs", &[&good]), ("gone", &[ROW])]));
    let found = lock.check_against(&["adfs"], [key.cert.as_ref()]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(!found[0].is_error());
    assert_eq!(
        found[0].to_string(),
        "keyroll.lock:15: stale table: issuer \"gone\" is not defined in keyroll.toml, so keyroll does not use this [[issuer]] table (1 key row) and keeps it as it is; if the issuer is gone, delete the table from this line up to the next [[issuer]]"
    );
    assert!(lock.issuers.contains_key("gone"));

    // Its rows are not used, so not checked: one that disagrees with a certificate the run
    // holds (the issuer renamed, the old table hand-edited) is no error that fails the run.
    let lock = read(&lock_text(&[("adfs", &[&good]), ("gone", &[&edited])]));
    let found = lock.check_against(&["adfs"], [key.cert.as_ref()]);
    assert!(
        matches!(&found[..], [p] if p.kind == LockProblemKind::UnknownIssuer { rows: 1 }),
        "{found:?}"
    );
}

#[test]
fn check_loaded_uses_keyroll_toml_and_the_published_keys() {
    let key = kit::Key::new(
        "CN=adfs",
        datetime!(2026-01-01 00:00 UTC),
        datetime!(2027-01-01 00:00 UTC),
    );
    let settings = kit::settings_for(&["adfs"], "");
    let text = lock_text(&[(
        "adfs",
        &[&format!(
            "sha1 = \"{}\"\nsha256 = \"{}\"\nsubject = \"CN=adfs\"\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2026-06-01T00:00:00Z\"\nfirst_seen = \"2026-01-02T00:00:00Z\"\n",
            key.hex(),
            key.cert.sha256_hex()
        )],
    )]);
    let lock = Lock::parse(Path::new("keyroll.lock"), &text).unwrap();
    let found = lock.check_loaded(&settings, &[kit::issuer("adfs", &[&key])]);
    assert!(
        matches!(&found[..], [p] if matches!(p.kind, LockProblemKind::Mismatch { field: "not_after", .. })),
        "{found:?}"
    );
}

#[test]
fn plan_refuses_a_lock_with_a_bad_row_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    for name in ["keyroll.toml", "keyroll.lock"] {
        std::fs::copy(demo.join(name), dir.path().join(name)).unwrap();
    }
    let lock = std::fs::read_to_string(dir.path().join("keyroll.lock"))
        .unwrap()
        .replace(
            "sha1 = \"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\"",
            "sha1 = \"5DD3BCFB7A24B73D741CC063ECCD46AE9CD4337?\"",
        );
    std::fs::write(dir.path().join("keyroll.lock"), lock).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["plan", "--now", "2026-11-24T00:00:00Z"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keyroll.lock:8: issuer \"contoso-adfs\": sha1 \"5DD3BCFB7A24B73D741CC063ECCD46AE9CD4337?\" is not 40 hexadecimal digits"),
        "{err}"
    );
}
