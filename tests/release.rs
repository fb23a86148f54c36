//! What a release binary says about itself: the commit in `--version`, and one man page per
//! subcommand.

use std::process::Command;

fn keyroll(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_commit() {
    let version = keyroll(&["--version"]);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    // Built from a clone (as here and in CI): that clone's HEAD, as built.
    assert!(head.status.success(), "the tests run from a git clone");
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(
        version,
        format!("keyroll {} ({})\n", env!("CARGO_PKG_VERSION"), head.trim())
    );
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    keyroll(&["man", "--dir", out.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "keyroll.1",
        "keyroll-apply.1",
        "keyroll-init.1",
        "keyroll-inspect.1",
        "keyroll-plan.1",
        "keyroll-pr.1",
        "keyroll-scan.1",
        "keyroll-thumbprint.1",
    ] {
        assert!(
            pages.contains(&page.to_string()),
            "{page} missing: {pages:?}"
        );
    }
    let pr = std::fs::read_to_string(out.join("keyroll-pr.1")).unwrap();
    assert!(pr.contains(".TH keyroll-pr 1"), "{pr}");
    assert!(pr.contains("\\-\\-dry\\-run"), "{pr}");
    // The top page lists the subcommands it points to.
    let top = std::fs::read_to_string(out.join("keyroll.1")).unwrap();
    assert!(top.contains("keyroll\\-pr(1)"), "{top}");
}
