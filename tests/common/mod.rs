//! Helpers shared by the tests that drive git: a `git` runner with a fixed identity and
//! no line-ending conversion, and a recursive copy of example folders.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs git in `dir` and returns its trimmed stdout; fails the test on error.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
        .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A work repository holding the embedded example, committed and pushed to `bare`'s main.
pub fn demo_work_repo(work: &Path, bare: &Path) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo"),
        work,
    );
    git(work, &["init", "-q"]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "demo"]);
    git(work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
}
