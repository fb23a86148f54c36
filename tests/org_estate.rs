//! A simulated organisation of 1,000 repositories behind a local fake GitHub: discovery's
//! output and API calls, the per-repository `keyroll pr --snapshot` runs' API budget, and the
//! dashboard issue (created once, then updated in place). Prints the figures recorded in
//! bench/RESULTS.md (`cargo test --test org_estate -- --nocapture`).

mod common;
use common::git;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const NOW: &str = "2026-11-23T12:00:00Z";
const ORG: &str = "contoso";
const REPOS: usize = 1000;
const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/demo/metadata/FederationMetadata.xml"
);

/// The estate's rules, shared by the fake and the assertions.
fn archived(i: usize) -> bool {
    i % 10 == 3
}
fn fork(i: usize) -> bool {
    i % 25 == 7
}
fn disabled(i: usize) -> bool {
    i % 100 == 55
}
fn has_config(i: usize) -> bool {
    i.is_multiple_of(3)
}
/// Its contents look-up fails with 500 every time (after the client's retries).
fn lookup_fails(i: usize) -> bool {
    i.is_multiple_of(97)
}
fn name(i: usize) -> String {
    format!("app-{i:04}")
}

#[derive(Default)]
struct State {
    /// The dashboard issue's body, once created.
    issue: Mutex<Option<String>>,
}

#[derive(Clone, Default)]
struct Fake(Arc<State>);

fn index_of(repo: &str) -> Option<usize> {
    repo.strip_prefix("app-")?.parse().ok()
}

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let query: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        let method = request.method.as_str();
        if path == "/demo.xml" {
            return ResponseTemplate::new(200).set_body_bytes(std::fs::read(DEMO).unwrap());
        }
        if path == "/installation/repositories" {
            let page: usize = query["page"].parse().unwrap();
            let per: usize = query["per_page"].parse().unwrap();
            let repos: Vec<serde_json::Value> = ((page - 1) * per..(page * per).min(REPOS))
                .map(|i| {
                    serde_json::json!({
                        "full_name": format!("{ORG}/{}", name(i)),
                        "name": name(i),
                        "archived": archived(i),
                        "disabled": disabled(i),
                        "fork": fork(i),
                        "default_branch": "main",
                    })
                })
                .collect();
            return ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "total_count": REPOS, "repositories": repos }));
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["repos", _, repo, "contents", "keyroll.toml"]) => {
                let i = index_of(repo).unwrap();
                if lookup_fails(i) {
                    ResponseTemplate::new(500)
                        .set_body_json(serde_json::json!({"message": "Server Error"}))
                } else if has_config(i) {
                    ResponseTemplate::new(200).set_body_json(serde_json::json!({
                        "type": "file", "name": "keyroll.toml", "path": "keyroll.toml"
                    }))
                } else {
                    ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"}))
                }
            }
            ("GET", ["repos", _, _, "pulls"]) => {
                ResponseTemplate::new(200).set_body_json(serde_json::json!([]))
            }
            ("POST", ["repos", o, r, "pulls"]) => {
                ResponseTemplate::new(201).set_body_json(serde_json::json!({
                    "number": 7, "html_url": format!("https://github.example/{o}/{r}/pull/7"),
                    "state": "open", "title": "t", "head": {"ref": "keyroll/contoso-adfs", "sha": "0"}
                }))
            }
            ("POST", ["repos", _, _, "issues", _, _])
            | ("POST", ["repos", _, _, "pulls", _, "requested_reviewers"]) => {
                ResponseTemplate::new(200).set_body_json(serde_json::json!([]))
            }
            ("GET", ["repos", _, _, "issues"]) | ("GET", ["search", "issues"]) => {
                let issue = self.0.issue.lock().unwrap().clone();
                let list: Vec<serde_json::Value> = issue
                    .map(|body| {
                        serde_json::json!({"number": 1, "html_url": "https://github.example/contoso/central/issues/1", "state": "open", "body": body})
                    })
                    .into_iter()
                    .collect();
                if parts[0] == "search" {
                    ResponseTemplate::new(200)
                        .set_body_json(serde_json::json!({"total_count": list.len(), "items": list}))
                } else {
                    ResponseTemplate::new(200).set_body_json(list)
                }
            }
            ("POST", ["repos", _, _, "issues"]) | ("PATCH", ["repos", _, _, "issues", "1"]) => {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                *self.0.issue.lock().unwrap() = Some(body["body"].as_str().unwrap().to_string());
                ResponseTemplate::new(if method == "POST" { 201 } else { 200 }).set_body_json(
                    serde_json::json!({"number": 1, "html_url": "https://github.example/contoso/central/issues/1", "state": "open", "body": body["body"]}),
                )
            }
            _ => ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})),
        }
    }
}

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_REPOSITORY")
        .env("KEYROLL_TEST_FAST_RETRY", "1")
        .output()
        .unwrap()
}

async fn requests(server: &MockServer) -> Vec<(String, String)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (r.method.to_string(), r.url.path().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organisation_of_a_thousand_repositories() {
    let fake = Fake::default();
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let api = server.uri();
    let dir = tempfile::tempdir().unwrap();

    // Phase 1: snapshot.
    std::fs::write(
        dir.path().join("central.toml"),
        format!("[[issuer]]\nname = \"contoso-adfs\"\nmetadata = [\"{api}/demo.xml\"]\n"),
    )
    .unwrap();
    let started = Instant::now();
    let out = keyroll(
        dir.path(),
        &[
            "snapshot",
            "--config",
            "central.toml",
            "--out",
            "snap",
            "--allow-http",
            "--now",
            NOW,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot_time = started.elapsed();
    let after_snapshot = requests(&server).await.len();
    assert_eq!(after_snapshot, 1, "the identity provider is read once");

    // Phase 2: discover.
    let started = Instant::now();
    let outputs = dir.path().join("github-output");
    let out = keyroll(
        dir.path(),
        &[
            "discover",
            "--api-url",
            &api,
            "--token",
            "ghs_installation",
            "--write-outputs",
            outputs.to_str().unwrap(),
        ],
    );
    let discover_time = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("discovery.json"), &out.stdout).unwrap();
    let discovery: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped_rule = |i: usize| archived(i) || disabled(i) || fork(i);
    let expected: Vec<String> = (0..REPOS)
        .filter(|&i| !skipped_rule(i) && !lookup_fails(i) && has_config(i))
        .map(|i| format!("{ORG}/{}", name(i)))
        .collect();
    let got: Vec<&str> = discovery["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(discovery["listed"], REPOS);
    let skipped = (0..REPOS).filter(|&i| skipped_rule(i)).count();
    assert_eq!(discovery["skipped"].as_array().unwrap().len(), skipped);
    assert!(
        discovery["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reason"] == "archived")
    );
    assert!(
        discovery["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reason"] == "fork")
    );
    assert!(
        discovery["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reason"] == "disabled")
    );
    let failing = (0..REPOS)
        .filter(|&i| !skipped_rule(i) && lookup_fails(i))
        .count();
    assert_eq!(discovery["failed"].as_array().unwrap().len(), failing);
    assert!(
        discovery["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{}",
        discovery["failed"][0]
    );
    // Batches of at most 256, in order, covering every repository once.
    let batches = discovery["batches"].as_array().unwrap();
    assert_eq!(batches.len(), expected.len().div_ceil(256));
    assert!(
        batches
            .iter()
            .all(|b| b["include"].as_array().unwrap().len() <= 256)
    );
    let flat: Vec<&str> = batches
        .iter()
        .flat_map(|b| b["include"].as_array().unwrap())
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(flat, expected);
    let first = &batches[0]["include"][0];
    assert_eq!(first["name"], expected[0].split('/').nth(1).unwrap());
    assert_eq!(first["config"], "keyroll.toml");
    let github_output = std::fs::read_to_string(&outputs).unwrap();
    assert!(github_output.contains(&format!("batch-count={}\n", batches.len())));
    let matrix_1 = github_output
        .lines()
        .find_map(|l| l.strip_prefix("matrix-1="))
        .unwrap();
    let matrix_1: serde_json::Value = serde_json::from_str(matrix_1).unwrap();
    assert_eq!(matrix_1["include"], batches[0]["include"]);

    let all = requests(&server).await;
    let discovery_calls = &all[after_snapshot..];
    let pages = discovery_calls
        .iter()
        .filter(|(_, p)| p == "/installation/repositories")
        .count();
    let contents = discovery_calls
        .iter()
        .filter(|(_, p)| p.contains("/contents/"))
        .count();
    assert_eq!(pages, REPOS / 100);
    // One look-up per repository not skipped; a failing one is tried twice (fast retries).
    assert_eq!(contents, REPOS - skipped + failing);
    assert_eq!(discovery["api_calls"]["list"], pages);

    // Phase 3: keyroll pr --snapshot in a few repositories: one already up to date (the
    // budget's "no change" case), one with the rollover pending, one whose keyroll.toml is
    // broken; the rest of the estate's results are the no-change one's, renamed.
    let results = dir.path().join("results");
    let snap = dir.path().join("snap");
    let mut pr_calls = Vec::new();
    let mut pr_times = Vec::new();
    let short = |i: usize| expected[i].split('/').nth(1).unwrap().to_string();
    for (case, repo) in [
        ("current", short(0)),
        ("pending", short(1)),
        ("broken", short(2)),
    ] {
        let root = dir.path().join(&repo);
        let bare = root.join("origin.git");
        let work = root.join("work");
        std::fs::create_dir_all(&root).unwrap();
        git(&root, &["init", "-q", "--bare", "origin.git"]);
        common::copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo"),
            &work,
        );
        let config = work.join("keyroll.toml");
        let mut text = std::fs::read_to_string(&config).unwrap().replace(
            "metadata = [\"metadata/FederationMetadata.xml\"]",
            &format!("metadata = [\"{api}/demo.xml\"]"),
        );
        if case == "broken" {
            text.push_str("\nunknown_key = 1\n");
        }
        std::fs::write(&config, text).unwrap();
        if case == "current" {
            let out = keyroll(
                &work,
                &["apply", "--snapshot", snap.to_str().unwrap(), "--now", NOW],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        git(&work, &["init", "-q"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "repo"]);
        git(&work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
        let before = requests(&server).await.len();
        let started = Instant::now();
        let out = keyroll(
            &work,
            &[
                "pr",
                "--format",
                "json",
                "--snapshot",
                snap.to_str().unwrap(),
                "--now",
                NOW,
                "--api-url",
                &api,
                "--token",
                "ghs_repo",
                "--repo",
                &format!("{ORG}/{repo}"),
                "--remote",
                bare.to_str().unwrap(),
            ],
        );
        pr_times.push(started.elapsed());
        let calls = requests(&server).await.len() - before;
        pr_calls.push((case, calls));
        let folder = results.join(&repo);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("repository.txt"), format!("{ORG}/{repo}\n")).unwrap();
        std::fs::write(folder.join("pr.json"), &out.stdout).unwrap();
        std::fs::write(folder.join("stderr.txt"), &out.stderr).unwrap();
        std::fs::write(
            folder.join("exit-code.txt"),
            out.status.code().unwrap().to_string(),
        )
        .unwrap();
        match case {
            "current" | "pending" => {
                assert!(
                    out.status.success(),
                    "{case}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            }
            _ => assert!(!out.status.success()),
        }
    }
    // The budget: a repository with nothing to change costs one call here (its PR look-up)
    // plus its one look-up during discovery.
    assert_eq!(pr_calls[0], ("current", 1), "{pr_calls:?}");
    // The broken repository fails before any call.
    assert_eq!(pr_calls[2], ("broken", 0), "{pr_calls:?}");
    let current = std::fs::read(results.join(short(0)).join("pr.json")).unwrap();
    for repo in expected.iter().skip(3) {
        let folder = results.join(repo.split('/').nth(1).unwrap());
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("repository.txt"), repo).unwrap();
        let text = String::from_utf8_lossy(&current).replace(&expected[0], repo);
        std::fs::write(folder.join("pr.json"), text).unwrap();
        std::fs::write(folder.join("exit-code.txt"), "0").unwrap();
    }
    // A job that died before keyroll ran (its checkout failed, say).
    let lost = results.join("lost");
    std::fs::create_dir_all(&lost).unwrap();
    std::fs::write(lost.join("repository.txt"), format!("{ORG}/app-0999")).unwrap();

    // Phase 4: the dashboard, twice: created, then updated in place.
    let mut dashboard_calls = Vec::new();
    let mut dashboard_time = std::time::Duration::ZERO;
    for round in 0..2 {
        let before = requests(&server).await.len();
        let started = Instant::now();
        let summary = dir.path().join(format!("summary-{round}.md"));
        let out = keyroll(
            dir.path(),
            &[
                "dashboard",
                "--results",
                results.to_str().unwrap(),
                "--discovery",
                "discovery.json",
                "--repo",
                &format!("{ORG}/central"),
                "--api-url",
                &api,
                "--token",
                "ghs_central",
                "--now",
                NOW,
                "--write-summary",
                summary.to_str().unwrap(),
            ],
        );
        dashboard_time = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let all = requests(&server).await;
        let calls: Vec<String> = all[before..]
            .iter()
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        if round == 0 {
            assert_eq!(report["issue"]["operation"], "created", "{report:#}");
            assert_eq!(
                calls,
                [
                    "GET /repos/contoso/central/issues",
                    "GET /search/issues",
                    "POST /repos/contoso/central/issues"
                ]
            );
        } else {
            assert_eq!(report["issue"]["operation"], "updated", "{report:#}");
            assert_eq!(report["issue"]["number"], 1);
            assert_eq!(
                calls,
                [
                    "GET /repos/contoso/central/issues",
                    "PATCH /repos/contoso/central/issues/1"
                ]
            );
        }
        dashboard_calls.push(calls.len());
    }
    let body = fake.0.issue.lock().unwrap().clone().unwrap();
    assert!(body.starts_with("<!-- keyroll-dashboard -->\n"), "{body}");
    assert!(body.len() < 65_536, "{}", body.len());
    let run = expected.len() + 1;
    assert!(
        body.contains(&format!("{run} repositories run: **2 failed**, 1 with pull requests or pending keys, {} up to date; {} skipped.", run - 3, skipped + failing)),
        "{body}"
    );
    // The failures, with their reasons.
    assert!(body.contains(&format!("| `{}` | `", expected[2])), "{body}");
    assert!(body.contains("unknown_key"), "{body}");
    assert!(
        body.contains("`contoso/app-0999` | `the job produced no keyroll output"),
        "{body}"
    );
    // The pending rollover: its PR, linked, and its key.
    assert!(
        body.contains(&format!(
            "| `{}` | [#7](https://github.example/{}/pull/7) `contoso-adfs` (`created`) | 1 |",
            expected[1], expected[1]
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("| `{ORG}/{}` | `archived` |", name(3))),
        "{body}"
    );
    assert!(
        body.contains(&format!("| `{ORG}/{}` | `discovery failed: ", name(97))),
        "{body}"
    );
    let summary = std::fs::read_to_string(dir.path().join("summary-1.md")).unwrap();
    assert!(summary.contains("<!-- keyroll-dashboard -->"));

    println!(
        "ESTATE repositories={REPOS} with_config={} skipped={skipped} lookup_failed={failing} batches={}",
        expected.len(),
        batches.len()
    );
    println!("ESTATE snapshot: calls=1 (metadata) time={snapshot_time:?}");
    println!("ESTATE discover: list_pages={pages} contents={contents} time={discover_time:?}");
    println!("ESTATE pr: calls={pr_calls:?} times={pr_times:?}");
    println!(
        "ESTATE dashboard: calls={dashboard_calls:?} time={dashboard_time:?} body_chars={}",
        body.len()
    );
    println!(
        "ESTATE BODY START\n{}\nESTATE BODY END",
        body.lines().take(30).collect::<Vec<_>>().join("\n")
    );
}
