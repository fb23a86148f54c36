//! `keyroll plan` and `keyroll pr --dry-run` publish the same one plan: on the embedded
//! example, on two issuers sharing one registry, and when the work tree has moved past the
//! base the pull requests target (pr plans against the base, and says so).

mod common;
mod kit;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use kit::Key;
use time::macros::datetime;

const NOW: &str = "2026-11-23T12:00:00Z";

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .args(["--now", NOW])
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap()
}

type Proposed = BTreeSet<(String, String, u64, String)>;

fn plan_changes(dir: &Path) -> Proposed {
    let out = keyroll(dir, &["plan", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut all = Proposed::new();
    for file in json["files"].as_array().unwrap() {
        for c in file["changes"].as_array().unwrap() {
            all.insert((
                file["path"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap(),
                c["thumbprint"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    all
}

fn pr_changes(dir: &Path) -> (Proposed, Vec<Proposed>, String) {
    let out = keyroll(
        dir,
        &["pr", "--dry-run", "--format", "json", "--repo", "o/r"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut all = Proposed::new();
    let mut per_issuer = Vec::new();
    for issuer in json["issuers"].as_array().unwrap() {
        let mut mine = Proposed::new();
        for c in issuer["proposal"]["changes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let row = (
                c["file"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap(),
                c["thumbprint"].as_str().unwrap_or("").to_string(),
            );
            assert!(all.insert(row.clone()), "{row:?} proposed twice");
            mine.insert(row);
        }
        per_issuer.push(mine);
    }
    (
        all,
        per_issuer,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_and_pr_dry_run_propose_the_same_changes_on_the_embedded_example() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(Path::new("examples/demo"), dir.path());
    let plan = plan_changes(dir.path());
    assert_eq!(plan.len(), 3, "{plan:?}");
    let (pr, _, _) = pr_changes(dir.path());
    assert_eq!(plan, pr);
}

#[test]
fn plan_and_pr_dry_run_agree_on_two_issuers_sharing_one_registry() {
    let valid = |cn| {
        Key::new(
            cn,
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2027-06-01 0:00 UTC),
        )
    };
    let (a, a2, b) = (valid("a"), valid("a2"), valid("b"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.xml"), kit::metadata("urn:a", &[&a, &a2])).unwrap();
    std::fs::write(root.join("b.xml"), kit::metadata("urn:b", &[&b])).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    // b's key was pasted with a U+200E: a hygiene fix, which must appear in one PR only.
    let config = kit::wif45(&[
        kit::add(&a, "A"),
        format!("<add thumbprint=\"\u{200E}{}\" name=\"B\" />", b.hex()),
    ]);
    std::fs::write(root.join("app/web.config"), config).unwrap();
    std::fs::write(
        root.join("keyroll.toml"),
        "[[issuer]]\nname = \"a\"\nmetadata = [\"a.xml\"]\n\n[[issuer]]\nname = \"b\"\nmetadata = [\"b.xml\"]\n\n[[target]]\nfiles = [\"app/*.config\"]\nissuers = [\"a\", \"b\"]\n\n[policy]\nkeep_unknown = false\n",
    )
    .unwrap();
    let plan = plan_changes(root);
    let (pr, per_issuer, _) = pr_changes(root);
    assert_eq!(plan, pr);
    // a adds its new key; b's PR carries the cleaning of b's entry; nobody removes anything.
    assert!(
        per_issuer[0]
            .iter()
            .any(|c| c.1 == "add" && c.3 == a2.hex())
    );
    assert!(
        per_issuer[1]
            .iter()
            .any(|c| c.1 == "normalize" && c.3 == b.hex())
    );
    assert!(pr.iter().all(|c| c.1 != "remove"), "{pr:?}");
}

#[test]
fn regression_pr_after_apply_in_the_work_tree_still_proposes_against_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::copy_dir(Path::new("examples/demo"), root);
    common::git(root, &["init", "-q"]);
    common::git(root, &["add", "-A"]);
    common::git(root, &["commit", "-qm", "base"]);
    let out = keyroll(root, &["apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The work tree now trusts the new key; the base (HEAD) does not.
    assert!(plan_changes(root).is_empty());
    let (pr, _, stderr) = pr_changes(root);
    assert_eq!(pr.len(), 3, "{pr:?}");
    assert!(stderr.contains("planning against HEAD"), "{stderr}");
    assert!(
        stderr.contains("the work tree differs from the base in"),
        "{stderr}"
    );
}
