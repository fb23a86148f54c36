//! Contract test: the whole `keyroll pr` flow against a mock generated from GitHub's
//! official OpenAPI description (npm `@octokit/openapi`, served by `@stoplight/prism-cli`),
//! once for api.github.com and once for GitHub Enterprise Server under `/api/v3`. Prism
//! checks each request against the description and logs every violation; any request
//! violation fails the test. (Prism's own example responses do not always match GitHub's
//! schemas, so only request violations count.)
//!
//! The packages are installed by `scripts/test` into tests/contract/node_modules (pinned in
//! tests/contract/package.json); without them this test fails, it never skips.

mod common;
mod prism;
use common::git;
use prism::{Prism, contract_dir};

use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Prism serving `description`; with `prefix`, every path of the description is moved
/// under it (Prism ignores the GHES description's templated server path
/// `{protocol}://{hostname}/api/v3`, so the copy it serves spells the prefix out).
fn start_prism(description: &str, prefix: &str, work: &Path) -> Prism {
    let dir = contract_dir();
    let mut spec = dir
        .join("node_modules/@octokit/openapi/generated")
        .join(description);
    assert!(
        spec.exists(),
        "GitHub's OpenAPI description is missing under {}: run scripts/test, which installs it",
        dir.display()
    );
    if !prefix.is_empty() {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
        spec = work.join(description);
        std::fs::write(
            &spec,
            serde_json::to_vec(&prism::under_prefix(doc, prefix)).unwrap(),
        )
        .unwrap();
    }
    prism::start("mock", &spec, None, work, Duration::from_secs(180))
}

fn contract_run(description: &str, api_path: &str) {
    contract_run_with(
        description,
        api_path,
        "ghp_contract_test",
        &[
            "GET /pulls",
            "POST /pulls",
            "POST /labels",
            "POST /requested_reviewers",
        ],
        false,
    );
}

/// The `pr` flow with `token` (a `ghs_` installation token makes the commit through the
/// API), expecting the calls `expect` (method and the path's last segment) in order. With
/// `branch_exists`, keyroll's branch is already on the remote (at the base, so keyroll's):
/// its ref is force-updated rather than created.
fn contract_run_with(
    description: &str,
    api_path: &str,
    token: &str,
    expect: &[&str],
    branch_exists: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("origin.git");
    let work = dir.path().join("work");
    git(dir.path(), &["init", "-q", "--bare", "origin.git"]);
    common::demo_work_repo(&work, &bare);
    if branch_exists {
        git(&bare, &["branch", "keyroll/contoso-adfs", "main"]);
    }

    let prism = start_prism(description, api_path, dir.path());
    let api = format!("http://127.0.0.1:{}{api_path}", prism.port);
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["pr", "--format", "json", "--now", "2026-11-23T12:00:00Z"])
        .args(["--api-url", &api, "--remote", bare.to_str().unwrap()])
        .args(["--token", token])
        .env_remove("GITHUB_TOKEN")
        .current_dir(&work)
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut log = String::new();
    std::fs::File::open(&prism.log)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let violations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Violation: request") || l.contains("Request did not pass"))
        .collect();
    assert!(
        violations.is_empty(),
        "{description}: keyroll sent requests GitHub's description rejects:\n{}\n\nkeyroll said: {stdout}",
        violations.join("\n")
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    if branch_exists {
        // Prism answers the branch's read with its example commit, not the head keyroll
        // checked: the lease refuses to move it (the lease itself: tests/github_retry.rs).
        // The move keyroll would make is checked against the description through the
        // client, with the head Prism reports.
        assert!(
            !out.status.success() && stdout.contains("changed on GitHub since keyroll read it"),
            "{description}: {stdout}{stderr}"
        );
        patch_ref_through_client(&api, &prism.log);
    } else {
        assert!(out.status.success(), "{description}: {stdout}{stderr}");
        assert_eq!(report["issuers"][0]["operation"], "created", "{report:#}");
    }
    let calls: Vec<String> = report["api_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let path = c["path"].as_str().unwrap().split('?').next().unwrap();
            let last = path.rsplit('/').next().unwrap();
            format!("{} /{last}", c["method"].as_str().unwrap())
        })
        .collect();
    assert_eq!(calls, expect, "{report:#}");
    // Every call reached an operation of the description (Prism answers 404 otherwise).
    assert!(
        report["api_calls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))),
        "{report:#}"
    );
}

#[test]
fn pr_flow_matches_the_api_github_com_description() {
    contract_run("api.github.com.json", "");
}

#[test]
fn pr_flow_matches_the_github_enterprise_server_description_under_api_v3() {
    contract_run("ghes-3.19.json", "/api/v3");
}

/// `[pr] commits = "auto"` with an installation token: the commit through the Git Database
/// endpoints (blobs, trees, commits, refs), each checked against the description.
const API_COMMIT_CALLS: &[&str] = &[
    "GET /pulls",
    "POST /blobs",
    "POST /blobs",
    "POST /blobs",
    "POST /trees",
    "POST /commits",
    "POST /refs",
    "POST /pulls",
    "POST /labels",
    "POST /requested_reviewers",
];

#[test]
fn api_commits_match_the_api_github_com_description() {
    contract_run_with(
        "api.github.com.json",
        "",
        "ghs_contract_test",
        API_COMMIT_CALLS,
        false,
    );
}

/// Moves keyroll's branch through the client as `pr` does (read it, then `PATCH` it), with
/// the head Prism reports, and checks Prism's log holds no request its description rejects.
fn patch_ref_through_client(api: &str, log: &std::path::Path) {
    use keyroll::act::github::{GitHub, RepoName, RetryPolicy, Secret};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token = "ghs_contract_test";
    let repo = RepoName::parse("contoso/identity-configs").unwrap();
    let github = GitHub::new(api, Some(Secret::new(token)), false, RetryPolicy::default());
    runtime.block_on(async {
        let url =
            format!("{api}/repos/contoso/identity-configs/git/ref/heads%2Fkeyroll%2Fcontoso-adfs");
        let head: serde_json::Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .map(|text| serde_json::from_str(&text).unwrap())
            .unwrap();
        let head = head["object"]["sha"].as_str().unwrap().to_string();
        github
            .set_branch(&repo, "keyroll/contoso-adfs", &"c".repeat(40), Some(&head))
            .await
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut text = String::new();
    std::fs::File::open(log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("PATCH"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("Violation: request") || l.contains("Request did not pass")),
        "{text}"
    );
}

/// On GHES, with keyroll's branch already there: the branch is read (the lease), then
/// force-updated (`PATCH …/git/refs/heads%2Fkeyroll%2Fcontoso-adfs`: `{ref}` is one path
/// segment).
#[test]
fn api_commits_match_the_github_enterprise_server_description_under_api_v3() {
    let mut calls = API_COMMIT_CALLS[..7].to_vec();
    calls[6] = "GET /heads%2Fkeyroll%2Fcontoso-adfs";
    contract_run_with(
        "ghes-3.19.json",
        "/api/v3",
        "ghs_contract_test",
        &calls,
        true,
    );
}

/// The organisation endpoints (discover and its code search for onboarding, dashboard, a
/// token scoped to one repository),
/// called through keyroll's client against Prism: no request GitHub's description rejects,
/// and every call answered 2xx (Prism answers 404 for a path the description lacks).
fn org_endpoints_run(description: &str, api_path: &str) {
    use keyroll::act::github::{GitHub, RepoName, RetryPolicy, Secret};
    let dir = tempfile::tempdir().unwrap();
    let prism = start_prism(description, api_path, dir.path());
    let api = format!("http://127.0.0.1:{}{api_path}", prism.port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let github = GitHub::new(
        &api,
        Some(Secret::new("ghs_contract_test")),
        false,
        RetryPolicy::default(),
    );
    let repo = RepoName::parse("contoso/central").unwrap();
    runtime.block_on(async {
        github.installation_repositories(1).await.unwrap();
        github.org_repositories("contoso", 1).await.unwrap();
        github.file_exists(&repo, "keyroll.toml").await.unwrap();
        // discover --onboarding's query, as it sends it (page 2: the pagination parameters).
        github
            .search_code("issuerNameRegistry extension:config org:contoso", 2)
            .await
            .unwrap();
        github
            .issues_with_label(&repo, "keyroll-dashboard")
            .await
            .unwrap();
        github
            .search_issues_by_marker(&repo, keyroll::act::dashboard::MARKER)
            .await
            .unwrap();
        github
            .create_issue(
                &repo,
                "keyroll dashboard",
                "body",
                &["keyroll-dashboard".into()],
            )
            .await
            .unwrap();
        github
            .update_issue(&repo, 1, "keyroll dashboard", "body")
            .await
            .unwrap();
        github
            .scoped_installation_token(42, &["central"])
            .await
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut log = String::new();
    std::fs::File::open(&prism.log)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let violations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Violation: request") || l.contains("Request did not pass"))
        .collect();
    assert!(
        violations.is_empty(),
        "{description}: requests GitHub's description rejects:\n{}",
        violations.join("\n")
    );
    let calls = github.calls();
    assert_eq!(calls.len(), 9, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.status.is_some_and(|s| (200..300).contains(&s))),
        "{calls:?}"
    );
}

#[test]
fn org_endpoints_match_the_api_github_com_description() {
    org_endpoints_run("api.github.com.json", "");
}

#[test]
fn org_endpoints_match_the_github_enterprise_server_description_under_api_v3() {
    org_endpoints_run("ghes-3.19.json", "/api/v3");
}
