//! The dashboard (issue 26, items 4 and 5) renders other jobs' files: a pr.json's URL is
//! linked only when it is on the GitHub the run is on (github.com, or `GITHUB_SERVER_URL`'s
//! host), never on a look-alike host; anything token-like in a job's stderr or pr.json
//! (`Bearer …`, `ghs_…`, `github_pat_…`, an `Authorization:` header) is redacted in the issue
//! body, the job summary and the printed report.

use std::path::Path;
use std::process::{Command, Output};

const NOW: &str = "2026-11-23T12:00:00Z";

fn job(
    results: &Path,
    folder: &str,
    repository: &str,
    pr: Option<serde_json::Value>,
) -> std::path::PathBuf {
    let dir = results.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("repository.txt"), format!("{repository}\n")).unwrap();
    if let Some(pr) = pr {
        std::fs::write(dir.join("pr.json"), pr.to_string()).unwrap();
        std::fs::write(dir.join("exit-code.txt"), "0\n").unwrap();
    }
    dir
}

/// A pr.json with one issuer whose PR is `number` at `url`, one key to add.
fn opened(number: u64, url: &str) -> serde_json::Value {
    serde_json::json!({
        "schema": "keyroll.pr/v1",
        "issuers": [{
            "issuer": "adfs", "operation": "created", "number": number, "url": url,
            "errors": 0, "keys": [{"action": "add"}],
        }],
    })
}

fn results() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path();
    job(
        results,
        "a",
        "o/a",
        Some(opened(7, "https://evil.example/o/a/pull/7")),
    );
    job(
        results,
        "b",
        "o/b",
        Some(opened(8, "https://github.com/o/b/pull/8")),
    );
    job(
        results,
        "c",
        "o/c",
        Some(opened(9, "https://github.com.evil.example/o/c/pull/9")),
    );
    job(
        results,
        "d",
        "o/d",
        Some(opened(10, "https://github.com@evil.example/o/d/pull/10")),
    );
    job(
        results,
        "g",
        "o/g",
        Some(opened(11, "https://GHE.example.com/o/g/pull/11")),
    );
    // A job that failed, its stderr holding its token as a tool echoed it.
    let failed = job(results, "e", "o/e", None);
    std::fs::write(failed.join("exit-code.txt"), "1\n").unwrap();
    std::fs::write(
        failed.join("stderr.txt"),
        "curl: > Authorization: Bearer ghs_16C7e42F292c6912E7710c838347Ae178B4a\n\
         error: GitHub answered 401 to Authorization: token ghp_abcdefABCDEF0123456789 (Bearer ghs_16C7e42F292c6912E7710c838347Ae178B4a)\n",
    )
    .unwrap();
    // An issuer that failed, its detail quoting a fine-grained token.
    job(
        results,
        "f",
        "o/f",
        Some(serde_json::json!({
            "schema": "keyroll.pr/v1",
            "issuers": [{
                "issuer": "adfs", "operation": "failed", "errors": 1, "keys": [],
                "detail": "push refused for https://x-access-token:github_pat_11ABCDEFG0123456789_abcdefghijklmnop@github.com/o/f.git with github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            }],
        })),
    );
    dir
}

fn dashboard(results: &Path, summary: &Path, server: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .args(["dashboard", "--no-issue", "--now", NOW, "--results"])
        .arg(results)
        .arg("--write-summary")
        .arg(summary)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_RUN_ID")
        .env_remove("GITHUB_API_URL");
    if let Some(server) = server {
        command
            .env("GITHUB_SERVER_URL", server)
            .env("GITHUB_REPOSITORY", "o/central")
            .env("GITHUB_RUN_ID", "5");
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

fn assert_no_token(what: &str, text: &str) {
    for secret in [
        "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghp_abcdefABCDEF0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    ] {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

#[test]
fn pull_requests_are_linked_only_on_github_com_when_the_run_names_no_other() {
    let dir = results();
    let summary = dir.path().join("summary.md");
    let out = dashboard(dir.path(), &summary, None);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("[#8](https://github.com/o/b/pull/8)"),
        "{body}"
    );
    // Other hosts, look-alikes included, are named as text in a code span: no link.
    for (number, url) in [
        (7, "https://evil.example/o/a/pull/7"),
        (9, "https://github.com.evil.example/o/c/pull/9"),
        (11, "https://GHE.example.com/o/g/pull/11"),
    ] {
        assert!(
            body.contains(&format!("#{number} (`{url}`)")),
            "{url}: {body}"
        );
        assert!(
            !body.contains(&format!("]({url}")),
            "{url} is linked: {body}"
        );
    }
    // User information before the host: not github.com (and shown redacted, as any URL's).
    assert!(
        body.contains("#10 (`https://***@evil.example/o/d/pull/10`)"),
        "{body}"
    );
    assert!(!body.contains("](https://evil") && !body.contains("](https://github.com."));
    assert!(!body.contains("](https://***@") && !body.contains("](https://github.com@"));
    assert_no_token("the dashboard body", &body);
    assert_no_token(
        "the job summary",
        &std::fs::read_to_string(&summary).unwrap(),
    );
    // The failure is still told, its credentials replaced.
    assert!(body.contains("Authorization: token ***"), "{body}");
    assert!(body.contains("Bearer ***"), "{body}");
    assert!(
        body.contains("https://***@github.com/o/f.git with ***"),
        "{body}"
    );
}

#[test]
fn on_github_enterprise_server_only_its_host_is_linked() {
    let dir = results();
    let summary = dir.path().join("summary.md");
    let out = dashboard(dir.path(), &summary, Some("https://ghe.example.com"));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("[#11](https://GHE.example.com/o/g/pull/11)"),
        "{body}"
    );
    assert!(
        body.contains("#8 (`https://github.com/o/b/pull/8`)"),
        "{body}"
    );
    assert!(
        body.contains("by [this run](https://ghe.example.com/o/central/actions/runs/5)"),
        "{body}"
    );
    assert_no_token("the dashboard body", &body);
}

#[test]
fn the_published_issue_body_is_redacted_too() {
    // A dry run against no server: the report printed holds the body that would be sent.
    let dir = results();
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "dashboard",
            "--dry-run",
            "--repo",
            "o/central",
            "--now",
            NOW,
        ])
        .arg("--results")
        .arg(dir.path())
        .args(["--api-url", "http://127.0.0.1:9"])
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_SERVER_URL")
        .env("KEYROLL_TEST_FAST_RETRY", "1")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_token("dashboard --dry-run", &all);
}

/// Outside Actions (no `GITHUB_SERVER_URL`), a GitHub Enterprise Server's API URL names the
/// server whose pull requests are linked: `https://HOST/api/v3` links `https://HOST/...`.
#[test]
fn outside_actions_the_api_url_names_the_server_linked() {
    let dir = results();
    let summary = dir.path().join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["dashboard", "--no-issue", "--now", NOW, "--results"])
        .arg(dir.path())
        .arg("--write-summary")
        .arg(&summary)
        .args(["--api-url", "https://ghe.example.com/api/v3"])
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_RUN_ID")
        .env_remove("GITHUB_API_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("[#11](https://GHE.example.com/o/g/pull/11)"),
        "{body}"
    );
    assert!(
        body.contains("#8 (`https://github.com/o/b/pull/8`)"),
        "{body}"
    );
}
