//! `apply` and `pr` as transactions, through the binary (issue 15): two runs at once, a
//! `kill -9` at random points, saved plans applied or refused, links inside and outside the
//! repository.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOW: &str = "2026-11-24T00:00:00Z";
const OLD_KEY: &str = "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379";

fn keyroll_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .args(args)
        .args(["--now", NOW])
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_REPOSITORY");
    command
}

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    keyroll_cmd(dir, args).output().unwrap()
}

/// A scratch folder in memory (/dev/shm) where there is one: these tests create and
/// rename tens of thousands of files, and a process's death leaves the same files on any
/// file system (only a power loss depends on the disk, and fsync is kept regardless).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo")
}

/// Fails naming the files that differ (not dumping every byte).
#[track_caller]
fn assert_same(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>, context: &str) {
    let differ: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{context}: these files differ: {differ:?}"
    );
}

/// Every file under `dir` (relative path → bytes), keyroll's run lock left out.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(root, &path, out);
            } else if entry.file_name() != ".keyroll.lck" {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let bytes = if kind.is_symlink() {
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()).into_bytes()
                } else {
                    std::fs::read(&path).unwrap()
                };
                out.insert(name, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn strays(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .into_keys()
        .filter(|k| k.rsplit('/').next().unwrap().starts_with(".keyroll-"))
        .collect()
}

/// The demo's metadata without the old key: the issuer has rolled over.
fn metadata_without_old_key() -> String {
    let text = std::fs::read_to_string(demo().join("metadata/FederationMetadata.xml")).unwrap();
    let (open, close) = ("<KeyDescriptor use=\"signing\">", "</KeyDescriptor>");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(open) {
        let end = start + rest[start..].find(close).unwrap() + close.len();
        let block = &rest[start..end];
        let b64_start = block.find("X509Certificate>").unwrap() + "X509Certificate>".len();
        let b64 = &block[b64_start..b64_start + block[b64_start..].find('<').unwrap()];
        let cert = keyroll::model::cert::Certificate::from_base64(b64).unwrap();
        out.push_str(&rest[..start]);
        if cert.sha1.to_upper_hex() != OLD_KEY {
            out.push_str(block);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    assert!(out.len() < text.len(), "the old key was found and left out");
    out
}

/// The demo with `apps` more copies of its Web.config (src/g<n>/App<i>.config), and a second
/// configuration, keyroll-b.toml, in the same folder: the same issuer after its rollover
/// (metadata without the old key, no grace), so that its runs remove what the other's keep.
fn tree(dir: &Path, apps: usize) {
    common::copy_dir(&demo(), dir);
    let web = std::fs::read(dir.join("src/Contoso.Web/Web.config")).unwrap();
    for i in 0..apps {
        let group = dir.join(format!("src/g{}", i % 20));
        std::fs::create_dir_all(&group).unwrap();
        std::fs::write(group.join(format!("App{i}.config")), &web).unwrap();
    }
    let toml = std::fs::read_to_string(dir.join("keyroll.toml"))
        .unwrap()
        .replace(
            "files = [\"src/**/Web.config\"]",
            "files = [\"src/**/Web.config\", \"src/g*/*.config\"]",
        );
    std::fs::write(dir.join("keyroll.toml"), &toml).unwrap();
    std::fs::write(
        dir.join("metadata/rolled-over.xml"),
        metadata_without_old_key(),
    )
    .unwrap();
    std::fs::write(
        dir.join("keyroll-b.toml"),
        toml.replace(
            "metadata/FederationMetadata.xml",
            "metadata/rolled-over.xml",
        )
        .replace("remove_after = \"7d\"", "remove_after = \"0d\""),
    )
    .unwrap();
}

/// `apply` with one configuration. keyroll-b.toml's metadata no longer lists the key the
/// lock knows: run first, that is an identity change (unsigned metadata, no key seen before
/// still published), which these runs accept.
fn apply_args(config: &str) -> Vec<&str> {
    let mut args = vec!["apply", "--config", config];
    if config == "keyroll-b.toml" {
        args.extend(["--accept-identity-change", "contoso-adfs"]);
    }
    args
}

/// The tree after running the given configurations' `apply` one after the other.
fn serially(init: &Path, configs: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let scratch = scratch();
    common::copy_dir(init, scratch.path());
    for config in configs {
        let out = keyroll(scratch.path(), &apply_args(config));
        assert!(out.status.success(), "{config}: {}", stderr(&out));
    }
    snapshot(scratch.path())
}

/// Two `apply` runs at once, many rounds: one plain, one from the rolled-over metadata.
/// Each round must end as if they ran one after the other (in either order): every config
/// and keyroll.lock from the same sequence of runs, never half of each.
#[test]
fn two_applies_at_once_end_as_one_after_the_other() {
    let init = scratch();
    tree(init.path(), 30);
    let a_then_b = serially(init.path(), &["keyroll.toml", "keyroll-b.toml"]);
    let b_then_a = serially(init.path(), &["keyroll-b.toml", "keyroll.toml"]);
    assert_ne!(a_then_b, b_then_a, "the two orders are told apart");
    let mut orders = BTreeMap::new();
    for round in 0..12 {
        let work = scratch();
        common::copy_dir(init.path(), work.path());
        let spawn = |config: &str| {
            keyroll_cmd(work.path(), &apply_args(config))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = if round % 2 == 0 {
            let a = spawn("keyroll.toml");
            (a, spawn("keyroll-b.toml"))
        } else {
            let b = spawn("keyroll-b.toml");
            (spawn("keyroll.toml"), b)
        };
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "round {round}: {}", stderr(&a));
        assert!(b.status.success(), "round {round}: {}", stderr(&b));
        let end = snapshot(work.path());
        let order = if end == a_then_b {
            "a then b"
        } else if end == b_then_a {
            "b then a"
        } else {
            let differs: Vec<&String> = end
                .keys()
                .filter(|k| end.get(*k) != a_then_b.get(*k) && end.get(*k) != b_then_a.get(*k))
                .collect();
            panic!("round {round}: a state no serial order gives; odd files: {differs:?}");
        };
        *orders.entry(order).or_insert(0) += 1;
    }
    eprintln!("orders seen: {orders:?}");
}

/// `kill -9` at random moments of an apply over 1,000 configs, 20 trials: every file is
/// old or new, never torn; the next run removes the staged files the killed one left,
/// says so, and completes the work.
#[test]
fn kill_9_during_apply_leaves_every_file_old_or_new_and_nothing_stray() {
    let pristine = scratch();
    tree(pristine.path(), 1000);
    let old = snapshot(pristine.path());
    // Each trial's tree is hard links to the pristine files: keyroll replaces files by
    // renaming new ones over them, never writing into them, so the pristine copy survives
    // every trial (and a write in place would show up as a torn or changed file here).
    let link_tree = |to: &Path| {
        for name in old.keys() {
            let target = to.join(name);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::hard_link(pristine.path().join(name), target).unwrap();
        }
    };
    // A reference run, watched: when its first staged file appears (the plan's first file
    // is under src/Contoso.Api), and when it ends.
    let full = scratch();
    link_tree(full.path());
    let (run, staging_at, took) = watched_apply(full.path());
    assert!(run.success());
    let writing = took - staging_at.expect("the reference run staged files");
    let new = snapshot(full.path());
    assert_same(
        &snapshot(pristine.path()),
        &old,
        "the pristine tree is untouched",
    );
    let changed = old.keys().filter(|k| old[*k] != new[*k]).count();
    assert!(changed > 1000, "{changed} files change");

    let mut seed = 0x00c0_ffee_u64 ^ u64::from(std::process::id());
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f64 / 1000.0
    };
    let (mut left_strays, mut mixed) = (0, 0);
    for trial in 0..20 {
        let work = scratch();
        link_tree(work.path());
        let mut child = keyroll_cmd(work.path(), &["apply"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Most kills land while files are written (staged, or renamed into place), the
        // rest anywhere from the start.
        if trial % 4 == 0 {
            std::thread::sleep(took.mul_f64(random()));
        } else {
            wait_for_staging(work.path(), &mut child);
            std::thread::sleep(writing.mul_f64(random()));
        }
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();

        let after = snapshot(work.path());
        let stray = strays(work.path());
        let mut now_new = 0;
        for (name, bytes) in &after {
            if stray.contains(name) {
                continue;
            }
            if Some(bytes) == new.get(name) && new[name] != old[name] {
                now_new += 1;
            } else {
                assert_eq!(
                    Some(bytes),
                    old.get(name),
                    "trial {trial}: {name} is neither old nor new"
                );
            }
        }
        if !stray.is_empty() {
            left_strays += 1;
        }
        if now_new > 0 && now_new < changed {
            mixed += 1;
        }

        let next = keyroll(work.path(), &["apply"]);
        assert!(next.status.success(), "trial {trial}: {}", stderr(&next));
        if !stray.is_empty() {
            assert!(
                stderr(&next).contains(&format!(
                    "removed {} stale staged file{} left by an interrupted run",
                    stray.len(),
                    if stray.len() == 1 { "" } else { "s" }
                )),
                "trial {trial}: {} strays, told: {}",
                stray.len(),
                stderr(&next)
            );
        }
        assert_eq!(strays(work.path()), Vec::<String>::new(), "trial {trial}");
        let done = snapshot(work.path());
        assert_eq!(done.len(), new.len(), "trial {trial}");
        for (name, bytes) in &done {
            // The run completes the work (keyroll.lock's first_seen is the same --now).
            assert_eq!(bytes, &new[name], "trial {trial}: {name}");
        }
    }
    eprintln!("kill -9: {left_strays} of 20 trials left staged files, {mixed} stopped mid-commit");
    assert!(
        left_strays > 0,
        "no kill landed while files were staged; the test proves nothing"
    );
    assert_same(&snapshot(pristine.path()), &old, "pristine");
}

fn staging(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("src/Contoso.Api"))
        .unwrap()
        .any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".keyroll-")
        })
}

/// Returns once the child has staged a file (or has ended).
fn wait_for_staging(dir: &Path, child: &mut std::process::Child) {
    while !staging(dir) && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `apply` in `dir`: its status, when staging began, and how long it took.
fn watched_apply(dir: &Path) -> (std::process::ExitStatus, Option<Duration>, Duration) {
    let start = Instant::now();
    let mut child = keyroll_cmd(dir, &["apply"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_staging(dir, &mut child);
    let staging_at = child.try_wait().unwrap().is_none().then(|| start.elapsed());
    let status = child.wait().unwrap();
    (status, staging_at, start.elapsed())
}

#[test]
fn a_second_apply_waits_for_the_first_and_says_so_when_it_gives_up() {
    let dir = scratch();
    tree(dir.path(), 0);
    let held = keyroll::act::write::RunLock::acquire(dir.path(), Duration::ZERO).unwrap();
    let before = snapshot(dir.path());
    let out = keyroll(dir.path(), &["apply", "--lock-timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("another keyroll apply is running here")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert_same(&snapshot(dir.path()), &before, "nothing written");
    drop(held);
    let out = keyroll(dir.path(), &["apply", "--lock-timeout", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

// ---- saved plans ----

fn saved_plan_tree() -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    tree(dir.path(), 3);
    let plan = dir.path().join("plan.json");
    let out = keyroll(dir.path(), &["plan", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, plan)
}

#[test]
fn an_unchanged_saved_plan_applies_exactly_as_planned() {
    let (dir, plan) = saved_plan_tree();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    assert_eq!(json["schema"], "keyroll-saved-plan");
    assert_eq!(json["version"], 1);
    assert_eq!(json["as_of"], NOW);
    assert_eq!(json["inputs"]["targets"].as_array().unwrap().len(), 6);
    assert_eq!(json["files"].as_array().unwrap().len(), 5);

    // The same tree applied live on the day the plan is applied is the reference: the files
    // are the plan's (decided again that day, they must be the same or the plan is out of
    // date), and keyroll.lock's dates are that day's, never the plan's own (a plan dated
    // in the past would cut grace periods short).
    let live = scratch();
    common::copy_dir(dir.path(), live.path());
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["apply", "--now", "2026-11-25T00:00:00Z"])
        .current_dir(live.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // Applied a day later.
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["apply", "plan.json", "--now", "2026-11-25T00:00:00Z"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("applied: 5 files written, keyroll.lock updated"),
        "{}",
        stderr(&out)
    );
    assert_same(
        &snapshot(dir.path()),
        &snapshot(live.path()),
        "saved = live",
    );

    // Applied twice: the files it read have changed (by itself), so it refuses.
    let again = keyroll(dir.path(), &["apply", "plan.json"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("the inputs changed since the plan was made"));
}

/// Each kind of input change makes `apply PLAN` refuse, naming it, with nothing written.
#[test]
fn a_saved_plan_is_refused_after_any_input_changes() {
    type Change = fn(&Path);
    let cases: [(&str, Change, &str); 8] = [
        (
            "keyroll.toml",
            |d| append(&d.join("keyroll.toml"), "\n# reviewed\n"),
            "keyroll.toml changed",
        ),
        (
            "keyroll.lock",
            |d| append(&d.join("keyroll.lock"), "# hand edit\n"),
            "keyroll.lock changed",
        ),
        (
            "keyroll.lock deleted",
            |d| std::fs::remove_file(d.join("keyroll.lock")).unwrap(),
            "keyroll.lock was deleted",
        ),
        (
            "metadata",
            |d| {
                std::fs::copy(
                    d.join("metadata/rolled-over.xml"),
                    d.join("metadata/FederationMetadata.xml"),
                )
                .unwrap();
            },
            "issuer contoso-adfs: metadata metadata/FederationMetadata.xml changed",
        ),
        (
            "metadata unreadable",
            |d| std::fs::remove_file(d.join("metadata/FederationMetadata.xml")).unwrap(),
            "issuer contoso-adfs: its metadata loaded when planned and fails now",
        ),
        (
            "a target",
            |d| append(&d.join("src/g1/App1.config"), "<!-- edited -->\n"),
            "src/g1/App1.config changed",
        ),
        (
            "a new target",
            |d| {
                std::fs::copy(d.join("src/g1/App1.config"), d.join("src/g1/App9.config")).unwrap();
            },
            "src/g1/App9.config is a new target file",
        ),
        (
            "a target removed",
            |d| std::fs::remove_file(d.join("src/g2/App2.config")).unwrap(),
            "src/g2/App2.config is gone",
        ),
    ];
    for (what, change, says) in cases {
        let (dir, _plan) = saved_plan_tree();
        change(dir.path());
        let before = snapshot(dir.path());
        let out = keyroll(dir.path(), &["apply", "plan.json"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains("the inputs changed since the plan was made") && err.contains(says),
            "{what}: {err}"
        );
        assert_same(&snapshot(dir.path()), &before, what);
    }
}

fn append(path: &Path, text: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn an_edited_or_newer_plan_file_is_refused() {
    let (dir, plan) = saved_plan_tree();
    let text = std::fs::read_to_string(&plan).unwrap();
    // Someone edits the new text of a file in the plan (a thumbprint swapped).
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let after = json["files"][1]["after"].as_str().unwrap().to_string();
    let edited = after.replacen(
        "81CB9F506E54F19731D89F749FBBCE8FE6476295",
        &"0".repeat(40),
        1,
    );
    assert_ne!(edited, after);
    json["files"][1]["after"] = edited.into();
    std::fs::write(&plan, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let before = snapshot(dir.path());
    let out = keyroll(dir.path(), &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("do not match after_sha256"),
        "{}",
        stderr(&out)
    );
    assert_same(&snapshot(dir.path()), &before, "nothing written");

    std::fs::write(&plan, text.replacen("\"version\": 1", "\"version\": 2", 1)).unwrap();
    let before = snapshot(dir.path());
    let out = keyroll(dir.path(), &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("saved-plan format version 2 is not supported"),
        "{}",
        stderr(&out)
    );
    assert_same(&snapshot(dir.path()), &before, "nothing written");
}

/// `pr --plan` publishes the saved plan: the same proposals as planning now at its time;
/// and refuses when an input changed.
#[test]
fn pr_publishes_a_saved_plan_or_refuses_it() {
    let (dir, _plan) = saved_plan_tree();
    let proposals = |args: &[&str]| {
        let out = keyroll(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["proposal"].clone())
            .collect::<Vec<_>>()
    };
    let live = proposals(&["pr", "--dry-run", "--format", "json"]);
    assert!(!live.is_empty() && !live[0].is_null());
    let saved = proposals(&["pr", "--dry-run", "--format", "json", "--plan", "plan.json"]);
    assert_eq!(saved, live);

    append(&dir.path().join("src/g0/App0.config"), "<!-- edited -->\n");
    let out = keyroll(
        dir.path(),
        &["pr", "--dry-run", "--format", "json", "--plan", "plan.json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("src/g0/App0.config changed"),
        "{}",
        stderr(&out)
    );
}

// ---- links ----

#[cfg(unix)]
#[test]
fn a_link_inside_the_repository_is_edited_through_and_one_outside_is_refused() {
    let outside = scratch();
    let dir = scratch();
    tree(dir.path(), 0);
    let d = dir.path();
    // src/Linked/Web.config -> ../Contoso.Web/Web.config (inside): one file, edited through.
    std::fs::create_dir_all(d.join("src/Linked")).unwrap();
    std::os::unix::fs::symlink("../Contoso.Web/Web.config", d.join("src/Linked/Web.config"))
        .unwrap();
    // src/Away/Web.config -> a file outside the repository: refused, never read or written.
    let away = outside.path().join("Web.config");
    std::fs::copy(d.join("src/Contoso.Web/Web.config"), &away).unwrap();
    std::fs::create_dir_all(d.join("src/Away")).unwrap();
    std::os::unix::fs::symlink(&away, d.join("src/Away/Web.config")).unwrap();
    let away_before = std::fs::read(&away).unwrap();

    let plan = keyroll(d, &["plan", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let planned: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        planned,
        [
            "src/Contoso.Api/identity.config",
            "src/Contoso.Web/Web.config"
        ],
        "the linked file once, by its real name"
    );

    let errors: Vec<&str> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("src/Away/Web.config:1:1: refused: is a symbolic link to")
            && errors[0].contains("outside keyroll.toml's folder"),
        "{errors:?}"
    );
    let out = keyroll(d, &["apply"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("applied: 2 files written"), "{err}");
    let link = d.join("src/Linked/Web.config");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let through = std::fs::read_to_string(&link).unwrap();
    assert!(through.contains("81CB9F506E54F19731D89F749FBBCE8FE6476295"));
    assert_eq!(std::fs::read(&away).unwrap(), away_before);
    assert!(
        std::fs::symlink_metadata(d.join("src/Away/Web.config"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// `pr` reads the base commit: there too a link inside is followed (the commit edits its
/// target) and one leaving keyroll.toml's folder is refused.
#[cfg(unix)]
#[test]
fn in_a_commit_a_link_inside_is_followed_and_one_outside_is_refused() {
    let dir = scratch();
    tree(dir.path(), 0);
    let d = dir.path();
    std::fs::create_dir_all(d.join("src/Linked")).unwrap();
    std::os::unix::fs::symlink("../Contoso.Web/Web.config", d.join("src/Linked/Web.config"))
        .unwrap();
    std::fs::create_dir_all(d.join("src/Away")).unwrap();
    std::os::unix::fs::symlink(
        "../../../elsewhere/Web.config",
        d.join("src/Away/Web.config"),
    )
    .unwrap();
    common::git(d, &["init", "-q"]);
    common::git(d, &["add", "-A"]);
    common::git(d, &["commit", "-q", "-m", "links"]);
    let head = git2::Oid::from_str(&common::git(d, &["rev-parse", "HEAD"])).unwrap();
    let repo = keyroll::load::git::GitRepo::discover(d).unwrap();
    let settings = keyroll::model::settings::Settings::load(&d.join("keyroll.toml")).unwrap();
    let (targets, _) = keyroll::load::load_targets(
        &settings,
        &keyroll::model::rules::RuleSet::builtin(),
        &keyroll::load::Tree::Git {
            repo: &repo,
            commit: head,
            prefix: String::new(),
        },
    )
    .unwrap();
    let seen: Vec<(&str, Option<&str>)> = targets
        .iter()
        .map(|t| (t.display.as_str(), t.refused.as_deref()))
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.contains(&("src/Contoso.Web/Web.config", None)),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(d, _)| *d == "src/Linked/Web.config"),
        "{seen:?}"
    );
    let away = seen
        .iter()
        .find(|(d, _)| *d == "src/Away/Web.config")
        .and_then(|(_, r)| *r)
        .unwrap();
    assert!(
        away.contains(
            "is a symbolic link to ../../../elsewhere/Web.config, outside keyroll.toml's folder"
        ),
        "{away}"
    );
}
