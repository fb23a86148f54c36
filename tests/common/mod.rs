//! Helpers shared by the tests that run the binary or drive git: a `git` runner with a fixed
//! identity and no line-ending conversion, work repositories with a bare `origin`, a
//! recursive copy of example folders, a temporary repository keyroll runs in, and the
//! assertions on a command's output they all make.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// The embedded example (README's first command).
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
}

/// A work repository holding the embedded example, committed and pushed to `bare`'s main.
pub fn demo_work_repo(work: &Path, bare: &Path) {
    copy_dir(&demo_dir(), work);
    git(work, &["init", "-q"]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "demo"]);
    git(work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
}

/// A bare repository `dir/origin.git`, and an empty work repository `work` whose `origin` it
/// is. Returns the bare repository's path.
pub fn init_with_origin(dir: &Path, work: &Path) -> PathBuf {
    let bare = dir.join("origin.git");
    git(dir, &["init", "-q", "--bare", "origin.git"]);
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q"]);
    git(work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    bare
}

/// Commits everything in `work` and pushes it to `origin`'s main.
pub fn commit_and_push(work: &Path, message: &str) {
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["push", "-q", "origin", "HEAD:main"]);
}

/// The commit `branch` points at in the bare repository, if the branch exists.
pub fn remote_head(bare: &Path, branch: &str) -> Option<String> {
    let out = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(bare)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails the test, showing both streams, unless the command exited 0.
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails the test, showing `text`, unless it contains `needle`.
#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

/// A temporary folder (not a git repository) that keyroll runs in, with its keyroll.toml at
/// the top.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn empty() -> Repo {
        Repo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn with_settings(settings: &str) -> Repo {
        let repo = Repo::empty();
        repo.write("keyroll.toml", settings);
        repo
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    pub fn lock(&self) -> Option<String> {
        std::fs::read_to_string(self.path("keyroll.lock")).ok()
    }

    /// `keyroll <args> --now <now> --config <keyroll.toml>`.
    pub fn run(&self, args: &[&str], now: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(args)
            .arg("--now")
            .arg(now)
            .arg("--config")
            .arg(self.path("keyroll.toml"))
            .output()
            .unwrap()
    }

    /// `keyroll apply`, which must succeed; returns its output.
    pub fn apply(&self, now: &str) -> String {
        let out = self.run(&["apply"], now);
        assert!(
            out.status.success(),
            "apply at {now} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn plan_json(&self, now: &str) -> serde_json::Value {
        let out = self.run(&["plan", "--format", "json"], now);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
