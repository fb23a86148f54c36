//! `[pr] commits = "api"`: keyroll's commit made through GitHub's Git Database API (so that
//! GitHub signs it: Verified), end to end with the real binary. The fake GitHub here is
//! wiremock backed by a real bare repository through git2: blobs, trees, commits and refs
//! the API calls make land in that repository as GitHub would make them, with the App's bot
//! as author. The same run with `commits = "git"` pushes to a twin repository: both trees
//! must be the same object.

mod common;
use common::{assert_ok, copy_dir, demo_dir, git};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const NOW: &str = "2026-11-23T12:00:00Z";
const LATER: &str = "2026-11-24T12:00:00Z";
const BRANCH: &str = "keyroll/contoso-adfs";
const REPO_PATH: &str = "/repos/contoso/identity-configs";
const BOT: &str = "41898282+github-actions[bot]@users.noreply.github.com";

/// The demo in a work repository whose origin is a bare repository, with `commits` set in
/// `[pr]` and Contoso.Web's config executable (its mode must survive).
struct Fixture {
    _dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
}

impl Fixture {
    /// `commits`: the `[pr] commits` line's value, or None for the default (`auto`).
    fn demo(commits: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let bare = common::init_with_origin(dir.path(), &work);
        copy_dir(&demo_dir(), &work);
        let toml = std::fs::read_to_string(work.join("keyroll.toml")).unwrap();
        if let Some(commits) = commits {
            std::fs::write(
                work.join("keyroll.toml"),
                format!("{toml}commits = \"{commits}\"\n"),
            )
            .unwrap();
        }
        git(&work, &["add", "-A"]);
        git(
            &work,
            &["update-index", "--chmod=+x", "src/Contoso.Web/Web.config"],
        );
        git(&work, &["commit", "-q", "-m", "the demo"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
        Fixture {
            _dir: dir,
            work,
            bare,
        }
    }

    fn remote_head(&self, branch: &str) -> Option<String> {
        common::remote_head(&self.bare, branch)
    }
}

/// GitHub's Git Database API over a real bare repository. `flaky_ref`: the next ref created
/// is answered with a 502 after it is made (GitHub may answer so once it has done the work).
struct GitBacked {
    bare: PathBuf,
    flaky_ref: Arc<AtomicBool>,
}

impl Respond for GitBacked {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let repo = git2::Repository::open_bare(&self.bare).unwrap();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let p = request.url.path().to_string();
        let oid = |v: &Value| git2::Oid::from_str(v.as_str().unwrap()).unwrap();
        let created = |id: git2::Oid| {
            ResponseTemplate::new(201).set_body_json(json!({"sha": id.to_string()}))
        };
        if p.ends_with("/git/blobs") {
            assert_eq!(body["encoding"], "base64");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body["content"].as_str().unwrap())
                .unwrap();
            created(repo.blob(&bytes).unwrap())
        } else if p.ends_with("/git/trees") {
            let base = repo.find_tree(oid(&body["base_tree"])).unwrap();
            let mut update = git2::build::TreeUpdateBuilder::new();
            for e in body["tree"].as_array().unwrap() {
                assert_eq!(e["type"], "blob");
                let mode = match e["mode"].as_str().unwrap() {
                    "100644" => git2::FileMode::Blob,
                    "100755" => git2::FileMode::BlobExecutable,
                    other => panic!("mode {other}"),
                };
                update.upsert(e["path"].as_str().unwrap(), oid(&e["sha"]), mode);
            }
            created(update.create_updated(&repo, &base).unwrap())
        } else if p.ends_with("/git/commits") {
            // GitHub fills in the App's bot and signs; keyroll must not set them.
            assert!(body.get("author").is_none() && body.get("committer").is_none());
            assert!(body.get("signature").is_none());
            let bot = git2::Signature::now("github-actions[bot]", BOT).unwrap();
            let web_flow = git2::Signature::now("GitHub", "noreply@github.com").unwrap();
            let tree = repo.find_tree(oid(&body["tree"])).unwrap();
            let parents: Vec<git2::Commit> = body["parents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| repo.find_commit(oid(p)).unwrap())
                .collect();
            let parents: Vec<&git2::Commit> = parents.iter().collect();
            let message = body["message"].as_str().unwrap();
            created(
                repo.commit(None, &bot, &web_flow, message, &tree, &parents)
                    .unwrap(),
            )
        } else if p.ends_with("/git/refs") {
            let name = body["ref"].as_str().unwrap();
            match repo.reference(name, oid(&body["sha"]), false, "api") {
                Ok(_) if self.flaky_ref.swap(false, Ordering::SeqCst) => {
                    ResponseTemplate::new(502).set_body_json(json!({"message": "Server Error"}))
                }
                Ok(_) => ResponseTemplate::new(201).set_body_json(json!({"ref": name})),
                Err(_) => ResponseTemplate::new(422)
                    .set_body_json(json!({"message": "Reference already exists"})),
            }
        } else if let Some(name) = p.split("/git/ref/").nth(1) {
            assert_eq!(request.method.as_str(), "GET");
            let name = format!("refs/{}", name.replace("%2F", "/"));
            match repo.find_reference(&name) {
                Ok(r) => ResponseTemplate::new(200).set_body_json(json!({
                    "ref": name,
                    "object": {"type": "commit", "sha": r.target().unwrap().to_string()},
                })),
                Err(_) => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
            }
        } else if let Some(name) = p.split("/git/refs/").nth(1) {
            // `{ref}` is one segment: `heads%2Fkeyroll%2F…`.
            assert_eq!(request.method.as_str(), "PATCH");
            assert_eq!(body["force"], true);
            assert!(
                name.starts_with("heads%2F") && !name.contains('/'),
                "{name}"
            );
            let name = format!("refs/{}", name.replace("%2F", "/"));
            repo.reference(&name, oid(&body["sha"]), true, "api")
                .unwrap();
            ResponseTemplate::new(200).set_body_json(json!({"ref": name}))
        } else {
            ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}))
        }
    }
}

fn pull(number: u64, body: &str, sha: &str) -> Value {
    json!({
        "number": number,
        "html_url": format!("https://github.com/contoso/identity-configs/pull/{number}"),
        "state": "open",
        "merged_at": null,
        "title": "keyroll: trust contoso-adfs's new signing key 81CB9F50",
        "body": body,
        "head": { "ref": BRANCH, "sha": sha },
    })
}

async fn github(fx: &Fixture, pulls: Value) -> MockServer {
    github_with(fx, pulls, false).await
}

async fn github_with(fx: &Fixture, pulls: Value, flaky_ref: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .and(query_param("state", "all"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pulls))
        .mount(&server)
        .await;
    Mock::given(path_regex(format!("^{REPO_PATH}/git/")))
        .respond_with(GitBacked {
            bare: fx.bare.clone(),
            flaky_ref: Arc::new(AtomicBool::new(flaky_ref)),
        })
        .mount(&server)
        .await;
    let created = pull(7, "", "0");
    Mock::given(method("POST"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .mount(&server)
        .await;
    for m in ["POST", "PATCH"] {
        Mock::given(method(m))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
    }
    server
}

/// A GitHub App installation token's shape: `commits = "auto"` goes through the API.
const APP_TOKEN: &str = "ghs_testtoken0123456789abcdefghijklmnopqr";
/// Any other token: `auto` commits with git and pushes.
const OTHER_TOKEN: &str = "test-token-123";

fn keyroll_pr(work: &Path, api: &str, now: &str, token: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["pr", "--format", "json", "--now", now, "--api-url", api])
        .args(["--token", token])
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .env("KEYROLL_TEST_FAST_RETRY", "1")
        .current_dir(work)
        .output()
        .expect("keyroll runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "the token was printed"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {stderr}"))
}

async fn run_pr(fx: &Fixture, server: &MockServer, now: &str) -> Value {
    run_pr_with(fx, server, now, APP_TOKEN).await
}

async fn run_pr_with(fx: &Fixture, server: &MockServer, now: &str, token: &str) -> Value {
    let (work, api, now, token) = (
        fx.work.clone(),
        server.uri(),
        now.to_string(),
        token.to_string(),
    );
    tokio::task::spawn_blocking(move || keyroll_pr(&work, &api, &now, &token))
        .await
        .unwrap()
}

async fn calls(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

/// The JSON bodies of the writes (not GETs) to paths ending with `suffix`.
async fn bodies(server: &MockServer, suffix: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() != "GET" && r.url.path().ends_with(suffix))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_commit_takes_blobs_tree_commit_ref_in_order_and_makes_gits_tree() {
    // `auto` with an installation token: through the API.
    let fx = Fixture::demo(None);
    let server = github(&fx, json!([])).await;
    let report = run_pr(&fx, &server, NOW).await;
    let o = &report["issuers"][0];
    assert_eq!(o["operation"], "created", "{report:#}");
    assert_eq!(
        calls(&server).await,
        vec![
            format!("GET {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/git/blobs"),
            format!("POST {REPO_PATH}/git/blobs"),
            format!("POST {REPO_PATH}/git/blobs"),
            format!("POST {REPO_PATH}/git/trees"),
            format!("POST {REPO_PATH}/git/commits"),
            format!("POST {REPO_PATH}/git/refs"),
            format!("POST {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/issues/7/labels"),
            format!("POST {REPO_PATH}/pulls/7/requested_reviewers"),
        ]
    );
    // The tree is built on main's tree; modes as the base has them.
    let main = fx.remote_head("main").unwrap();
    let tree = &bodies(&server, "/git/trees").await[0];
    assert_eq!(
        tree["base_tree"],
        git(&fx.bare, &["rev-parse", &format!("{main}^{{tree}}")])
    );
    let modes: Vec<(String, String)> = tree["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().into(),
                e["mode"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        vec![
            ("src/Contoso.Api/identity.config".into(), "100644".into()),
            ("src/Contoso.Web/Web.config".into(), "100755".into()),
            ("keyroll.lock".into(), "100644".into()),
        ]
    );
    let commit = &bodies(&server, "/git/commits").await[0];
    assert_eq!(commit["parents"], json!([main]));
    assert!(
        commit["message"]
            .as_str()
            .unwrap()
            .contains("Keyroll-Keyset: ")
    );
    let head = fx.remote_head(BRANCH).expect("the ref was created");
    assert_eq!(o["head_sha"], head.as_str());
    assert_eq!(
        bodies(&server, "/git/refs").await[0],
        json!({"ref": format!("refs/heads/{BRANCH}"), "sha": head})
    );
    assert_eq!(
        git(&fx.bare, &["ls-tree", &head, "src/Contoso.Web/Web.config"])
            .split(' ')
            .next(),
        Some("100755"),
        "the executable bit is kept"
    );

    // The same run through git2 and a push (`auto` with another token) makes the very same
    // tree.
    let twin = Fixture::demo(None);
    assert_eq!(
        git(&twin.bare, &["rev-parse", "main^{tree}"]),
        git(&fx.bare, &["rev-parse", "main^{tree}"]),
        "the same base tree"
    );
    let server = github(&twin, json!([])).await;
    let report = run_pr_with(&twin, &server, NOW, OTHER_TOKEN).await;
    assert_eq!(report["issuers"][0]["operation"], "created", "{report:#}");
    assert!(!calls(&server).await.iter().any(|c| c.contains("/git/")));
    let pushed = twin.remote_head(BRANCH).unwrap();
    assert_eq!(
        git(&fx.bare, &["rev-parse", &format!("{head}^{{tree}}")]),
        git(&twin.bare, &["rev-parse", &format!("{pushed}^{{tree}}")]),
        "the API's tree is git's tree"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_branch_is_keyrolls_to_update_but_a_human_push_is_left_alone() {
    let fx = Fixture::demo(Some("api"));
    let server = github(&fx, json!([])).await;
    run_pr(&fx, &server, NOW).await;
    let body = bodies(&server, &format!("{REPO_PATH}/pulls")).await[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    let first = fx.remote_head(BRANCH).unwrap();

    // The base moves: the bot's commit is keyroll's, so the branch is rebuilt and the ref
    // force-updated.
    std::fs::write(fx.work.join("README.txt"), "unrelated\n").unwrap();
    common::commit_and_push(&fx.work, "unrelated change");
    let server = github(&fx, json!([pull(7, &body, &first)])).await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(report["issuers"][0]["operation"], "updated", "{report:#}");
    let calls_made = calls(&server).await;
    let refs = format!("PATCH {REPO_PATH}/git/refs/heads%2Fkeyroll%2Fcontoso-adfs");
    assert!(calls_made.contains(&refs), "{calls_made:?}");
    let second = fx.remote_head(BRANCH).unwrap();
    assert_ne!(second, first);
    assert_eq!(
        bodies(&server, "/git/refs/heads%2Fkeyroll%2Fcontoso-adfs").await[0],
        json!({"sha": second, "force": true})
    );

    // Jane pushes to the branch: left alone, no git object made, the ref untouched.
    git(&fx.work, &["fetch", "-q", "origin", BRANCH]);
    git(&fx.work, &["checkout", "-q", "-b", "jane", "FETCH_HEAD"]);
    std::fs::write(fx.work.join("NOTES.txt"), "deploy on Tuesday\n").unwrap();
    git(&fx.work, &["add", "NOTES.txt"]);
    git(
        &fx.work,
        &[
            "-c",
            "user.name=Jane",
            "-c",
            "user.email=jane@example.com",
            "commit",
            "-q",
            "-m",
            "note",
        ],
    );
    git(
        &fx.work,
        &["push", "-q", "origin", &format!("jane:{BRANCH}")],
    );
    git(&fx.work, &["checkout", "-q", "main"]);
    std::fs::write(fx.work.join("README.txt"), "unrelated again\n").unwrap();
    common::commit_and_push(&fx.work, "another unrelated change");
    let janes = fx.remote_head(BRANCH).unwrap();
    let server = github(&fx, json!([pull(7, &body, &janes)])).await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(
        report["issuers"][0]["operation"], "skipped-human",
        "{report:#}"
    );
    assert_eq!(fx.remote_head(BRANCH).unwrap(), janes, "not moved");
    let calls_made = calls(&server).await;
    assert!(
        !calls_made.iter().any(|c| c.contains("/git/")),
        "{calls_made:?}"
    );
}

#[test]
fn a_dry_run_lists_every_api_call_with_its_full_path() {
    let fx = Fixture::demo(Some("api"));
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "pr",
            "--dry-run",
            "--now",
            NOW,
            "--api-url",
            "http://127.0.0.1:9",
        ])
        .env_remove("GITHUB_TOKEN")
        .current_dir(&fx.work)
        .output()
        .unwrap();
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("GitHub API calls"))
        .skip(1)
        .map(str::trim)
        .collect();
    assert_eq!(
        listed,
        vec![
            format!(
                "GET {REPO_PATH}/pulls?head=contoso%3Akeyroll/contoso-adfs&state=all&per_page=100  (not sent)"
            ),
            format!("POST {REPO_PATH}/git/blobs  (not sent)"),
            format!("POST {REPO_PATH}/git/blobs  (not sent)"),
            format!("POST {REPO_PATH}/git/blobs  (not sent)"),
            format!("POST {REPO_PATH}/git/trees  (not sent)"),
            format!("POST {REPO_PATH}/git/commits  (not sent)"),
            format!("POST {REPO_PATH}/git/refs  (not sent)"),
            format!("POST {REPO_PATH}/pulls  (not sent)"),
            format!("POST {REPO_PATH}/issues/{{number}}/labels  (not sent)"),
            format!("POST {REPO_PATH}/pulls/{{number}}/requested_reviewers  (not sent)"),
        ],
        "{text}"
    );
    // With `git`, no git/ call at all.
    let fx = Fixture::demo(Some("git"));
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "pr",
            "--dry-run",
            "--now",
            NOW,
            "--api-url",
            "http://127.0.0.1:9",
        ])
        .env_remove("GITHUB_TOKEN")
        .current_dir(&fx.work)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("/git/"));
}

/// A ref GitHub made but answered with a 502: keyroll sends the create again (a ref made
/// twice is the same ref), GitHub refuses it as existing, and keyroll looks: the branch
/// points at its commit, so the pull request is made. Before, the run failed on the 422.
#[tokio::test(flavor = "multi_thread")]
async fn a_ref_created_but_answered_with_a_5xx_is_found_not_failed() {
    let fx = Fixture::demo(None);
    let server = github_with(&fx, json!([]), true).await;
    let report = run_pr(&fx, &server, NOW).await;
    let o = &report["issuers"][0];
    assert_eq!(o["operation"], "created", "{report:#}");
    let head = fx.remote_head(BRANCH).expect("the ref was created");
    assert_eq!(o["head_sha"], head.as_str());
    let calls = calls(&server).await;
    let refs: Vec<&String> = calls.iter().filter(|c| c.contains("/git/ref")).collect();
    assert_eq!(
        refs,
        vec![
            &format!("POST {REPO_PATH}/git/refs"),
            &format!("POST {REPO_PATH}/git/refs"),
            &format!("GET {REPO_PATH}/git/ref/heads%2Fkeyroll%2Fcontoso-adfs"),
        ],
        "{calls:#?}"
    );
    assert!(calls.contains(&format!("POST {REPO_PATH}/pulls")));
}
