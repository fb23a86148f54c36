//! Messages that must not mislead (issue 26, item 9), through the binary:
//! - after a refused takeover, a key the configs trust is said to be in keyroll.lock (it is),
//!   under the issuer that failed, never "not in keyroll.lock";
//! - `scan` reports every file `plan` cannot read (a symbolic link leaving the folder, a NUL
//!   byte, UTF-32) with the file, position and reason `plan` gives;
//! - durations print singular for one ("grace of 1 hour", never "1 hours");
//! - a keyroll.lock table for an issuer keyroll.toml no longer defines is a warning naming
//!   keyroll.lock, its line and the issuer, and how to drop it; the plan does not fail.

mod sigkit;

use std::process::{Command, Output};

use sigkit::{ENTITY_ID, Signer, entity, keys};
use time::OffsetDateTime;

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn unsigned(first: &Signer, second: &Signer) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        entity("_a1", ENTITY_ID, "", &first.base64(), &second.base64())
    )
}

fn sha1(key: &Signer) -> String {
    key.certificate.sha1.to_string()
}

fn web_config(thumbprints: &[String]) -> String {
    let adds: String = thumbprints
        .iter()
        .map(|t| format!("<add thumbprint=\"{t}\" name=\"adfs\" />\n"))
        .collect();
    format!(
        "<configuration><configSections><section name=\"system.identityModel\" type=\"x\" /></configSections><system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\"><trustedIssuers>\n{adds}</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>\n"
    )
}

/// A repository with one issuer, `name`, whose metadata is md.xml and whose target is
/// Web.config.
struct Repo {
    dir: tempfile::TempDir,
    start: OffsetDateTime,
}

impl Repo {
    fn new(name: &str, policy: &str) -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
            // The test keys were made just now: act a day later.
            start: OffsetDateTime::now_utc() + time::Duration::days(1),
        };
        repo.config(name, policy);
        repo
    }

    fn config(&self, name: &str, policy: &str) {
        self.write(
            "keyroll.toml",
            &format!(
                "[[issuer]]\nname = \"{name}\"\nmetadata = [\"md.xml\"]\nentity_id = \"{ENTITY_ID}\"\n\n[[target]]\nfiles = [\"Web.config\"]\nissuers = [\"{name}\"]\n\n[policy]\n{policy}\n"
            ),
        );
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn run(&self, after: time::Duration, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(args)
            .args(["--now", &keyroll::model::cert::rfc3339(self.start + after)])
            .current_dir(self.dir.path())
            .env_remove("GITHUB_TOKEN")
            .output()
            .unwrap()
    }
}

/// keyroll.lock's line holding `needle`, 1-based.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn after_a_refused_takeover_the_old_key_is_said_to_be_in_keyroll_lock() {
    let k = keys();
    let repo = Repo::new("adfs", "");
    repo.write("Web.config", &web_config(&[sha1(&k.current)]));
    repo.write("md.xml", &unsigned(&k.current, &k.next));
    let out = repo.run(time::Duration::ZERO, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.read("keyroll.lock").contains(&sha1(&k.current)));

    // Someone else's keys only: an identity change, refused.
    repo.write("md.xml", &unsigned(&k.attacker, &k.attacker));
    let out = repo.run(time::Duration::days(1), &["plan"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("identity change, not a rollover"), "{said}");
    let note = said
        .lines()
        .find(|l| l.starts_with("note: Web.config:2:"))
        .unwrap_or_else(|| panic!("a note for Web.config:2 in {said}"));
    assert!(
        note.contains(&format!(
            "{} is in keyroll.lock for issuer \"adfs\", which failed this run",
            sha1(&k.current)
        )),
        "{note}"
    );
    assert!(!note.contains("not in keyroll.lock"), "{note}");
}

#[test]
fn durations_print_singular_for_one() {
    let k = keys();
    let repo = Repo::new("adfs", "remove_after = \"1h\"");
    repo.write(
        "Web.config",
        &web_config(&[sha1(&k.current), sha1(&k.next)]),
    );
    repo.write("md.xml", &unsigned(&k.current, &k.next));
    let out = repo.run(time::Duration::ZERO, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));

    // The current key leaves the metadata: kept through its grace of one hour, then removed.
    repo.write("md.xml", &unsigned(&k.next, &k.next));
    // (apply records since when it is absent.)
    let out = repo.run(time::Duration::minutes(10), &["apply"]);
    let kept = text(&out);
    assert!(out.status.success(), "{kept}");
    assert!(kept.contains("(grace of 1 hour)"), "{kept}");
    let out = repo.run(time::Duration::hours(3), &["plan"]);
    let removed = text(&out);
    assert!(out.status.success(), "{removed}");
    assert!(removed.contains("grace of 1 hour elapsed"), "{removed}");
    for said in [&kept, &removed] {
        assert!(!said.contains("1 hours"), "{said}");
    }
}

#[test]
fn a_keyroll_lock_table_for_an_issuer_no_longer_defined_is_a_warning_naming_its_line() {
    let k = keys();
    let repo = Repo::new("adfs", "");
    repo.write("Web.config", &web_config(&[sha1(&k.current)]));
    repo.write("md.xml", &unsigned(&k.current, &k.next));
    let out = repo.run(time::Duration::ZERO, &["apply"]);
    assert!(out.status.success(), "{}", text(&out));

    // The issuer renamed in keyroll.toml: its old table stays, unused.
    repo.config("contoso-adfs", "");
    let lock = repo.read("keyroll.lock");
    let line = line_of(&lock, "name = \"adfs\"");
    // `pr` (the Action's main job) says it too.
    for args in [
        &["plan"][..],
        &["plan", "--format", "json"],
        &["pr", "--dry-run", "--repo", "o/r"],
        &["apply"],
    ] {
        let out = repo.run(time::Duration::days(1), args);
        let said = text(&out);
        assert!(out.status.success(), "{args:?}: {said}");
        let expected = format!(
            "keyroll.lock:{line}: stale table: issuer \\\"adfs\\\" is not defined in keyroll.toml"
        );
        let expected = if args.contains(&"json") {
            expected
        } else {
            expected.replace('\\', "")
        };
        assert!(said.contains(&expected), "{args:?}: {said}");
        assert!(
            said.contains("delete the table from this line up to the next [[issuer]]"),
            "{args:?}: {said}"
        );
    }
    // Kept as it was: keyroll never drops it silently.
    assert!(repo.read("keyroll.lock").contains("name = \"adfs\""));
}

/// The files `plan` refuses to read, each reported by `scan` with the same position and
/// reason, whichever walk (one thread, many) finds them.
#[cfg(unix)]
#[test]
fn scan_reports_every_file_plan_cannot_read_as_plan_does() {
    let k = keys();
    let repo = Repo::new("adfs", "");
    let root = repo.dir.path();
    let config = web_config(&[sha1(&k.current)]);
    repo.write("md.xml", &unsigned(&k.current, &k.next));
    repo.config("adfs", "");
    // Every Web.config below the folder is a target.
    let toml = repo
        .read("keyroll.toml")
        .replace("files = [\"Web.config\"]", "files = [\"**/Web.config\"]");
    repo.write("keyroll.toml", &toml);
    repo.write("Web.config", &config);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("Web.config"), &config).unwrap();
    let real_outside = std::fs::canonicalize(outside.path().join("Web.config")).unwrap();
    for dir in ["Link", "Nul", "Utf32"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::os::unix::fs::symlink(&real_outside, root.join("Link/Web.config")).unwrap();
    let mut nul = config.clone().into_bytes();
    nul.splice(30..30, *b"\0");
    std::fs::write(root.join("Nul/Web.config"), nul).unwrap();
    let mut utf32 = vec![0xFF, 0xFE, 0, 0];
    utf32.extend(config.chars().flat_map(|c| (c as u32).to_le_bytes()));
    std::fs::write(root.join("Utf32/Web.config"), utf32).unwrap();

    let plan = repo.run(time::Duration::ZERO, &["plan"]);
    let plan_said = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{plan_said}");
    let link = format!("is a symbolic link to {}, outside", real_outside.display());
    let expected = [
        ("Link/Web.config:1:1", link.as_str()),
        ("Nul/Web.config:1:31", "holds a NUL byte"),
        ("Utf32/Web.config:1:1", "UTF-32 (by its byte-order mark)"),
    ];
    for threads in ["1", "0", "3"] {
        let scan = repo.run(time::Duration::ZERO, &["scan", "--threads", threads]);
        let scan_said = text(&scan);
        assert_eq!(scan.status.code(), Some(1), "{scan_said}");
        for (at, why) in expected {
            for (command, said) in [("plan", &plan_said), ("scan", &scan_said)] {
                assert!(
                    said.lines().any(|l| l.contains(at) && l.contains(why)),
                    "{command} (threads {threads}) should report {at}: {why}:\n{said}"
                );
            }
        }
    }
    // A link leading nowhere is reported too; one inside the folder is read where it leads.
    std::os::unix::fs::symlink("gone.config", root.join("Link/Dangling.config")).unwrap();
    std::os::unix::fs::symlink("../Web.config", root.join("Nul/Inside.config")).unwrap();
    let scan = repo.run(time::Duration::ZERO, &["scan", "--format", "json"]);
    let said = text(&scan);
    assert!(
        said.contains("is a symbolic link to a file that does not exist"),
        "{said}"
    );
    assert!(!said.contains("Inside.config"), "{said}");

    // A link inside the folder to a file no rule's name matches: `plan` reads and edits
    // that file, so `scan` reads it too, under the file's own path, on either walk.
    std::fs::create_dir_all(root.join("shared")).unwrap();
    std::fs::create_dir_all(root.join("Linked")).unwrap();
    std::fs::write(root.join("shared/base.xml"), &config).unwrap();
    std::os::unix::fs::symlink("../shared/base.xml", root.join("Linked/Web.config")).unwrap();
    // And a refused link is said once: not read through, so not also "malformed".
    std::fs::create_dir_all(root.join("Gone")).unwrap();
    std::os::unix::fs::symlink("nowhere.config", root.join("Gone/Web.config")).unwrap();
    let plan = text(&repo.run(time::Duration::ZERO, &["plan"]));
    assert!(
        plan.lines().any(|l| l.trim() == "shared/base.xml"),
        "plan edits the link's target:\n{plan}"
    );
    for refused in ["Gone/Web.config", "Link/Web.config"] {
        let lines: Vec<&str> = plan.lines().filter(|l| l.contains(refused)).collect();
        assert!(
            lines.iter().any(|l| l.contains("is a symbolic link to")),
            "{refused}:\n{plan}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("malformed")),
            "{refused} is refused, not parsed:\n{plan}"
        );
    }
    for threads in ["1", "0", "3"] {
        let scan = text(&repo.run(time::Duration::ZERO, &["scan", "--threads", threads]));
        let thumbprint = sha1(&k.current);
        assert!(
            scan.lines()
                .any(|l| l.starts_with("shared/base.xml:") && l.contains(&thumbprint)),
            "scan (threads {threads}) reads the link's target as plan does:\n{scan}"
        );
        assert!(
            scan.lines()
                .any(|l| l.starts_with("Gone/Web.config:1:1") && l.contains("does not exist")),
            "{scan}"
        );
        assert!(!scan.contains("Linked/Web.config"), "{scan}");
    }

    // A link to a folder, or to a FIFO (which opening would block on), is refused in the same
    // words by both; a FIFO itself is passed over by both, never opened.
    for dir in ["ToFolder", "ToFifo", "Fifo"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::os::unix::fs::symlink("../shared", root.join("ToFolder/Web.config")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("Fifo/Web.config"))
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("../Fifo/Web.config", root.join("ToFifo/Web.config")).unwrap();
    let plan = text(&repo.run(time::Duration::ZERO, &["plan"]));
    let scan = text(&repo.run(time::Duration::ZERO, &["scan"]));
    for (at, why) in [
        (
            "ToFolder/Web.config:1:1",
            "is a symbolic link to the folder",
        ),
        ("ToFifo/Web.config:1:1", "which is no regular file"),
    ] {
        for (command, said) in [("plan", &plan), ("scan", &scan)] {
            assert!(
                said.lines().any(|l| l.contains(at) && l.contains(why)),
                "{command} should report {at}: {why}:\n{said}"
            );
        }
    }
    // Reached at all: neither opened the FIFO, nor reports it as a file of its own.
    for said in [&plan, &scan] {
        assert!(
            !said
                .lines()
                .any(|l| l.replace("ToFifo/", "").contains("Fifo/Web.config:")),
            "{said}"
        );
    }
}
