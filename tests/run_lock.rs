//! The run lock leaves nothing in the user's work tree (issue 26, item 2): inside a git
//! repository it lives in the git directory (a linked worktree's own), outside one beside
//! keyroll.toml, and it is removed when the run ends, refused or not. Runs still exclude
//! each other, and a file left by a killed run does not block the next.

mod common;
use common::{copy_dir, demo_dir, git};

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use keyroll::act::write::{RUN_LOCK_FILE, RunLock, run_lock_path};

const NOW: &str = "2026-11-23T12:00:00Z";
const LATER: &str = "2026-12-30T12:00:00Z";

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `git status --porcelain --ignored`: untracked and ignored files too.
fn status(work: &Path) -> String {
    let out = Command::new("git")
        .args([
            "status",
            "--porcelain",
            "--ignored",
            "--untracked-files=all",
        ])
        .current_dir(work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn demo_repo(work: &Path) {
    copy_dir(&demo_dir(), work);
    git(work, &["init", "-q"]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "demo"]);
}

#[test]
fn git_status_is_clean_after_apply_a_second_apply_and_a_refused_apply() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    demo_repo(&work);

    // The first apply changes exactly the planned files, and adds nothing.
    let out = keyroll(&work, &["apply", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    let changed: Vec<String> = status(&work).lines().map(str::to_string).collect();
    assert_eq!(
        changed,
        [
            " M keyroll.lock",
            " M src/Contoso.Api/identity.config",
            " M src/Contoso.Web/Web.config"
        ]
    );
    git(&work, &["commit", "-q", "-am", "applied"]);

    // A second apply with nothing to do.
    let out = keyroll(&work, &["apply", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(status(&work), "");

    // A refused apply: a saved plan whose inputs changed since.
    let plan = dir.path().join("plan.json");
    let out = keyroll(
        &work,
        &["plan", "--now", LATER, "--out", plan.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let web = work.join("src/Contoso.Web/Web.config");
    let mut text = std::fs::read(&web).unwrap();
    text.extend_from_slice(b"<!-- edited -->\n");
    std::fs::write(&web, text).unwrap();
    git(&work, &["commit", "-q", "-am", "edited"]);
    let out = keyroll(&work, &["apply", plan.to_str().unwrap(), "--now", LATER]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the inputs changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status(&work), "");

    // A run refused because another holds the lock: the lock is in the git directory,
    // so git shows nothing even while it is held.
    let held = RunLock::acquire(&work, Duration::ZERO).unwrap();
    assert_eq!(held.path, work.join(".git").join("keyroll.lck"));
    let out = keyroll(&work, &["apply", "--now", NOW, "--lock-timeout", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another keyroll apply is running here")
            && stderr(&out).contains("keyroll.lck"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status(&work), "");
    drop(held);
    assert!(
        !work.join(".git/keyroll.lck").exists(),
        "removed when the run ends"
    );
    assert!(!work.join(RUN_LOCK_FILE).exists());
}

#[test]
fn in_a_linked_worktree_and_a_subfolder_the_lock_is_in_that_worktrees_git_directory() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main");
    demo_repo(&main);
    let linked = dir.path().join("linked");
    git(&main, &["worktree", "add", "-q", linked.to_str().unwrap()]);
    assert!(
        linked.join(".git").is_file(),
        ".git is a file in a worktree"
    );
    let own_git_dir = Path::new(&git(&linked, &["rev-parse", "--absolute-git-dir"]))
        .canonicalize()
        .unwrap();
    assert!(own_git_dir.starts_with(main.join(".git/worktrees").canonicalize().unwrap()));
    let path = run_lock_path(&linked);
    assert_eq!(path.file_name().unwrap(), "keyroll.lck");
    assert_eq!(path.parent().unwrap().canonicalize().unwrap(), own_git_dir);
    // keyroll.toml in a subfolder of the repository: the same repository's lock.
    std::fs::create_dir_all(main.join("deploy")).unwrap();
    assert_eq!(
        run_lock_path(&main.join("deploy")),
        main.join(".git").join("keyroll.lck")
    );

    let out = keyroll(&linked, &["apply", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!status(&linked).contains("??"), "{}", status(&linked));
    assert!(!status(&linked).contains("!!"), "{}", status(&linked));
    assert_eq!(status(&main), "", "the main worktree is untouched");
    assert!(!own_git_dir.join("keyroll.lck").exists());
}

#[test]
fn outside_a_repository_the_lock_is_beside_keyroll_toml_and_removed_when_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    copy_dir(&demo_dir(), &work);
    assert_eq!(run_lock_path(&work), work.join(RUN_LOCK_FILE));
    let out = keyroll(&work, &["apply", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!work.join(RUN_LOCK_FILE).exists());
    let out = keyroll(&work, &["apply", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!work.join(RUN_LOCK_FILE).exists());
}

#[test]
fn a_lock_file_left_by_a_killed_run_does_not_block_and_is_removed() {
    // kill -9 ends the process and with it the OS lock; the file stays. The next run takes
    // it at once and removes it.
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    demo_repo(&work);
    let left = work.join(".git/keyroll.lck");
    std::fs::write(
        &left,
        "keyroll apply, pid 999999, since 2026-11-23T12:00:00Z\n",
    )
    .unwrap();
    let out = keyroll(&work, &["apply", "--now", NOW, "--lock-timeout", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!left.exists());

    // The same with a real kill -9 of a process holding it: util-linux flock(1), which
    // with --no-fork holds the lock in the process it runs (here a shell that says when).
    #[cfg(target_os = "linux")]
    {
        use std::io::BufRead as _;
        let child = Command::new("flock")
            .arg("--no-fork")
            .arg(&left)
            .args(["sh", "-c", "echo locked; exec sleep 60"])
            .stdout(std::process::Stdio::piped())
            .spawn();
        match child {
            Ok(mut child) => {
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                assert_eq!(line, "locked\n");
                let busy = RunLock::acquire(&work, Duration::ZERO).unwrap_err();
                assert!(busy.to_string().contains("another keyroll apply"), "{busy}");
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                assert!(left.exists(), "a killed holder leaves its file");
                let out = keyroll(&work, &["apply", "--now", NOW, "--lock-timeout", "0"]);
                assert!(out.status.success(), "{}", stderr(&out));
                assert!(!left.exists());
            }
            Err(e) => println!("flock(1) could not run ({e}): the kill -9 half is skipped"),
        }
    }
}

#[test]
fn runs_still_exclude_each_other_while_each_removes_the_file_it_held() {
    // Many takers at once, each removing the file as it ends: a taker that was waiting on a
    // removed file must not think it holds the lock while another holds a new file.
    let dir = tempfile::tempdir().unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (dir, inside, overlaps, taken) = (
                dir.path().to_path_buf(),
                inside.clone(),
                overlaps.clone(),
                taken.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..150 {
                    let lock = RunLock::acquire(&dir, Duration::from_secs(30)).unwrap();
                    if inside.swap(true, Ordering::SeqCst) {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::yield_now();
                    inside.store(false, Ordering::SeqCst);
                    taken.fetch_add(1, Ordering::SeqCst);
                    drop(lock);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(taken.load(Ordering::SeqCst), 8 * 150);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two runs held the lock at once"
    );
    assert!(!dir.path().join(RUN_LOCK_FILE).exists());
}
