//! `keyroll pr` end to end: the real binary, a real local bare repository as the remote,
//! and a wiremock GitHub that records every request. Each scenario asserts the requests
//! made and what landed in the remote repository.

mod common;
use common::{assert_ok, copy_dir, demo_dir, git};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const NOW: &str = "2026-11-23T12:00:00Z";
const LATER: &str = "2026-11-24T12:00:00Z";
const BRANCH: &str = "keyroll/contoso-adfs";
const REPO_PATH: &str = "/repos/contoso/identity-configs";
const NEXT_KEY: &str = "81CB9F506E54F19731D89F749FBBCE8FE6476295";

/// A work clone of the embedded example whose origin is a bare repository.
struct Fixture {
    _dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
}

impl Fixture {
    fn demo() -> Fixture {
        let fx = Fixture::empty();
        copy_dir(&demo_dir(), &fx.work);
        fx.commit_and_push("the demo");
        fx
    }

    fn empty() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let bare = common::init_with_origin(dir.path(), &work);
        Fixture {
            _dir: dir,
            work,
            bare,
        }
    }

    /// `keyroll apply` in the work tree, as a person fixing the configs by hand would.
    fn apply(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(["apply", "--now", NOW])
            .current_dir(&self.work)
            .output()
            .unwrap();
        assert_ok(&out);
    }

    fn commit_and_push(&self, message: &str) {
        common::commit_and_push(&self.work, message);
    }

    fn remote_head(&self, branch: &str) -> Option<String> {
        common::remote_head(&self.bare, branch)
    }

    fn remote_file(&self, rev: &str, file: &str) -> Vec<u8> {
        Command::new("git")
            .args(["cat-file", "blob", &format!("{rev}:{file}")])
            .current_dir(&self.bare)
            .output()
            .unwrap()
            .stdout
    }
}

/// Runs `keyroll pr --format json` in `work` against the mock GitHub `api`; fails the test
/// if the token shows up anywhere in the output.
fn keyroll_pr(work: &Path, api: &str, now: &str, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["pr", "--format", "json", "--now", now, "--api-url", api])
        .args(["--token", "test-token-123"])
        .args(extra)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .current_dir(work)
        .output()
        .expect("keyroll runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stdout.contains("test-token-123") && !stderr.contains("test-token-123"),
        "the token was printed"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {stderr}"))
}

async fn run_pr(fx: &Fixture, server: &MockServer, now: &str) -> Value {
    run_pr_args(fx, server, now, &[]).await
}

async fn run_pr_args(fx: &Fixture, server: &MockServer, now: &str, extra: &[&str]) -> Value {
    let (work, api, now) = (fx.work.clone(), server.uri(), now.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        keyroll_pr(&work, &api, &now, &extra)
    })
    .await
    .unwrap()
}

fn pull(number: u64, state: &str, merged: bool, body: &str, sha: &str) -> Value {
    json!({
        "number": number,
        "html_url": format!("https://github.com/contoso/identity-configs/pull/{number}"),
        "state": state,
        "merged_at": if merged { json!("2026-11-20T00:00:00Z") } else { Value::Null },
        "title": "keyroll: trust contoso-adfs's new signing key 81CB9F50",
        "body": body,
        "head": { "ref": BRANCH, "sha": sha },
    })
}

async fn mock_pulls(server: &MockServer, pulls: Value) {
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .and(query_param("head", format!("contoso:{BRANCH}")))
        .and(query_param("state", "all"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pulls))
        .mount(server)
        .await;
}

async fn mock_create(server: &MockServer, number: u64) {
    Mock::given(method("POST"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(pull(number, "open", false, "", "0")),
        )
        .mount(server)
        .await;
    for p in [
        format!("{REPO_PATH}/issues/{number}/labels"),
        format!("{REPO_PATH}/pulls/{number}/requested_reviewers"),
    ] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
            .mount(server)
            .await;
    }
}

async fn mock_any_write(server: &MockServer) {
    for m in ["POST", "PATCH", "DELETE"] {
        Mock::given(method(m))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(server)
            .await;
    }
}

/// `METHOD /path` of every request the mock saw.
async fn calls(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r: &Request| format!("{} {}", r.method, r.url.path()))
        .collect()
}

async fn body_of(server: &MockServer, m: &str, p: &str) -> Value {
    let requests = server.received_requests().await.unwrap();
    let r = requests
        .iter()
        .find(|r| r.method.as_str() == m && r.url.path() == p)
        .unwrap_or_else(|| panic!("no {m} {p}"));
    serde_json::from_slice(&r.body).unwrap()
}

fn outcome(report: &Value) -> &Value {
    &report["issuers"][0]
}

/// A first run that opens PR #7; returns its body (with the marker), as a later listing
/// would show it.
async fn first_run(fx: &Fixture) -> String {
    let first = MockServer::start().await;
    mock_pulls(&first, json!([])).await;
    mock_create(&first, 7).await;
    run_pr(fx, &first, NOW).await;
    created_body(&first).await
}

async fn created_body(server: &MockServer) -> String {
    body_of(server, "POST", &format!("{REPO_PATH}/pulls")).await["body"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_branch_commit_and_pull_request_with_labels_and_reviewers() {
    let fx = Fixture::demo();
    let server = MockServer::start().await;
    mock_pulls(&server, json!([])).await;
    mock_create(&server, 7).await;

    let report = run_pr(&fx, &server, NOW).await;
    let o = outcome(&report);
    assert_eq!(o["operation"], "created", "{report:#}");
    assert_eq!(o["number"], 7);
    assert_eq!(o["branch"], BRANCH);
    assert_eq!(
        calls(&server).await,
        vec![
            format!("GET {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/issues/7/labels"),
            format!("POST {REPO_PATH}/pulls/7/requested_reviewers"),
        ]
    );
    let create = body_of(&server, "POST", &format!("{REPO_PATH}/pulls")).await;
    assert_eq!(create["head"], BRANCH);
    assert_eq!(create["base"], "main");
    let body = create["body"].as_str().unwrap();
    assert!(body.contains(NEXT_KEY) && body.contains("```diff") && body.contains("<!-- keyroll: "));
    assert!(body.chars().count() <= 65_536);
    assert_eq!(
        body_of(&server, "POST", &format!("{REPO_PATH}/issues/7/labels")).await["labels"],
        json!(["security", "keyroll"])
    );

    // One commit on main's head, by keyroll, holding the exact planned bytes.
    let head = fx.remote_head(BRANCH).expect("branch pushed");
    assert_eq!(o["head_sha"], head.as_str());
    let main = fx.remote_head("main").unwrap();
    let parents = git(&fx.bare, &["rev-list", "--parents", "-n", "1", &head]);
    assert_eq!(parents, format!("{head} {main}"));
    let author = git(
        &fx.bare,
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &head],
    );
    assert_eq!(
        author,
        "keyroll[bot] <keyroll[bot]@users.noreply.github.com>|keyroll[bot] <keyroll[bot]@users.noreply.github.com>"
    );
    let web = fx.remote_file(&head, "src/Contoso.Web/Web.config");
    let before = std::fs::read(fx.work.join("src/Contoso.Web/Web.config")).unwrap();
    assert!(web.starts_with(b"\xEF\xBB\xBF"), "BOM kept");
    assert_eq!(
        web.windows(2).filter(|w| w == b"\r\n").count(),
        before.windows(2).filter(|w| w == b"\r\n").count() + 1,
        "CRLF kept, one line added"
    );
    assert!(String::from_utf8_lossy(&web).contains(NEXT_KEY));
    let changed = git(&fx.bare, &["diff", "--name-only", &main, &head]);
    assert_eq!(
        changed.lines().collect::<Vec<_>>(),
        vec![
            "keyroll.lock",
            "src/Contoso.Api/identity.config",
            "src/Contoso.Web/Web.config"
        ]
    );
    // The work tree is not touched.
    assert_eq!(git(&fx.work, &["status", "--porcelain"]), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn same_branch_same_pr_updated_after_base_moves_and_left_alone_when_current() {
    let fx = Fixture::demo();
    let body = first_run(&fx).await;
    let first_head = fx.remote_head(BRANCH).unwrap();

    // Nothing moved: one listing call, no push, no write.
    let quiet = MockServer::start().await;
    mock_pulls(&quiet, json!([pull(7, "open", false, &body, &first_head)])).await;
    let report = run_pr(&fx, &quiet, LATER).await;
    assert_eq!(outcome(&report)["operation"], "none", "{report:#}");
    assert_eq!(calls(&quiet).await, vec![format!("GET {REPO_PATH}/pulls")]);
    assert_eq!(fx.remote_head(BRANCH).unwrap(), first_head);

    // The base moved: the branch is rebuilt on it, force-pushed, and the same PR updated.
    std::fs::write(fx.work.join("README.txt"), "unrelated\n").unwrap();
    fx.commit_and_push("unrelated change");
    let moved = MockServer::start().await;
    mock_pulls(&moved, json!([pull(7, "open", false, &body, &first_head)])).await;
    mock_any_write(&moved).await;
    let report = run_pr(&fx, &moved, LATER).await;
    assert_eq!(outcome(&report)["operation"], "updated", "{report:#}");
    assert_eq!(outcome(&report)["number"], 7);
    assert_eq!(
        calls(&moved).await,
        vec![
            format!("GET {REPO_PATH}/pulls"),
            format!("PATCH {REPO_PATH}/pulls/7")
        ]
    );
    let head = fx.remote_head(BRANCH).unwrap();
    assert_ne!(head, first_head);
    let main = fx.remote_head("main").unwrap();
    assert_eq!(
        git(&fx.bare, &["rev-list", "--parents", "-n", "1", &head]),
        format!("{head} {main}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_422_finds_and_updates_the_existing_pull_request() {
    let fx = Fixture::demo();
    let server = MockServer::start().await;
    // The first listing lags and sees nothing; the second sees the PR another run opened.
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([pull(9, "open", false, "", "abc")])),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom",
                        "message": "A pull request already exists for contoso:keyroll/contoso-adfs."}]
        })))
        .mount(&server)
        .await;
    mock_any_write(&server).await;
    let report = run_pr(&fx, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "updated", "{report:#}");
    assert_eq!(outcome(&report)["number"], 9);
    assert_eq!(
        calls(&server).await,
        vec![
            format!("GET {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/pulls"),
            format!("GET {REPO_PATH}/pulls"),
            format!("PATCH {REPO_PATH}/pulls/9"),
            // Its labels and reviewers: a create GitHub carried out before answering with a
            // timeout never got them.
            format!("POST {REPO_PATH}/issues/9/labels"),
            format!("POST {REPO_PATH}/pulls/9/requested_reviewers"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn closes_its_pull_request_and_deletes_the_branch_when_nothing_is_left() {
    let fx = Fixture::demo();
    let body = first_run(&fx).await;

    // Someone applied the change by hand on main.
    fx.apply();
    fx.commit_and_push("trust the next key by hand");

    let server = MockServer::start().await;
    mock_pulls(&server, json!([pull(7, "open", false, &body, "abc")])).await;
    mock_any_write(&server).await;
    let report = run_pr(&fx, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "closed", "{report:#}");
    assert_eq!(
        calls(&server).await,
        vec![
            format!("GET {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/issues/7/comments"),
            format!("PATCH {REPO_PATH}/pulls/7"),
            format!("DELETE {REPO_PATH}/git/refs/heads/{BRANCH}"),
        ]
    );
    let closing = body_of(&server, "PATCH", &format!("{REPO_PATH}/pulls/7")).await;
    assert_eq!(closing["state"], "closed");
    let closed_body = closing["body"].as_str().unwrap().to_string();
    assert!(
        closed_body.contains("\"closed_by_keyroll\":true"),
        "the marker says keyroll closed it: {closed_body}"
    );
    let comment = body_of(&server, "POST", &format!("{REPO_PATH}/issues/7/comments")).await;
    assert!(
        comment["body"]
            .as_str()
            .unwrap()
            .contains("nothing is left to change")
    );

    // The hand edit is reverted and the same key set is wanted again: keyroll's own close is
    // not a person's "no", so a new pull request is proposed.
    common::git(&fx.work, &["revert", "--no-edit", "HEAD"]);
    common::git(&fx.work, &["push", "-q", "origin", "HEAD:main"]);
    let server = MockServer::start().await;
    mock_pulls(
        &server,
        json!([pull(7, "closed", false, &closed_body, "abc")]),
    )
    .await;
    mock_create(&server, 8).await;
    let report = run_pr(&fx, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "created", "{report:#}");
    assert_eq!(outcome(&report)["number"], 8);
}

/// A config of the issuer that cannot be read (malformed on main mid-roll) says nothing about
/// whether the new key is trusted: the open pull request is neither closed nor rewritten, and
/// the run fails for the issuer naming the file.
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_config_leaves_the_open_pull_request_as_it_is() {
    let fx = Fixture::demo();
    let body = first_run(&fx).await;
    for file in [
        "src/Contoso.Web/Web.config",
        "src/Contoso.Api/identity.config",
    ] {
        let path = fx.work.join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("<oops\n");
        std::fs::write(&path, text).unwrap();
    }
    fx.commit_and_push("a bad merge");
    let server = MockServer::start().await;
    mock_pulls(&server, json!([pull(7, "open", false, &body, "abc")])).await;
    mock_any_write(&server).await;
    let (work, api) = (fx.work.clone(), server.uri());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(["pr", "--format", "json", "--now", NOW, "--api-url", &api])
            .args(["--token", "test-token-123"])
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_ACTIONS")
            .current_dir(&work)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(outcome(&report)["operation"], "failed", "{report:#}");
    assert!(
        outcome(&report)["detail"]
            .as_str()
            .unwrap()
            .contains("Web.config"),
        "{report:#}"
    );
    assert_eq!(calls(&server).await, vec![format!("GET {REPO_PATH}/pulls")]);
    assert_ne!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_unmerged_pr_for_the_same_key_set_is_not_reopened_but_a_new_key_set_is_proposed() {
    let fx = Fixture::demo();
    let body = first_run(&fx).await;

    let server = MockServer::start().await;
    mock_pulls(&server, json!([pull(7, "closed", false, &body, "abc")])).await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(
        outcome(&report)["operation"],
        "skipped-closed",
        "{report:#}"
    );
    assert_eq!(outcome(&report)["number"], 7);
    assert_eq!(calls(&server).await, vec![format!("GET {REPO_PATH}/pulls")]);

    // A different key set (the marker says another one) gets a new PR.
    let other = body.replace(
        &body[body.rfind("\"keyset\":\"").unwrap()..body.rfind("\"}").unwrap()],
        "\"keyset\":\"0000000000000000",
    );
    let server = MockServer::start().await;
    mock_pulls(&server, json!([pull(7, "closed", false, &other, "abc")])).await;
    mock_create(&server, 8).await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(outcome(&report)["operation"], "created", "{report:#}");
    assert_eq!(outcome(&report)["number"], 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_with_human_commits_is_left_alone_with_one_comment() {
    let fx = Fixture::demo();
    let body = first_run(&fx).await;

    // Jane pushes to keyroll's branch, then the base moves.
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
    std::fs::write(fx.work.join("README.txt"), "unrelated\n").unwrap();
    fx.commit_and_push("unrelated change");
    let janes = fx.remote_head(BRANCH).unwrap();

    let server = MockServer::start().await;
    mock_pulls(&server, json!([pull(7, "open", false, &body, &janes)])).await;
    mock_any_write(&server).await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(outcome(&report)["operation"], "skipped-human", "{report:#}");
    assert_eq!(fx.remote_head(BRANCH).unwrap(), janes, "not force-pushed");
    assert_eq!(
        calls(&server).await,
        vec![
            format!("GET {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/issues/7/comments"),
            format!("PATCH {REPO_PATH}/pulls/7"),
        ]
    );
    let comment = body_of(&server, "POST", &format!("{REPO_PATH}/issues/7/comments")).await;
    assert!(comment["body"].as_str().unwrap().contains(NEXT_KEY));
    let noted = body_of(&server, "PATCH", &format!("{REPO_PATH}/pulls/7")).await["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(noted.contains("\"notified\":"));

    // Told once: the next run with the noted body only lists.
    let server = MockServer::start().await;
    mock_pulls(&server, json!([pull(7, "open", false, &noted, &janes)])).await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(outcome(&report)["operation"], "skipped-human");
    assert_eq!(calls(&server).await, vec![format!("GET {REPO_PATH}/pulls")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_is_waited_out_then_the_call_succeeds() {
    let fx = Fixture::demo();
    let server = MockServer::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "secondary rate limit"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mock_pulls(&server, json!([])).await;
    mock_create(&server, 7).await;
    let started = std::time::Instant::now();
    let report = run_pr(&fx, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "created", "{report:#}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(
        calls(&server).await[..4],
        [
            format!("GET {REPO_PATH}/pulls"),
            format!("GET {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/pulls"),
            format!("POST {REPO_PATH}/pulls"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_then_the_call_succeeds() {
    let fx = Fixture::demo();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mock_pulls(&server, json!([])).await;
    mock_create(&server, 7).await;
    let report = run_pr(&fx, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "created", "{report:#}");
    let seen = calls(&server).await;
    assert_eq!(seen.iter().filter(|c| c.starts_with("GET")).count(), 2);
    assert_eq!(
        seen.iter()
            .filter(|c| *c == &format!("POST {REPO_PATH}/pulls"))
            .count(),
        2
    );
    // A 4xx that is not a rate limit is not retried, and names the call.
    let fx = Fixture::demo();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    let report = run_pr(&fx, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "failed");
    let detail = outcome(&report)["detail"].as_str().unwrap();
    assert!(
        detail.contains("HTTP 404") && detail.contains("/pulls"),
        "{detail}"
    );
    assert_eq!(calls(&server).await.len(), 1);
}

/// A repository with 20 issuers, each with its own app; all up to date except, optionally, app 00.
fn twenty_issuers(stale_first: bool) -> Fixture {
    let fx = Fixture::empty();
    let demo = demo_dir();
    copy_dir(&demo.join("metadata"), &fx.work.join("metadata"));
    let mut toml = String::from("[pr]\nrepository = \"contoso/identity-configs\"\n");
    let original = std::fs::read(demo.join("src/Contoso.Web/Web.config")).unwrap();
    for i in 0..20 {
        toml.push_str(&format!(
            "\n[[issuer]]\nname = \"idp{i:02}\"\nmetadata = [\"metadata/FederationMetadata.xml\"]\nentity_id = \"http://adfs.contoso.com/adfs/services/trust\"\n\n[[target]]\nfiles = [\"apps/a{i:02}/Web.config\"]\nissuers = [\"idp{i:02}\"]\n"
        ));
        let dir = fx.work.join(format!("apps/a{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Web.config"), &original).unwrap();
    }
    std::fs::write(fx.work.join("keyroll.toml"), toml).unwrap();
    fx.apply();
    if stale_first {
        std::fs::write(fx.work.join("apps/a00/Web.config"), &original).unwrap();
    }
    fx.commit_and_push("twenty apps");
    fx
}

#[tokio::test(flavor = "multi_thread")]
async fn no_change_run_over_20_issuers_makes_one_read_per_issuer_and_no_write() {
    let fx = twenty_issuers(false);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let report = run_pr(&fx, &server, LATER).await;
    let ops: Vec<&str> = report["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["none"; 20], "{report:#}");
    let seen = calls(&server).await;
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert!(seen.iter().all(|c| c.starts_with("GET ")));

    // One stale app: one more call than the listing, the create; nothing else.
    let fx = twenty_issuers(true);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_PATH}/pulls")))
        .respond_with(ResponseTemplate::new(201).set_body_json(pull(3, "open", false, "", "0")))
        .mount(&server)
        .await;
    let report = run_pr(&fx, &server, LATER).await;
    assert_eq!(report["issuers"][0]["operation"], "created", "{report:#}");
    let seen = calls(&server).await;
    assert_eq!(seen.len(), 21, "{seen:?}");
    assert_eq!(seen.iter().filter(|c| !c.starts_with("GET ")).count(), 1);
    assert!(fx.remote_head("keyroll/idp00").is_some());
    assert!(fx.remote_head("keyroll/idp01").is_none());
}

#[test]
fn dry_run_needs_no_token_and_sends_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "pr",
            "--dry-run",
            "--config",
            "examples/demo/keyroll.toml",
            "--now",
            NOW,
        ])
        .args(["--api-url", "http://127.0.0.1:9"])
        .env_remove("GITHUB_TOKEN")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ok(&out);
    assert!(
        text.contains("would create on branch keyroll/contoso-adfs"),
        "{text}"
    );
    assert!(text.contains("--- pull request body") && text.contains(NEXT_KEY));
    assert!(text.contains("POST /repos/contoso/identity-configs/pulls  (not sent)"));
    assert!(!text.contains("HTTP "), "nothing was sent: {text}");
    // Without --dry-run and without a token it refuses.
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["pr", "--config", "examples/demo/keyroll.toml", "--now", NOW])
        .env_remove("GITHUB_TOKEN")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn github_app_key_mints_an_installation_token_used_for_the_api() {
    let fx = Fixture::demo();
    // The minted token must reach git's push too: commit with git, not through the API
    // (which `commits = "auto"` picks for an installation token; see tests/pr_api.rs).
    let config = fx.work.join("keyroll.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}commits = \"git\"\n")).unwrap();
    fx.commit_and_push("commit with git");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_PATH}/installation")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 42})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/42/access_tokens"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"token": "ghs_installation"})),
        )
        .mount(&server)
        .await;
    mock_pulls(&server, json!([])).await;
    mock_create(&server, 7).await;
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github-app-test-key.pem");
    let report = run_pr_args(
        &fx,
        &server,
        NOW,
        &[
            "--app-id",
            "12345",
            "--app-private-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(outcome(&report)["operation"], "created", "{report:#}");
    let requests = server.received_requests().await.unwrap();
    let auth = |r: &Request| {
        r.headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    // The JWT: RS256, issued by the App, verifiable with the key's public half.
    let jwt = auth(&requests[0]).trim_start_matches("Bearer ").to_string();
    let parts: Vec<&str> = jwt.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "12345");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        600
    );
    let pem = std::fs::read_to_string(&key).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let pair = ring::rsa::KeyPair::from_der(&der).unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        ring::signature::KeyPair::public_key(&pair).as_ref(),
    )
    .verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &b64.decode(parts[2]).unwrap(),
    )
    .expect("the JWT signature verifies");
    let listing = requests
        .iter()
        .find(|r| r.url.path() == format!("{REPO_PATH}/pulls"))
        .unwrap();
    assert_eq!(auth(listing), "Bearer ghs_installation");
}

#[tokio::test(flavor = "multi_thread")]
async fn works_from_a_shallow_checkout_like_actions_checkout_makes() {
    let fx = Fixture::demo();
    std::fs::write(fx.work.join("README.txt"), "second commit\n").unwrap();
    fx.commit_and_push("second");
    let parent = fx.work.parent().unwrap();
    let url = format!("file://{}", fx.bare.display());
    git(parent, &["clone", "-q", "--depth", "1", &url, "shallow"]);
    let shallow = Fixture {
        _dir: tempfile::tempdir().unwrap(),
        work: parent.join("shallow"),
        bare: fx.bare.clone(),
    };
    assert!(shallow.work.join(".git/shallow").exists());
    let server = MockServer::start().await;
    mock_pulls(&server, json!([])).await;
    mock_create(&server, 7).await;
    let report = run_pr(&shallow, &server, NOW).await;
    assert_eq!(outcome(&report)["operation"], "created", "{report:#}");
    let head = fx
        .remote_head(BRANCH)
        .expect("pushed from the shallow clone");
    assert_eq!(
        git(&fx.bare, &["rev-parse", &format!("{head}^")]),
        fx.remote_head("main").unwrap()
    );
}
