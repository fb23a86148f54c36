//! The organisation workflow's matrix job, run as GitHub runs it: the test reads
//! `.github/workflows/keyroll-org.yml`, takes the `batch-1` job's steps in order and runs them
//! for the two repositories `keyroll discover` puts in its matrix, each job in its own
//! workspace and temp folder, with the job's expressions evaluated by the simulated runner of
//! tests/action/runner.rs (`run:` steps in bash, `if: always()`, step outputs, `matrix`,
//! `secrets`, `runner.temp`). The `onboard` job's steps run the same way for a repository
//! `discover --onboarding` lists.
//!
//! Stood in (GitHub's code, not ours), each by a small local equivalent with the same outputs
//! and effects:
//! - `actions/download-artifact`: copies the named artifact's files into `path`. The
//!   `keyroll-run` artifact is what the snapshot job uploads: this build's keyroll in `bin/`
//!   and `snapshot/` written by `keyroll snapshot` from the fake identity provider.
//! - `actions/create-github-app-token`: the same calls against the fake GitHub (the App's JWT
//!   finds the installation of `owner/repositories`, then a token for those repositories
//!   only), its `token` output. (The `permission-*` inputs are not sent: the fake does not
//!   model permissions.)
//! - `actions/checkout`: `git clone` of the repository from its fake remote (a local bare
//!   repository) into `path`, refused unless the token was minted for that repository — as
//!   GitHub refuses a token scoped elsewhere.
//! - `actions/upload-artifact`: copies `path` into the run's artifacts under `name`.
//!
//! Any other `uses:` (our own Action, `uses: ./`, included) fails the test: it would have to
//! be simulated, not skipped.
//!
//! Unix only, like tests/action.rs.
#![cfg(unix)]

mod common;
mod kit;
#[path = "action/runner.rs"]
mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::git;
use runner::{ActionRun, Runner, StandIn, WorkflowStep};
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ORG: &str = "contoso";
/// Fails: its keyroll.toml has a key keyroll does not know.
const BROKEN: &str = "app-a";
/// Has a rollover pending: its PR is opened.
const PENDING: &str = "app-b";
/// WIF configs, no keyroll.toml: onboarded.
const UNCONFIGURED: &str = "app-c";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fake GitHub (and identity provider): it mints one token per repository and records
/// every request.
#[derive(Clone, Default)]
struct Fake {
    metadata: Arc<String>,
    /// token → the repositories it was minted for.
    tokens: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
}

fn token_for(repo: &str) -> String {
    format!("ghs_minted_for_{}", repo.replace('-', "_"))
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = request.method.as_str();
        let not_found =
            || ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        match (method, parts.as_slice()) {
            ("GET", ["idp.xml"]) => ResponseTemplate::new(200).set_body_string(&*self.metadata),
            ("GET", ["installation", "repositories"]) => {
                let repos: Vec<_> = [BROKEN, PENDING, UNCONFIGURED]
                    .iter()
                    .map(|name| {
                        json!({"full_name": format!("{ORG}/{name}"), "name": name,
                               "owner": {"login": ORG, "type": "Organization"}})
                    })
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": repos.len(), "repositories": repos}))
            }
            ("GET", ["repos", _, name, "contents", "keyroll.toml"]) => {
                if *name == UNCONFIGURED {
                    not_found()
                } else {
                    ResponseTemplate::new(200).set_body_json(json!({"type": "file"}))
                }
            }
            ("GET", ["search", "code"]) => ResponseTemplate::new(200).set_body_json(json!({
                "total_count": 1, "incomplete_results": false,
                "items": [{"path": "src/Web/Web.config",
                           "repository": {"full_name": format!("{ORG}/{UNCONFIGURED}")}}]
            })),
            ("GET", ["repos", _, name, "installation"]) => {
                ResponseTemplate::new(200).set_body_json(json!({"id": 100 + name.len()}))
            }
            ("POST", ["app", "installations", _, "access_tokens"]) => {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                let repos: Vec<String> = body["repositories"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect();
                let token = token_for(&repos.join("+"));
                self.tokens.lock().unwrap().insert(token.clone(), repos);
                ResponseTemplate::new(201).set_body_json(json!({"token": token}))
            }
            ("GET", ["repos", _, _, "pulls"]) => {
                ResponseTemplate::new(200).set_body_json(json!([]))
            }
            ("POST", ["repos", o, r, "pulls"]) => {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                ResponseTemplate::new(201).set_body_json(json!({
                    "number": 7, "html_url": format!("https://github.example/{o}/{r}/pull/7"),
                    "state": "open", "title": body["title"], "head": {"ref": body["head"], "sha": "0"}
                }))
            }
            _ => not_found(),
        }
    }
}

/// Everything a run of the workflow has: the fake, the repositories' remotes, the artifacts.
struct Estate {
    dir: tempfile::TempDir,
    server: MockServer,
    fake: Fake,
}

impl Estate {
    fn remote(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("remotes")
            .join(ORG)
            .join(format!("{name}.git"))
    }

    fn artifacts(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    /// The calls the fake received, as (method, path, authorization).
    async fn requests(&self) -> Vec<(String, String, String)> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.method.to_string(),
                    r.url.path().to_string(),
                    r.headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// One stand-in for every third-party action of the workflow (see the module doc).
    fn stand_in(&self, step: &StandIn) -> Result<BTreeMap<String, String>, String> {
        let action = step.uses.split('@').next().unwrap();
        let with = |key: &str| step.with.get(key).cloned().unwrap_or_default();
        let workspace_path = |key: &str| {
            let p = with(key);
            if p.is_empty() {
                step.runner.workspace.clone()
            } else if Path::new(&p).is_absolute() {
                PathBuf::from(p)
            } else {
                step.runner.workspace.join(p)
            }
        };
        match action {
            "actions/download-artifact" => {
                let from = self.artifacts().join(with("name"));
                if !from.is_dir() {
                    return Err(format!("Artifact not found for name: {}", with("name")));
                }
                common::copy_dir(&from, &workspace_path("path"));
                Ok(BTreeMap::new())
            }
            "actions/create-github-app-token" => {
                let repo = keyroll::act::github::RepoName::parse(&format!(
                    "{}/{}",
                    with("owner"),
                    with("repositories")
                ))
                .ok_or("owner/repositories is not one repository")?;
                let pem = keyroll::act::github::Secret::new(with("private-key"));
                let api = self.server.uri();
                let token = std::thread::spawn(move || {
                    let github = keyroll::act::github::GitHub::new(
                        &api,
                        None,
                        false,
                        keyroll::act::github::RetryPolicy::default(),
                    );
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(github.installation_token(&repo, "12345", &pem))
                })
                .join()
                .unwrap()
                .map_err(|e| e.to_string())?;
                Ok(BTreeMap::from([(
                    "token".to_string(),
                    token.expose().to_string(),
                )]))
            }
            "actions/checkout" => {
                let full = with("repository");
                let (_, name) = full.split_once('/').ok_or("repository is not owner/name")?;
                let scoped = self
                    .fake
                    .tokens
                    .lock()
                    .unwrap()
                    .get(&with("token"))
                    .cloned();
                if scoped != Some(vec![name.to_string()]) {
                    return Err(format!(
                        "remote: Repository not found ({full}: the token does not reach it)"
                    ));
                }
                let target = workspace_path("path");
                let out = Command::new("git")
                    .args(["clone", "-q"])
                    .arg(self.remote(name))
                    .arg(&target)
                    .output()
                    .unwrap();
                if !out.status.success() {
                    return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                Ok(BTreeMap::new())
            }
            "actions/upload-artifact" => {
                let from = workspace_path("path");
                let to = self.artifacts().join(with("name"));
                if to.exists() {
                    return Err(format!("an artifact named {} exists already", with("name")));
                }
                common::copy_dir(&from, &to);
                Ok(BTreeMap::new())
            }
            other => Err(format!(
                "no stand-in for `uses: {other}`: simulate it, do not skip it"
            )),
        }
    }
}

/// A repository on its fake remote: `files` committed on main.
fn repository(remote: &Path, files: &[(&str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
    git(
        remote.parent().unwrap(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    for (path, text) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "app"]);
    git(
        dir.path(),
        &["push", "-q", remote.to_str().unwrap(), "HEAD:main"],
    );
}

/// The workflow's jobs, as YAML.
fn workflow() -> serde_yaml_ng::Value {
    let text =
        std::fs::read_to_string(manifest_dir().join(".github/workflows/keyroll-org.yml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// A job's steps and its `strategy.fail-fast` (GitHub's default: true). Job keys the
/// simulation does not implement fail the test.
fn job(workflow: &serde_yaml_ng::Value, name: &str) -> (Vec<WorkflowStep>, bool) {
    let job = &workflow["jobs"][name];
    for key in job.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            [
                "needs",
                "if",
                "runs-on",
                "permissions",
                "strategy",
                "steps",
                "outputs"
            ]
            .contains(&key),
            "job {name}: `{key}` is not simulated"
        );
    }
    let steps: Vec<WorkflowStep> = serde_yaml_ng::from_value(job["steps"].clone())
        .unwrap_or_else(|e| panic!("job {name}'s steps: {e}"));
    let fail_fast = job["strategy"]["fail-fast"].as_bool().unwrap_or(true);
    (steps, fail_fast)
}

/// The workflow's inputs with their defaults, then `given`.
fn inputs(workflow: &serde_yaml_ng::Value, given: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut inputs = BTreeMap::new();
    for (name, input) in workflow["on"]["workflow_call"]["inputs"]
        .as_mapping()
        .unwrap()
    {
        let default = match &input["default"] {
            serde_yaml_ng::Value::Null => String::new(),
            serde_yaml_ng::Value::String(s) => s.clone(),
            serde_yaml_ng::Value::Bool(b) => b.to_string(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            other => panic!("input default {other:?}"),
        };
        inputs.insert(name.as_str().unwrap().to_string(), default);
    }
    for (k, v) in given {
        assert!(inputs.contains_key(*k), "the workflow has no input {k}");
        inputs.insert(k.to_string(), v.to_string());
    }
    inputs
}

/// Runs a matrix job's steps for each entry, in order, each on a fresh runner; with
/// `fail_fast`, a failed entry cancels the ones not started (GitHub's default).
async fn run_matrix(
    estate: &Arc<Estate>,
    job_name: &str,
    entries: &[serde_json::Value],
    given: &[(&str, &str)],
) -> Vec<Option<ActionRun>> {
    let workflow = workflow();
    let (steps, fail_fast) = job(&workflow, job_name);
    let inputs = inputs(&workflow, given);
    let mut runs = Vec::new();
    let mut cancelled = false;
    for (i, entry) in entries.iter().enumerate() {
        if cancelled {
            runs.push(None);
            continue;
        }
        let root = estate.dir.path().join(format!("{job_name}-{i}"));
        let mut runner = Runner::new(&manifest_dir(), &root.join("workspace"), &root.join("temp"));
        std::fs::create_dir_all(&runner.workspace).unwrap();
        runner.github.insert("api_url".into(), estate.server.uri());
        runner
            .github
            .insert("repository".into(), format!("{ORG}/central"));
        let matrix: BTreeMap<String, String> = entry
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        let secrets = BTreeMap::from([
            ("app-id".to_string(), "12345".to_string()),
            (
                "app-private-key".to_string(),
                std::fs::read_to_string(manifest_dir().join("tests/data/github-app-test-key.pem"))
                    .unwrap(),
            ),
            // Optional and not passed by this caller: GitHub gives an unset secret as "".
            ("entra-client-secret".to_string(), String::new()),
        ]);
        let contexts = BTreeMap::from([
            ("matrix".to_string(), matrix),
            ("secrets".to_string(), secrets),
        ]);
        let (estate, steps, inputs) = (estate.clone(), steps.clone(), inputs.clone());
        let run = tokio::task::spawn_blocking(move || {
            runner
                .run_job(&steps, &inputs, &contexts, &mut |s| estate.stand_in(s))
                .unwrap_or_else(|e| panic!("the runner refused the job: {e}"))
        })
        .await
        .unwrap();
        cancelled = fail_fast && !run.success();
        runs.push(Some(run));
    }
    runs
}

fn step<'a>(run: &'a ActionRun, name: &str) -> &'a runner::StepRun {
    run.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_matrix_job_runs_each_repository_with_its_own_token_and_the_snapshot() {
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let current = kit::Key::new("CN=ADFS Signing", now - 100 * day, now + 265 * day);
    let next = kit::Key::new("CN=ADFS Signing next", now - day, now + 364 * day);
    let entity = "http://adfs.contoso.com/adfs/services/trust";
    let fake = Fake {
        metadata: Arc::new(kit::metadata(entity, &[&current, &next])),
        ..Default::default()
    };
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let estate = Arc::new(Estate {
        dir: tempfile::tempdir().unwrap(),
        server,
        fake,
    });
    let api = estate.server.uri();
    let config = format!(
        "[[issuer]]\nname = \"contoso-adfs\"\nmetadata = [\"{api}/idp.xml\"]\nentity_id = \"{entity}\"\n\n[[target]]\nfiles = [\"src/**/Web.config\"]\nissuers = [\"contoso-adfs\"]\n\n[pr]\ncommits = \"git\"\n"
    );
    let web_config = kit::wif45(&[kit::add(&current, entity)]);
    repository(
        &estate.remote(BROKEN),
        &[
            ("keyroll.toml", format!("{config}unknown_key = 1\n")),
            ("src/Web/Web.config", web_config.clone()),
        ],
    );
    repository(
        &estate.remote(PENDING),
        &[
            ("keyroll.toml", config.clone()),
            ("src/Web/Web.config", web_config.clone()),
        ],
    );
    repository(
        &estate.remote(UNCONFIGURED),
        &[("src/Web/Web.config", web_config.clone())],
    );

    // The snapshot job's artifact: this build's keyroll and the snapshot it takes.
    let run_artifact = estate.artifacts().join("keyroll-run");
    std::fs::create_dir_all(run_artifact.join("bin")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_keyroll"),
        run_artifact.join("bin/keyroll"),
    )
    .unwrap();
    std::fs::write(estate.dir.path().join("central.toml"), &config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "snapshot",
            "--config",
            "central.toml",
            "--allow-http",
            "--out",
        ])
        .arg(run_artifact.join("snapshot"))
        .current_dir(estate.dir.path())
        .output()
        .unwrap();
    common::assert_ok(&out);
    let metadata_reads = |requests: &[(String, String, String)]| {
        requests.iter().filter(|(_, p, _)| p == "/idp.xml").count()
    };
    assert_eq!(metadata_reads(&estate.requests().await), 1);

    // The discover job's outputs (`keyroll discover --onboarding --write-outputs`).
    let outputs = estate.dir.path().join("discover-output");
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "discover",
            "--onboarding",
            "--api-url",
            &api,
            "--token",
            "ghs_discovery",
        ])
        .arg("--write-outputs")
        .arg(&outputs)
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    common::assert_ok(&out);
    let outputs: BTreeMap<String, String> =
        runner::parse_command_file(&std::fs::read_to_string(&outputs).unwrap())
            .unwrap()
            .into_iter()
            .collect();
    let matrix: serde_json::Value = serde_json::from_str(&outputs["matrix-1"]).unwrap();
    let entries = matrix["include"].as_array().unwrap().clone();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [BROKEN, PENDING]);
    let before = estate.requests().await.len();

    // The matrix job, for both repositories; the first fails.
    let runs = run_matrix(&estate, "batch-1", &entries, &[("keyroll-ref", "0000000")]).await;
    let [Some(broken), Some(pending)] = &runs[..] else {
        panic!("a job was cancelled: fail-fast must be false");
    };
    let pr_step = "keyroll pr";
    assert!(!broken.success());
    let failed = step(broken, pr_step);
    assert!(failed.ran && failed.code == Some(1), "{}", broken.log());
    assert!(failed.stderr.contains("unknown_key"), "{}", failed.stderr);
    assert!(pending.success(), "{}", pending.log());

    // Each job's result artifact, the failed one's too (if: always()).
    let result = |name: &str| {
        estate
            .artifacts()
            .join(format!("keyroll-result-{ORG}--{name}"))
    };
    assert_eq!(
        std::fs::read_to_string(result(BROKEN).join("exit-code.txt"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(result(PENDING).join("exit-code.txt"))
            .unwrap()
            .trim(),
        "0"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result(PENDING).join("pr.json")).unwrap()).unwrap();
    assert_eq!(report["repository"], format!("{ORG}/{PENDING}"));
    assert_eq!(report["issuers"][0]["operation"], "created", "{report:#}");

    let requests = estate.requests().await;
    let jobs = &requests[before..];
    // The snapshot, not the identity provider: no metadata read by either job.
    assert_eq!(metadata_reads(jobs), 0, "{jobs:?}");
    // Each job minted a token for its one repository, and the pending one used its own.
    let minted: BTreeMap<String, Vec<String>> = estate.fake.tokens.lock().unwrap().clone();
    assert_eq!(
        minted,
        BTreeMap::from([
            (token_for(BROKEN), vec![BROKEN.to_string()]),
            (token_for(PENDING), vec![PENDING.to_string()]),
        ])
    );
    let to_repo: Vec<&(String, String, String)> = jobs
        .iter()
        .filter(|(_, p, _)| p.starts_with("/repos/"))
        .collect();
    for (method, path, auth) in &to_repo {
        if path.ends_with("/installation") {
            assert!(
                auth.starts_with("Bearer ey"),
                "{method} {path}: the App's JWT"
            );
            continue;
        }
        assert!(
            path.starts_with(&format!("/repos/{ORG}/{PENDING}/")),
            "{method} {path}"
        );
        assert_eq!(
            *auth,
            format!("Bearer {}", token_for(PENDING)),
            "{method} {path}"
        );
    }
    // The PR against that repository's fake, its branch pushed to that repository's remote.
    assert!(
        to_repo
            .iter()
            .any(|(m, p, _)| m == "POST" && *p == format!("/repos/{ORG}/{PENDING}/pulls")),
        "{to_repo:?}"
    );
    assert!(common::remote_head(&estate.remote(PENDING), "keyroll/contoso-adfs").is_some());
    assert_eq!(
        common::remote_head(&estate.remote(BROKEN), "keyroll/contoso-adfs"),
        None
    );

    // The onboard job (input onboarding), for the repository discover listed to onboard.
    assert_eq!(outputs["onboarding-count"], "1");
    let onboarding: serde_json::Value =
        serde_json::from_str(&outputs["onboarding-matrix"]).unwrap();
    let entries = onboarding["include"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    let before = estate.requests().await.len();
    let runs = run_matrix(
        &estate,
        "onboard",
        &entries,
        &[("keyroll-ref", "0000000"), ("onboarding", "true")],
    )
    .await;
    let onboard = runs[0].as_ref().unwrap();
    assert!(onboard.success(), "{}", onboard.log());
    assert!(
        onboard.summary.contains(&format!(
            "{ORG}/{UNCONFIGURED}: created (keyroll/onboarding)"
        )),
        "{}",
        onboard.summary
    );
    let remote = estate.remote(UNCONFIGURED);
    assert!(common::remote_head(&remote, "keyroll/onboarding").is_some());
    let toml = git(&remote, &["show", "keyroll/onboarding:keyroll.toml"]);
    assert!(
        toml.contains(&format!("metadata = [\"{api}/idp.xml\"]")),
        "{toml}"
    );
    assert!(toml.contains("src/Web/Web.config"), "{toml}");
    let requests = estate.requests().await;
    let jobs = &requests[before..];
    assert_eq!(metadata_reads(jobs), 0, "{jobs:?}");
    assert!(
        jobs.iter().any(|(m, p, a)| m == "POST"
            && *p == format!("/repos/{ORG}/{UNCONFIGURED}/pulls")
            && *a == format!("Bearer {}", token_for(UNCONFIGURED))),
        "{jobs:?}"
    );
}
