//! The GitHub Action, run from `action.yml` itself by a simulated runner (tests/action/runner.rs)
//! against a local release server (the archive and its SHA256SUMS) and a mock GitHub
//! (wiremock), over a workspace holding the embedded example with a local bare repository as
//! its origin. Every test of the Action goes through action.yml: a file GitHub could not
//! load, or a step wired to the wrong input or output, fails here.
//!
//! Unix only: the runner starts bash with a cleared environment, as a Linux runner does. On
//! Windows the CI workflow's `action` job runs the action itself (`uses: ./`).
#![cfg(unix)]

mod common;
mod kit;
#[path = "action/runner.rs"]
mod runner;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::git;
use runner::{ActionFile, ActionRun, Runner};
use serde_json::{Value, json};
use sha2::Digest as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const NOW: &str = "--now 2026-11-23T12:00:00Z";
const TOKEN: &str = "ghs_action_input_token_4f2a9c";
const REPO: &str = "/repos/contoso/identity-configs";
const BRANCH: &str = "keyroll/contoso-adfs";
const PR_URL: &str = "https://github.com/contoso/identity-configs/pull/7";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Serves the files of `root` over HTTP (GET only; 404 for anything missing).
fn serve_files(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut out = stream;
            match std::fs::read(root.join(target.trim_start_matches('/'))) {
                Ok(bytes) => {
                    let _ = write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    );
                    let _ = out.write_all(&bytes);
                }
                Err(_) => {
                    let _ = out.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    url
}

/// The releases, built once per test run under the target folder (compressing the debug
/// binary takes seconds): `v<this crate's version>` (what the action installs by default)
/// holding this build's keyroll as the Linux x64 tar.gz and the Windows x64 zip (with
/// `keyroll.exe`), and SHA256SUMS. `tampered/` serves the same archives with a SHA256SUMS
/// naming other digests.
fn releases() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("action-releases");
        let _ = std::fs::remove_dir_all(&root);
        let tag = format!("v{}", env!("CARGO_PKG_VERSION"));
        let version = root.join("good").join(&tag);
        let tampered = root.join("tampered").join(&tag);
        let stage = root.join("stage");
        for dir in [&version, &tampered, &stage] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let mut sums = String::new();
        let mut bad_sums = String::new();
        for (archive_name, exe) in [
            ("keyroll-x86_64-unknown-linux-gnu.tar.gz", "keyroll"),
            ("keyroll-x86_64-pc-windows-msvc.zip", "keyroll.exe"),
        ] {
            std::fs::copy(env!("CARGO_BIN_EXE_keyroll"), stage.join(exe)).unwrap();
            let archive = version.join(archive_name);
            let status = if archive_name.ends_with(".zip") {
                Command::new("zip")
                    .args(["-q", "-1", "-j"])
                    .arg(&archive)
                    .arg(stage.join(exe))
                    .status()
            } else {
                Command::new("tar")
                    .arg("--use-compress-program=gzip -1")
                    .arg("-cf")
                    .arg(&archive)
                    .arg("-C")
                    .arg(&stage)
                    .arg(exe)
                    .status()
            }
            .unwrap();
            assert!(status.success());
            std::fs::hard_link(&archive, tampered.join(archive_name)).unwrap();
            let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&archive).unwrap()));
            sums.push_str(&format!("{digest}  {archive_name}\n"));
            let other = format!("0000{}", &digest[4..]);
            assert_ne!(other, digest);
            bad_sums.push_str(&format!("{other}  {archive_name}\n"));
        }
        std::fs::write(version.join("SHA256SUMS"), sums).unwrap();
        std::fs::write(tampered.join("SHA256SUMS"), bad_sums).unwrap();
        let _ = std::fs::remove_dir_all(&stage);
        root
    })
}

/// A temp folder with the release server, the origin (bare) and the checked-out workspace,
/// and a mock GitHub.
struct Fixture {
    dir: tempfile::TempDir,
    bare: PathBuf,
    work: PathBuf,
    releases_url: String,
    github: MockServer,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(false, "").await
    }

    /// `tamper`: SHA256SUMS does not match the archives. `subdir`: where in the workspace the
    /// example goes ("" for its root). Both platforms' archives are there: the runner's OS
    /// picks one.
    async fn with(tamper: bool, subdir: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let releases_url = serve_files(releases().join(if tamper { "tampered" } else { "good" }));
        let work = dir.path().join("workspace");
        let bare = common::init_with_origin(dir.path(), &work);
        common::copy_dir(&common::demo_dir(), &work.join(subdir));
        // These runs push to the bare origin with git: the fake GitHub has no git/
        // endpoints, and `commits = "auto"` would commit through them with the workflow's
        // installation token (tests/pr_api.rs covers that path).
        let config = work.join(subdir).join("keyroll.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}commits = \"git\"\n")).unwrap();
        common::commit_and_push(&work, "demo");
        Fixture {
            dir,
            bare,
            work,
            releases_url,
            github: MockServer::start().await,
        }
    }

    fn runner(&self) -> Runner {
        let mut runner = Runner::new(
            &manifest_dir(),
            &self.work,
            &self.dir.path().join("runner_temp"),
        );
        runner
            .github
            .insert("api_url".into(), self.github.uri().to_string());
        runner
            .job_env
            .insert("KEYROLL_RELEASES_URL".into(), self.releases_url.clone());
        runner
    }

    fn commit_and_push(&self, message: &str) {
        common::commit_and_push(&self.work, message);
    }

    fn remote_head(&self, branch: &str) -> Option<String> {
        common::remote_head(&self.bare, branch)
    }

    async fn requests(&self) -> Vec<Request> {
        self.github.received_requests().await.unwrap()
    }

    /// The JSON body of the request that created the pull request.
    async fn created_pull(&self) -> Value {
        let created = self
            .requests()
            .await
            .into_iter()
            .find(|r| r.method.as_str() == "POST" && r.url.path() == format!("{REPO}/pulls"))
            .unwrap();
        serde_json::from_slice(&created.body).unwrap()
    }

    async fn write_calls(&self) -> Vec<String> {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method.as_str() != "GET")
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect()
    }

    /// Fails when any of `secrets` appears in anything the run left readable: every step's
    /// stdout and stderr, every command file, the summary, the outputs, every file under the
    /// temp folder (workspace, runner temp; binaries skipped) and keyroll's commits on the
    /// origin. `masked` may appear on `::add-mask::` lines only (that is how a
    /// step registers a secret the runner did not know).
    fn assert_not_leaked(&self, run: &ActionRun, secrets: &[&str], masked: &[&str]) {
        let mut texts = vec![(
            "the action's streams and files".to_string(),
            run.everything(),
        )];
        for entry in walk(self.dir.path()) {
            let size = std::fs::metadata(&entry).map_or(0, |m| m.len());
            if size > 4 << 20 || entry.starts_with(&self.bare) {
                continue;
            }
            let bytes = std::fs::read(&entry).unwrap_or_default();
            texts.push((
                entry.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        // keyroll's commits: on its branches, not on main (which the test wrote).
        let history = Command::new("git")
            .args([
                "log",
                "--all",
                "-p",
                "--format=%H %B",
                "--not",
                "refs/heads/main",
            ])
            .current_dir(&self.bare)
            .output()
            .unwrap();
        texts.push((
            "keyroll's commits on the origin".into(),
            String::from_utf8_lossy(&history.stdout).into_owned(),
        ));
        for (place, text) in &texts {
            for secret in secrets {
                assert!(!text.contains(secret), "{secret:?} leaked into {place}");
            }
            for secret in masked {
                for line in text.lines().filter(|l| l.contains(secret)) {
                    assert!(
                        line.starts_with("::add-mask::"),
                        "{secret:?} leaked into {place}: {line}"
                    );
                }
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files.extend(walk(&path)),
            Ok(t) if t.is_file() => files.push(path),
            _ => {}
        }
    }
    files
}

/// Runs the action off the async runtime (the mock GitHub lives on it).
async fn run_action(runner: Runner, inputs: &[(&str, &str)]) -> ActionRun {
    let inputs: Vec<(String, String)> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let borrowed: Vec<(&str, &str)> = inputs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        runner.run(&borrowed)
    })
    .await
    .unwrap()
}

fn open_pull(number: u64, html_url: &str, body: &str, sha: &str) -> Value {
    json!({
        "number": number, "html_url": html_url, "state": "open", "title": "t", "body": body,
        "head": {"ref": BRANCH, "sha": sha}
    })
}

async fn mock_pulls(github: &MockServer, pulls: Value) {
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(pulls))
        .mount(github)
        .await;
}

/// Creating PR #7 (with `html_url`), and 200 for every other write (labels, reviewers).
async fn mock_create(github: &MockServer, html_url: &str) {
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/pulls")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 7, "html_url": html_url, "state": "open",
            "head": {"ref": BRANCH, "sha": "0"}
        })))
        .mount(github)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(github)
        .await;
}

fn operations(run: &ActionRun) -> Value {
    serde_json::from_str(&run.outputs["operations"])
        .unwrap_or_else(|e| panic!("operations is not JSON ({e}): {}", run.log()))
}

fn assert_success(run: &ActionRun) {
    assert!(run.success(), "the action failed:\n{}", run.log());
}

/// The common inputs: the token, and `--now` for both commands.
fn inputs<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("token", TOKEN), ("scan-args", NOW), ("pr-args", NOW)];
    all.extend_from_slice(extra);
    all
}

// ---- the runner itself ----

#[test]
fn the_runner_reads_action_yml_as_github_does() {
    // The bug that shipped: an unquoted `: ` in a plain scalar is not YAML.
    let text = std::fs::read_to_string(manifest_dir().join("action.yml")).unwrap();
    ActionFile::parse(&text).expect("action.yml parses");
    let broken = text.replacen(
        "    description: \"true: show",
        "    description: true: show",
        1,
    );
    assert_ne!(broken, text);
    let error = ActionFile::parse(&broken).unwrap_err();
    assert!(error.contains("mapping values are not allowed"), "{error}");
    // A key the runner does not simulate is refused, not ignored.
    let with_if = text.replacen(
        "      shell: bash\n",
        "      if: false\n      shell: bash\n",
        1,
    );
    assert!(
        ActionFile::parse(&with_if)
            .unwrap_err()
            .contains("unknown field `if`")
    );
}

#[test]
fn the_runner_refuses_expressions_it_cannot_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let action = |run: &str, outputs: &str| {
        format!(
            "name: t\ndescription: t\ninputs:\n  known:\n    description: k\n    default: d\n{outputs}runs:\n  using: composite\n  steps:\n    - id: one\n      shell: bash\n      run: {run}\n"
        )
    };
    let runner = Runner::new(dir.path(), dir.path(), &dir.path().join("tmp"));
    let try_run = |text: String| {
        let parsed = ActionFile::parse(&text).unwrap();
        runner.run_action(&parsed, &[])
    };
    for (expression, why) in [
        ("inputs.unknown", "declares no input"),
        ("env.HOME", "unsupported expression"),
        ("steps.two.outputs.x", "no step has the id"),
        ("github.no_such_field", "has no no_such_field"),
        ("inputs.known == 'd'", "unsupported expression"),
        ("format('{0}', inputs.known)", "unsupported expression"),
    ] {
        let error = try_run(action(&format!("echo ${{{{ {expression} }}}}"), "")).unwrap_err();
        assert!(error.contains(why), "{expression}: {error}");
    }
    let outputs = "outputs:\n  o:\n    description: o\n    value: ${{ steps.nope.outputs.x }}\n";
    assert!(
        try_run(action("echo hi", outputs))
            .unwrap_err()
            .contains("no step has the id")
    );
    // Known ones evaluate; an output the step did not set is empty, as on GitHub.
    let outputs = "outputs:\n  o:\n    description: o\n    value: ${{ steps.one.outputs.x }}-${{ steps.one.outputs.unset }}\n";
    let run = try_run(action(
        "echo \"x=${{ inputs.known }}\" >> \"$GITHUB_OUTPUT\"",
        outputs,
    ))
    .unwrap();
    assert!(run.success(), "{}", run.log());
    assert_eq!(run.outputs["o"], "d-");
    assert!(
        runner
            .run_action(
                &ActionFile::parse(&action("echo", "")).unwrap(),
                &[("undeclared", "x")]
            )
            .unwrap_err()
            .contains("not declared")
    );
}

#[test]
fn command_files_are_read_in_githubs_format() {
    let pairs = runner::parse_command_file("a=1\nb<<EOF\nx\ny=z\nEOF\n\nc=\n").unwrap();
    assert_eq!(
        pairs,
        vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "x\ny=z".to_string()),
            ("c".to_string(), String::new()),
        ]
    );
    assert!(runner::parse_command_file("no equals sign\n").is_err());
    assert!(runner::parse_command_file("a<<EOF\nnever closed\n").is_err());
    assert!(runner::parse_command_file("=value\n").is_err());
}

// ---- the action ----

#[tokio::test(flavor = "multi_thread")]
async fn install_refuses_an_archive_whose_checksum_does_not_match() {
    let fx = Fixture::with(true, "").await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert!(!run.success());
    let install = run.step("install");
    assert!(install.ran && !install.success);
    assert!(
        install.stdout.contains("::error::") && install.stdout.contains("refusing to install"),
        "{}",
        run.log()
    );
    assert!(run.path.is_empty(), "nothing put on PATH: {:?}", run.path);
    assert!(!run.step("scan").ran && !run.step("run").ran);
    assert_eq!(run.outputs["changed"], "");
    assert!(fx.requests().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_reports_no_change_and_makes_no_write_call() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    let run = run_action(fx.runner(), &inputs(&[("dry-run", "true")])).await;
    assert_success(&run);

    // The install step: verified archive, its folder on PATH, the executable as its output.
    let install = run.step("install");
    assert!(
        install.stdout.contains("verified (SHA-256"),
        "{}",
        run.log()
    );
    let bin = PathBuf::from(&install.outputs["bin"]);
    assert!(bin.is_file(), "{bin:?}");
    assert_eq!(run.path, vec![bin.parent().unwrap().display().to_string()]);
    assert_eq!(
        run.step("run").env["KEYROLL_BIN"],
        bin.display().to_string()
    );

    // The scan step read keyroll.toml's issuer: expiry annotations, beside the findings.
    let scan = &run.step("scan").stdout;
    assert!(
        scan.contains("::error file=src/Contoso.Api/identity.config,line=5,")
            && scan.contains("title=keyroll dirty::"),
        "{scan}"
    );
    assert!(
        scan.contains("::warning file=src/Contoso.Web/Web.config,line=14,")
            && scan.contains("title=keyroll expiring::"),
        "{scan}"
    );

    assert_eq!(run.outputs["changed"], "false");
    assert_eq!(run.outputs["pull-request-numbers"], "");
    let ops = operations(&run);
    assert_eq!(ops[0]["issuer"], "contoso-adfs");
    assert_eq!(ops[0]["operation"], "created", "what a real run would do");
    assert_eq!(fx.write_calls().await, Vec::<String>::new());
    assert_eq!(fx.remote_head(BRANCH), None, "nothing pushed");
    assert!(
        run.summary.contains("## keyroll (dry run)"),
        "{}",
        run.summary
    );
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_the_pull_request_and_resolves_the_outputs() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&run);

    assert_eq!(run.outputs["changed"], "true");
    assert_eq!(run.outputs["pull-request-numbers"], "7");
    assert_eq!(run.outputs["pull-request-urls"], PR_URL);
    let ops = operations(&run);
    assert_eq!(ops[0]["operation"], "created");
    assert_eq!(ops[0]["branch"], BRANCH);
    let head = fx.remote_head(BRANCH).expect("the branch was pushed");
    assert_eq!(ops[0]["head_sha"], head);

    // The token went to GitHub as the input said, and nowhere else.
    let requests = fx.requests().await;
    assert!(requests.iter().all(|r| {
        r.headers.get("authorization").unwrap().to_str().unwrap() == format!("Bearer {TOKEN}")
    }));
    let summary = &run.summary;
    assert!(
        summary.contains(&format!("| `contoso-adfs` | created | [#7]({PR_URL}) |")),
        "{summary}"
    );
    assert!(summary.contains("`81CB9F506E54F19731D89F749FBBCE8FE6476295`"));
    // The current key expires 2026-12-13, within 30 days: highlighted.
    assert!(summary.contains("⚠️ **expiring**"), "{summary}");
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_its_pull_request_when_the_base_moved() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    let first = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&first);
    let first_head = fx.remote_head(BRANCH).unwrap();
    let body = fx.created_pull().await;

    // Someone merges an unrelated change to main.
    std::fs::write(fx.work.join("NOTES.md"), "unrelated\n").unwrap();
    fx.commit_and_push("unrelated");
    fx.github.reset().await;
    let pr = open_pull(7, PR_URL, body["body"].as_str().unwrap(), &first_head);
    mock_pulls(&fx.github, json!([pr])).await;
    Mock::given(method("PATCH"))
        .and(path(format!("{REPO}/pulls/7")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&fx.github)
        .await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&run);
    assert_eq!(run.outputs["changed"], "true");
    assert_eq!(run.outputs["pull-request-numbers"], "7");
    let ops = operations(&run);
    assert_eq!(ops[0]["operation"], "updated", "{}", run.log());
    let head = fx.remote_head(BRANCH).unwrap();
    assert_ne!(head, first_head, "rebuilt on the new base");
    assert_eq!(ops[0]["head_sha"], head);
    assert_eq!(
        fx.write_calls().await,
        vec![format!("PATCH {REPO}/pulls/7")]
    );
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_to_do_after_the_pull_request_was_merged() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    assert_success(&run_action(fx.runner(), &inputs(&[])).await);
    // Merged: main is keyroll's branch, and the workflow checks it out.
    let head = fx.remote_head(BRANCH).unwrap();
    git(&fx.bare, &["update-ref", "refs/heads/main", &head]);
    git(&fx.work, &["fetch", "-q", "origin"]);
    git(&fx.work, &["reset", "-q", "--hard", "origin/main"]);
    fx.github.reset().await;
    let mut merged = open_pull(7, PR_URL, "", &head);
    merged["state"] = json!("closed");
    merged["merged_at"] = json!("2026-11-23T13:00:00Z");
    mock_pulls(&fx.github, json!([merged])).await;

    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&run);
    assert_eq!(run.outputs["changed"], "false");
    assert_eq!(run.outputs["pull-request-numbers"], "");
    assert_eq!(operations(&run)[0]["operation"], "none", "{}", run.log());
    assert_eq!(fx.write_calls().await, Vec::<String>::new());
    // The pasted U+200E is gone with the merge: no error annotation left.
    assert!(
        !run.step("scan").stdout.contains("::error"),
        "{}",
        run.step("scan").stdout
    );
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_issuer_fails_the_step_and_touches_nothing() {
    let fx = Fixture::new().await;
    let config = fx.work.join("keyroll.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("metadata/FederationMetadata.xml", "metadata/Gone.xml"),
    )
    .unwrap();
    fx.commit_and_push("point at a missing metadata file");
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;

    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert!(!run.success());
    // The scan step still annotates (the source is a warning there); pr fails.
    let scan = run.step("scan");
    assert!(scan.success, "{}", run.log());
    assert!(scan.stderr.contains("Gone.xml"), "{}", scan.stderr);
    assert!(scan.stdout.contains("title=keyroll dirty::"));
    let step = run.step("run");
    assert!(
        step.ran && !step.success && step.code == Some(1),
        "{}",
        run.log()
    );
    assert!(step.stderr.contains("an issuer failed"), "{}", step.stderr);
    // Its outputs are still written: failed, nothing changed.
    assert_eq!(run.outputs["changed"], "false");
    let ops = operations(&run);
    assert_eq!(ops[0]["operation"], "failed");
    assert_eq!(fx.write_calls().await, Vec::<String>::new());
    assert_eq!(fx.remote_head(BRANCH), None);
    assert!(run.summary.contains("Gone.xml"), "{}", run.summary);
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_runner_with_a_backslashed_config_path() {
    // As far as Linux allows: RUNNER_OS=Windows (the zip with keyroll.exe is chosen and
    // called by that name), keyroll.toml in a subfolder named with `\`.
    let fx = Fixture::with(false, "deploy").await;
    mock_pulls(&fx.github, json!([])).await;
    let mut runner = fx.runner();
    runner.os = "Windows".into();
    let run = run_action(
        runner,
        &inputs(&[("config", "deploy\\keyroll.toml"), ("dry-run", "true")]),
    )
    .await;
    assert_success(&run);
    let install = run.step("install");
    assert!(
        install
            .stdout
            .contains("keyroll-x86_64-pc-windows-msvc.zip verified"),
        "{}",
        run.log()
    );
    assert!(install.outputs["bin"].ends_with("/keyroll.exe"));
    assert!(
        run.step("scan")
            .stdout
            .contains("::error file=deploy/src/Contoso.Api/identity.config,line=5,"),
        "{}",
        run.step("scan").stdout
    );
    assert_eq!(run.outputs["changed"], "false");
    assert_eq!(operations(&run)[0]["operation"], "created");
    assert_eq!(fx.write_calls().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_rules_reach_the_scan() {
    // A rule replacing the built-in appSettings one: this app's own key name.
    let fx = Fixture::new().await;
    let rules = fx.work.join("keyroll-rules");
    std::fs::create_dir_all(&rules).unwrap();
    let builtin = std::fs::read_to_string(manifest_dir().join("rules/appsettings.toml")).unwrap();
    let keys_line = builtin.lines().find(|l| l.starts_with("keys = ")).unwrap();
    std::fs::write(
        rules.join("appsettings.toml"),
        builtin.replace(keys_line, "keys = [\"Contoso:TrustedSigner\"]"),
    )
    .unwrap();
    std::fs::write(
        fx.work.join("src/Contoso.Web/App.config"),
        "<configuration>\n  <appSettings>\n    <add key=\"Contoso:TrustedSigner\" value=\"\u{200E}81CB9F506E54F19731D89F749FBBCE8FE6476295\" />\n  </appSettings>\n</configuration>\n",
    )
    .unwrap();
    fx.commit_and_push("an app setting");
    mock_pulls(&fx.github, json!([])).await;
    let finding = "::error file=src/Contoso.Web/App.config,line=3,";

    let without = run_action(fx.runner(), &inputs(&[("dry-run", "true")])).await;
    assert_success(&without);
    assert!(!without.step("scan").stdout.contains(finding));

    let with = run_action(
        fx.runner(),
        &inputs(&[("dry-run", "true"), ("rules", "keyroll-rules")]),
    )
    .await;
    assert_success(&with);
    assert!(
        with.step("scan").stdout.contains(finding),
        "{}",
        with.step("scan").stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn args_is_still_read_as_pr_args() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    let run = run_action(
        fx.runner(),
        &[
            ("token", TOKEN),
            ("scan-args", NOW),
            ("args", "--now\n2026-11-23T12:00:00Z --format json"),
            ("dry-run", "true"),
        ],
    )
    .await;
    assert_success(&run);
    let report: Value = serde_json::from_str(&run.step("run").stdout)
        .unwrap_or_else(|e| panic!("--format json reached pr ({e}): {}", run.log()));
    assert_eq!(report["dry_run"], true);
}

// ---- secrets, transport and what is copied from outside ----

fn pem() -> String {
    std::fs::read_to_string(manifest_dir().join("tests/data/github-app-test-key.pem")).unwrap()
}

/// The base64 lines of the test App key: none may appear anywhere.
fn key_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_string)
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_app_key_mints_a_masked_token_and_is_never_printed() {
    let fx = Fixture::new().await;
    const MINTED: &str = "ghs_minted_installation_token_77f1";
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/installation")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 42})))
        .mount(&fx.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/42/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"token": MINTED})))
        .mount(&fx.github)
        .await;
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    let pem = pem();
    let run = run_action(
        fx.runner(),
        &inputs(&[("app-id", "12345"), ("app-private-key", &pem)]),
    )
    .await;
    assert_success(&run);
    assert_eq!(operations(&run)[0]["operation"], "created");
    let listing = fx
        .requests()
        .await
        .into_iter()
        .find(|r| r.url.path() == format!("{REPO}/pulls"))
        .unwrap();
    assert_eq!(
        listing.headers.get("authorization").unwrap(),
        &format!("Bearer {MINTED}")
    );
    // The runner is told to mask the minted token; it is printed nowhere else.
    assert_eq!(run.masks, vec![MINTED.to_string()]);
    let mut secrets = key_lines(&pem);
    secrets.push(TOKEN.into());
    fx.assert_not_leaked(&run, &strs(&secrets), &[MINTED]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_key_without_its_begin_line_is_refused_without_being_quoted() {
    let fx = Fixture::new().await;
    let pem = pem();
    let body_only: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    let run = run_action(
        fx.runner(),
        &inputs(&[("app-id", "12345"), ("app-private-key", &body_only)]),
    )
    .await;
    let step = run.step("run");
    assert!(step.ran && !step.success, "{}", run.log());
    assert!(
        step.stderr.contains("not a PEM private key"),
        "{}",
        step.stderr
    );
    assert!(fx.requests().await.is_empty(), "nothing sent");
    fx.assert_not_leaked(&run, &strs(&key_lines(&pem)), &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_error_echoing_the_authorization_header_is_redacted() {
    let fx = Fixture::new().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": format!("Bad credentials; you sent Authorization: Bearer {TOKEN}"),
            "errors": [{"message": format!("token {TOKEN} is revoked")}]
        })))
        .mount(&fx.github)
        .await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert!(!run.success());
    assert_eq!(operations(&run)[0]["operation"], "failed");
    assert!(
        run.summary
            .contains("Bad credentials; you sent Authorization: Bearer ***; token *** is revoked"),
        "{}",
        run.summary
    );
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_not_sent_to_a_plain_http_api() {
    let fx = Fixture::new().await;
    let mut runner = fx.runner();
    runner
        .github
        .insert("api_url".into(), "http://api.github.example".into());
    let run = run_action(runner, &inputs(&[])).await;
    assert!(!run.success());
    assert_eq!(operations(&run)[0]["operation"], "failed");
    assert!(
        run.summary.contains(
            "refusing to send the token to the GitHub API http://api.github.example over plain http://"
        ),
        "{}",
        run.summary
    );
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_not_sent_to_a_plain_http_git_remote() {
    let fx = Fixture::new().await;
    git(
        &fx.work,
        &[
            "remote",
            "set-url",
            "origin",
            "http://git.example.invalid/contoso/identity-configs.git",
        ],
    );
    mock_pulls(&fx.github, json!([])).await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    let step = run.step("run");
    assert!(step.ran && !step.success, "{}", run.log());
    assert!(
        step.stderr.contains("refusing to send the token to the git remote http://git.example.invalid/contoso/identity-configs.git over plain http://"),
        "{}",
        step.stderr
    );
    assert_eq!(fx.write_calls().await, Vec::<String>::new());
    fx.assert_not_leaked(&run, &[TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_a_metadata_url_is_never_printed() {
    let fx = Fixture::new().await;
    const PASSWORD: &str = "s3cret-metadata-pw";
    let config = fx.work.join("keyroll.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    // Port 9 (discard) on loopback: the connection is refused at once.
    std::fs::write(
        &config,
        text.replace(
            "metadata/FederationMetadata.xml",
            &format!("https://keyroll:{PASSWORD}@127.0.0.1:9/FederationMetadata.xml"),
        ),
    )
    .unwrap();
    fx.commit_and_push("metadata behind basic auth");
    mock_pulls(&fx.github, json!([])).await;
    let run = run_action(
        fx.runner(),
        &inputs(&[
            ("scan-args", "--now 2026-11-23T12:00:00Z --retries 0"),
            ("pr-args", "--now 2026-11-23T12:00:00Z --retries 0"),
        ]),
    )
    .await;
    assert!(!run.success());
    assert_eq!(operations(&run)[0]["operation"], "failed");
    let shown = "https://***@127.0.0.1:9/FederationMetadata.xml";
    assert!(run.step("scan").stderr.contains(shown), "{}", run.log());
    assert!(run.summary.contains(shown), "{}", run.summary);
    // The repository's own keyroll.toml holds it, as the user wrote it; nothing keyroll
    // wrote does.
    std::fs::remove_file(&config).unwrap();
    fx.assert_not_leaked(&run, &[PASSWORD, TOKEN], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_url_with_a_line_break_cannot_inject_an_output() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    mock_create(
        &fx.github,
        &format!("{PR_URL}\nchanged=injected\r\ninjected=1"),
    )
    .await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&run);
    let written: Vec<&String> = run.step("run").outputs.keys().collect();
    assert_eq!(
        written,
        vec![
            "changed",
            "operations",
            "pull-request-numbers",
            "pull-request-urls"
        ]
    );
    assert_eq!(run.outputs["changed"], "true");
    assert!(
        !run.outputs["pull-request-urls"].contains(['\n', '\r']),
        "{:?}",
        run.outputs["pull-request-urls"]
    );
    assert!(!run.summary.contains("\nchanged=injected"));
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_in_a_certificate_subject_stays_text() {
    let fx = Fixture::new().await;
    // A signing certificate whose subject would render as a link, a mention, a remote image
    // and HTML, with a `|` and a CR that would break a table row.
    let subject = "Evil [link](https://evil.example/x) @contoso/admins ![](https://evil.example/p.png) <img src=x> a|b\rc";
    let hostile = kit::Key::new(
        subject,
        time::macros::datetime!(2026-11-01 00:00 UTC),
        time::macros::datetime!(2027-11-01 00:00 UTC),
    );
    let metadata = fx.work.join("metadata/FederationMetadata.xml");
    let xml = std::fs::read_to_string(&metadata).unwrap();
    let descriptor = format!("{}</RoleDescriptor>", hostile.key_descriptor("signing"));
    std::fs::write(&metadata, xml.replacen("</RoleDescriptor>", &descriptor, 1)).unwrap();
    fx.commit_and_push("metadata with a hostile subject");
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&run);
    let body = fx.created_pull().await;
    let body = body["body"].as_str().unwrap();
    // (`<` and `>` come escaped from the subject's RFC 4514 form already.)
    let inert = "`CN=Evil [link](https://evil.example/x) @contoso/admins ![](https://evil.example/p.png) \\<img src=x\\> a\\|b c`";
    for (what, text) in [("PR body", body), ("job summary", run.summary.as_str())] {
        assert!(text.contains(inert), "{what}:\n{text}");
        let mut in_timeline = false;
        for line in text.lines() {
            if line == "```mermaid" || (in_timeline && line == "```") {
                in_timeline = !in_timeline;
                continue;
            }
            if !line.contains("evil.example") {
                continue;
            }
            if in_timeline {
                // A timeline label (Mermaid, not Markdown): every character Mermaid or
                // Markdown reads is an entity.
                assert!(
                    line.contains("#91;link#93;(https#58;//evil.example/x) #64;contoso"),
                    "{what}: {line}"
                );
                assert!(
                    !line.contains(['[', ']', '<', '>', '@', '!', '`']),
                    "{what}: {line}"
                );
                continue;
            }
            // The only copy of the subject on the line is the code span.
            assert_eq!(line.matches("evil.example/x").count(), 1, "{what}: {line}");
            assert!(line.contains(inert), "{what}: {line}");
        }
        // (A CRLF config's diff keeps its CRs, inside its code fence: not a table.)
        let broken: Vec<&str> = text
            .split('\n')
            .filter(|l| l.starts_with('|') && l.contains('\r'))
            .collect();
        assert!(
            broken.is_empty(),
            "{what}: table rows with a CR: {broken:?}"
        );
    }
}

// ---- db: check ----

/// `db: check` on the schedule: the table read through the URL the job's env gives (from a
/// secret in a real workflow), every drift an annotation and the step failed; once the table
/// is in step, one summary line and a green step. The URL never reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn db_check_annotates_drift_and_fails_the_step_then_passes_in_step() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    let db = fx.dir.path().join("secret-name-app.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE \"IssuingAuthorityKeys\" (\"Id\" TEXT PRIMARY KEY); CREATE TABLE \"Tenants\" (\"Id\" TEXT PRIMARY KEY);")
        .output()
        .expect("sqlite3 runs (scripts/test installs it)");
    assert!(out.status.success());
    let settings = fx.work.join("keyroll.toml");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str("\n[[database]]\nname = \"tenants\"\npreset = \"vs2013-tenant-registry\"\ndialect = \"sqlite\"\nissuers = [\"contoso-adfs\"]\nmigrations = \"db/keyroll\"\nurl_env = \"TENANT_DB_URL\"\ntenant = \"contoso\"\n");
    std::fs::write(&settings, text).unwrap();
    fx.commit_and_push("a database target");

    let mut runner = fx.runner();
    runner.job_env.insert("TENANT_DB_URL".into(), url.clone());
    let run = run_action(
        runner,
        &inputs(&[("dry-run", "true"), ("db", "check"), ("db-args", NOW)]),
    )
    .await;
    let step = run.step("db");
    assert!(
        step.ran && !step.success,
        "drift fails the step:\n{}",
        run.log()
    );
    assert_eq!(step.code, Some(2), "{}", run.log());
    assert!(
        step.stdout.contains("::warning title=keyroll database drift::database tenants issuer contoso-adfs: missing published key"),
        "{}",
        run.log()
    );
    assert!(
        step.stdout.contains("tenant row contoso missing"),
        "{}",
        run.log()
    );
    assert!(
        run.summary.contains("keyroll db check: **"),
        "{}",
        run.summary
    );
    assert!(!run.log().contains("secret-name-app.db"), "{}", run.log());

    // In step: a green step and its summary line.
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["db", "apply", "--now", "2026-11-23T12:00:00Z", "--config"])
        .arg(&settings)
        .env("TENANT_DB_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut runner = fx.runner();
    runner.job_env.insert("TENANT_DB_URL".into(), url);
    let run = run_action(
        runner,
        &inputs(&[("dry-run", "true"), ("db", "check"), ("db-args", NOW)]),
    )
    .await;
    assert_success(&run);
    assert!(
        run.summary
            .contains("keyroll db check: every table in step with its issuers' metadata."),
        "{}",
        run.summary
    );
}

// ---- entra: check ----

/// The demo's AD FS metadata holds the current signing certificate (5DD3BC…, from 2025-12-13)
/// and the next (81CB9F…, generated 2026-11-23, promoted 2026-11-28). Entra ID's fake holds
/// only the current one: a warning annotation and a summary line, the job still succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn entra_check_annotates_a_missing_next_key_and_writes_the_summary_line() {
    const SECRET: &str = "entra-client-secret-in-job-env";
    let fx = Fixture::new().await;
    let entra = MockServer::start().await;
    let metadata =
        std::fs::read_to_string(fx.work.join("metadata/FederationMetadata.xml")).unwrap();
    let current = metadata
        .split("X509Certificate>")
        .filter_map(|piece| piece.split('<').next())
        .filter_map(|b64| keyroll::model::cert::Certificate::from_base64(b64).ok())
        .find(|c| c.sha1.to_string() == "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379")
        .unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &current.der);
    Mock::given(method("POST"))
        .and(path("/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .and(wiremock::matchers::body_string_contains(format!(
            "client_secret={SECRET}"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "access_token": "entra-access-token-x" })),
        )
        .mount(&entra)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/domains/contoso.com/federationConfiguration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [{
            "id": "fed-1", "signingCertificate": b64, "nextSigningCertificate": null
        }]})))
        .mount(&entra)
        .await;
    let config = fx.work.join("keyroll.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"contoso-adfs\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"client\"\ngraph_url = \"{0}\"\nlogin_url = \"{0}\"\n",
        entra.uri()
    ));
    std::fs::write(&config, text).unwrap();
    fx.commit_and_push("federated domain");
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    let mut runner = fx.runner();
    runner
        .job_env
        .insert("KEYROLL_ENTRA_CLIENT_SECRET".into(), SECRET.into());
    let run = run_action(
        runner,
        &inputs(&[
            ("entra", "check"),
            ("entra-args", "--now 2026-11-23T12:00:00Z --allow-http"),
        ]),
    )
    .await;
    assert_success(&run);
    let step = run.step("entra");
    assert!(step.ran && step.success, "{}", run.log());
    let warning = "::warning title=keyroll entra::keyroll entra check: a next key is missing in Entra ID: contoso.com: next key missing: Entra ID does not hold 81CB9F506E54F19731D89F749FBBCE8FE6476295, which AD FS promotes on 2026-11-28 (4 days left)";
    assert!(step.stdout.contains(warning), "{}", run.log());
    assert_eq!(run.outputs["entra"], "next-missing");
    assert!(
        run.summary.contains(
            "keyroll entra check: a next key is missing in Entra ID: contoso.com: next key missing"
        ),
        "{}",
        run.summary
    );
    fx.assert_not_leaked(&run, &[TOKEN, SECRET, "entra-access-token-x"], &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_entra_input_no_entra_check_runs() {
    let fx = Fixture::new().await;
    mock_pulls(&fx.github, json!([])).await;
    mock_create(&fx.github, PR_URL).await;
    let run = run_action(fx.runner(), &inputs(&[])).await;
    assert_success(&run);
    let step = run.step("entra");
    assert!(step.success && step.stdout.is_empty(), "{}", run.log());
    assert!(!run.summary.contains("keyroll entra"), "{}", run.summary);
}
