//! CI that passes where it runs (issue 26, item 7), checked from .github/workflows/ci.yml
//! itself:
//! - every job that runs tests (`cargo test`, `scripts/test`, `.ci/run`) installs xmlsec1 and
//!   openssl in its own `run:` step first, for each OS it runs on, and caches cargo's
//!   downloads and build with an action pinned by commit; a failing job keeps proptest's
//!   failing cases as an artifact, and no property test turns their file off;
//! - the Linux job's steps, run in order as an unprivileged user with passwordless sudo (the
//!   runner's `runner`): its install step, then scripts/test's tool check, which no longer
//!   stops at "needs: sudo apt-get install". The check itself is shown to stop without
//!   xmlsec1, as it did on GitHub. The rest of the job (`.ci/run`: fmt, clippy, the linters
//!   and the whole suite, this test included) is not run twice;
//! - the release binaries are run, not only linted: a Linux job runs scripts/release-check,
//!   which `.ci/run` runs too where it is the whole CI (issue 26).
//!
//! The run needs such a user: on GitHub's Linux runner (GITHUB_ACTIONS=true) it is the
//! current one; as root, name one in KEYROLL_CI_RUNNER_USER (set up with `useradd -m NAME`
//! and `NAME ALL=(ALL) NOPASSWD:ALL` in /etc/sudoers.d/NAME). Elsewhere it says why it
//! does not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml_ng::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workflow() -> Value {
    let text = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn steps(job: &Value) -> &[Value] {
    job["steps"].as_sequence().expect("steps")
}

fn run_of(step: &Value) -> &str {
    step["run"].as_str().unwrap_or("")
}

fn runs_tests(step: &Value) -> bool {
    let run = run_of(step);
    ["cargo test", "scripts/test", ".ci/run"]
        .iter()
        .any(|t| run.contains(t))
}

/// The runner OS names (`Linux`, `macOS`, `Windows`) a job runs on.
fn oses(job: &Value) -> Vec<&'static str> {
    let runs_on = job["runs-on"].as_str().unwrap();
    let labels: Vec<String> = if runs_on.contains("matrix.os") {
        job["strategy"]["matrix"]["os"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    } else {
        vec![runs_on.to_string()]
    };
    labels
        .iter()
        .map(|l| match l.split('-').next().unwrap() {
            "ubuntu" => "Linux",
            "macos" => "macOS",
            "windows" => "Windows",
            other => panic!("runner label {other}"),
        })
        .collect()
}

/// Whether a step runs on `os`: no `if`, or `runner.os == '<os>'`.
fn runs_on(step: &Value, os: &str) -> bool {
    match step["if"].as_str() {
        None => true,
        Some(condition) => condition == format!("runner.os == '{os}'"),
    }
}

/// Whether a step installs xmlsec1 and openssl on `os`, with that OS's package manager.
fn installs_xmlsec(step: &Value, os: &str) -> bool {
    let run = run_of(step);
    let (manager, xmlsec) = match os {
        "Linux" => (
            "sudo DEBIAN_FRONTEND=noninteractive apt-get install",
            "xmlsec1",
        ),
        "macOS" => ("brew install", "libxmlsec1"),
        "Windows" => ("pacman.exe -Sy", "mingw-w64-ucrt-x86_64-xmlsec"),
        _ => unreachable!(),
    };
    runs_on(step, os)
        && run.lines().any(|l| {
            l.contains(manager)
                && l.split_whitespace().any(|w| w == xmlsec)
                && l.contains("openssl")
        })
}

fn pinned(uses: &str) -> bool {
    uses.split_once('@').is_some_and(|(_, rev)| {
        let sha = rev.split_whitespace().next().unwrap_or("");
        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit())
    })
}

#[test]
fn every_job_that_runs_tests_installs_xmlsec1_and_openssl_first_and_caches_cargo() {
    let workflow = workflow();
    let mut checked = Vec::new();
    for (name, job) in workflow["jobs"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let steps = steps(job);
        let Some(first_test) = steps.iter().position(runs_tests) else {
            continue;
        };
        for os in oses(job) {
            let install = steps[..first_test]
                .iter()
                .position(|s| installs_xmlsec(s, os));
            assert!(
                install.is_some(),
                "job {name} on {os}: no step before step {first_test} installs xmlsec1 and openssl"
            );
            checked.push(format!("{name}/{os}"));
        }
        let cache = steps[..first_test].iter().find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache@"))
        });
        let cache = cache.unwrap_or_else(|| panic!("job {name}: no cargo cache before its tests"));
        assert!(pinned(cache["uses"].as_str().unwrap()), "{cache:?}");
        let paths = cache["with"]["path"].as_str().unwrap();
        for path in ["~/.cargo/registry/cache/", "~/.cargo/git/db/", "target/"] {
            assert!(
                paths.lines().any(|l| l.trim() == path),
                "job {name}: {paths}"
            );
        }
        assert!(
            cache["with"]["key"]
                .as_str()
                .unwrap()
                .contains("hashFiles('Cargo.lock')")
        );
        let kept = steps[first_test..].iter().any(|s| {
            s["if"].as_str() == Some("failure()")
                && s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/upload-artifact@") && pinned(u))
                && s["with"]["path"].as_str() == Some("tests/*.proptest-regressions")
        });
        assert!(kept, "job {name}: proptest's failing cases are not kept");
    }
    assert_eq!(checked, ["linux/Linux", "test/Windows", "test/macOS"]);
    // Every action ci.yml uses is pinned by commit (the Action under test aside).
    let text = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:"))
    {
        let uses = line.split_once("uses:").unwrap().1.trim();
        assert!(uses.starts_with("./") || pinned(uses), "{line}");
    }
}

#[test]
fn no_property_test_turns_off_its_failure_file() {
    for entry in std::fs::read_dir(root().join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains(concat!("failure_persistence", ": None")),
                "{}: proptest failures would be lost",
                path.display()
            );
        }
    }
}

/// Who the Linux job's steps run as, or why they cannot run here.
#[cfg(target_os = "linux")]
fn runner_user() -> Result<Option<String>, String> {
    let uid = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if root {
        let Ok(user) = std::env::var("KEYROLL_CI_RUNNER_USER") else {
            return Err(
                "running as root and KEYROLL_CI_RUNNER_USER names no unprivileged user".into(),
            );
        };
        let sudo = Command::new("runuser")
            .args(["-u", &user, "--", "sudo", "-n", "true"])
            .output()
            .map_err(|e| format!("runuser: {e}"))?;
        if !sudo.status.success() {
            return Err(format!("{user} has no passwordless sudo"));
        }
        return Ok(Some(user));
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        // A developer's own sudo is not this test's to use.
        return Err("not on a GitHub Actions runner, and not root".into());
    }
    let sudo = Command::new("sudo").args(["-n", "true"]).output();
    match sudo {
        Ok(out) if out.status.success() => Ok(None),
        _ => Err("the runner user has no passwordless sudo".into()),
    }
}

/// Runs `script` with bash as `user` (None: the current user) in `dir`, with a runner's
/// environment: nothing inherited but PATH and HOME.
#[cfg(target_os = "linux")]
fn run_as(user: Option<&str>, dir: &Path, script: &Path, path: &str) -> Output {
    let mut command = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "env", "-i"]);
            c.arg(format!("HOME=/home/{user}"));
            c.arg(format!("PATH={path}"));
            c.arg("bash");
            c
        }
        None => {
            let mut c = Command::new("bash");
            c.env("PATH", path);
            c
        }
    };
    // GitHub's default shell on Linux: `bash -e {0}`.
    command.arg("-e").arg(script).current_dir(dir);
    command.output().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn the_linux_job_runs_as_an_unprivileged_user_with_sudo_up_to_its_tests() {
    let user = match runner_user() {
        Ok(user) => user,
        Err(why) => {
            println!("the Linux job's steps are not run here: {why}");
            return;
        }
    };
    let user = user.as_deref();
    let workflow = workflow();
    let job = &workflow["jobs"]["linux"];
    assert_eq!(oses(job), ["Linux"]);
    let steps = steps(job);
    let first_test = steps
        .iter()
        .position(runs_tests)
        .expect("a step runs the tests");
    assert_eq!(run_of(&steps[first_test]).trim(), "bash .ci/run");

    // Scripts in a folder the user can read.
    let scratch = tempfile::tempdir().unwrap();
    let open = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    open(scratch.path());
    let system_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let mut log = Vec::new();
    for (i, step) in steps[..first_test].iter().enumerate() {
        if let Some(uses) = step["uses"].as_str() {
            // The checkout is this one; the cache only saves time.
            assert!(
                uses.starts_with("actions/checkout@") || uses.starts_with("actions/cache@"),
                "step {i}: {uses} has no stand-in here"
            );
            log.push(format!("{i} uses {}", uses.split('@').next().unwrap()));
            continue;
        }
        let script = scratch.path().join(format!("step-{i}.sh"));
        std::fs::write(&script, run_of(step)).unwrap();
        open(&script);
        let out = run_as(user, &root(), &script, system_path);
        assert!(
            out.status.success(),
            "step {i} ({:?}) failed as the runner user:\n{}\n{}",
            step["name"],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        log.push(format!("{i} run {:?}", step["name"].as_str().unwrap_or("")));
        if installs_xmlsec(step, "Linux") {
            // The step ends by showing what it installed.
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                said.contains("xmlsec1") && said.contains("OpenSSL"),
                "{said}"
            );
        }
    }
    let installed_at = steps[..first_test]
        .iter()
        .position(|s| installs_xmlsec(s, "Linux"))
        .expect("an install step");

    // Then what `.ci/run` reaches first that needs the tools: scripts/test's check.
    let check = scratch.path().join("tools.sh");
    std::fs::write(&check, "scripts/test --tools-only\n").unwrap();
    open(&check);
    let out = run_as(user, &root(), &check, system_path);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("needs: sudo apt-get install"), "{said}");
    assert!(said.contains("are installed"), "{said}");
    println!(
        "the Linux job as {}: {log:?}, install step {installed_at}, then scripts/test --tools-only: {}",
        user.unwrap_or("the runner user"),
        said.trim()
    );

    // The check is real: without xmlsec1 on PATH it stops as the job did on GitHub.
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    open(&bin);
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let link = bin.join(entry.file_name());
            if entry.file_name() != "xmlsec1" && !link.exists() {
                let _ = std::os::unix::fs::symlink(entry.path(), link);
            }
        }
    }
    let out = run_as(user, &root(), &check, bin.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("scripts/test needs: sudo apt-get install xmlsec1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The release binaries run in CI, not only linted (issue 26): a Linux job of ci.yml runs
/// `scripts/release-check --require` after the checkout and a pinned cache of the script's
/// target dir; `.ci/run` (the whole CI where CI is that script) runs it after scripts/test,
/// unless the ci.yml step running `.ci/run` leaves it to that job (every such step does, so it
/// never runs twice); the script builds each target with the features release.yml ships.
#[test]
fn the_release_binaries_are_run_by_ci() {
    let workflow = workflow();
    let jobs = workflow["jobs"].as_mapping().unwrap();
    let is_check = |s: &Value| run_of(s).contains("scripts/release-check");
    let (name, job) = jobs
        .iter()
        .find(|(_, job)| steps(job).iter().any(is_check))
        .expect("a ci.yml job runs scripts/release-check");
    let name = name.as_str().unwrap();
    assert_eq!(oses(job), ["Linux"], "job {name}");
    let steps_of_job = steps(job);
    let at = steps_of_job.iter().position(is_check).unwrap();
    assert_eq!(
        run_of(&steps_of_job[at]).trim(),
        "scripts/release-check --require",
        "job {name}: in CI a part that cannot run is a failure, not a skip"
    );
    let uses = |s: &Value, action: &str| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{action}@")) && pinned(u))
    };
    assert!(
        steps_of_job[..at]
            .iter()
            .any(|s| uses(s, "actions/checkout")),
        "job {name}: no checkout before the check"
    );
    let cache = steps_of_job[..at]
        .iter()
        .find(|s| uses(s, "actions/cache"))
        .unwrap_or_else(|| panic!("job {name}: no pinned cargo cache before the check"));
    let paths = cache["with"]["path"].as_str().unwrap();
    for path in ["~/.cargo/registry/cache/", "target/release-check/"] {
        assert!(
            paths.lines().any(|l| l.trim() == path),
            "job {name}: {paths}"
        );
    }
    assert!(
        cache["with"]["key"]
            .as_str()
            .unwrap()
            .contains("hashFiles('Cargo.lock')")
    );

    // .ci/run: after scripts/test, and left out only where ci.yml runs it in its own job.
    let ci_run = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let lines: Vec<&str> = ci_run.lines().map(str::trim).collect();
    let test_at = lines
        .iter()
        .position(|l| l.starts_with("scripts/test"))
        .expect(".ci/run runs scripts/test");
    let check_at = lines
        .iter()
        .position(|l| *l == "scripts/release-check")
        .expect(".ci/run runs scripts/release-check");
    assert!(
        test_at < check_at,
        ".ci/run: the release check runs before the tests"
    );
    assert!(ci_run.contains(r#"if [ "${KEYROLL_RELEASE_CHECK:-}" = own-job ]; then"#));
    let mut leaves_it = 0;
    for (job_name, job) in jobs {
        for step in steps(job) {
            if run_of(step).contains(".ci/run") {
                assert_eq!(
                    step["env"]["KEYROLL_RELEASE_CHECK"].as_str(),
                    Some("own-job"),
                    "job {job_name:?}: .ci/run would run scripts/release-check a second time"
                );
                leaves_it += 1;
            }
        }
    }
    assert_eq!(leaves_it, 1, "the linux job runs .ci/run");

    // The builds are release.yml's: the script reads each target's features from its matrix.
    let release = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    let script = std::fs::read_to_string(root().join("scripts/release-check")).unwrap();
    for (shipped, part, built) in [
        (
            "x86_64-unknown-linux-musl",
            "musl",
            "x86_64-unknown-linux-musl",
        ),
        ("x86_64-pc-windows-msvc", "windows", "x86_64-pc-windows-gnu"),
    ] {
        assert!(
            release.contains(&format!("target: {shipped},")),
            "release.yml ships no {shipped}"
        );
        let features = format!("features=$(release_features {shipped})");
        let build = format!("build {part} {built} \"$features\"");
        let (Some(read), Some(built_at)) = (script.find(&features), script.find(&build)) else {
            panic!("scripts/release-check does not build {built} with {shipped}'s features");
        };
        assert!(read < built_at);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(root().join("scripts/release-check"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "scripts/release-check is not executable");
    }
}
