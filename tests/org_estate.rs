//! A simulated organisation of 1,000 repositories behind a local fake GitHub: discovery's
//! output and API calls, the per-repository `keyroll pr --snapshot` runs' API budget, and the
//! dashboard issue (created once, then updated in place). Prints the figures recorded in
//! bench/RESULTS.md (`cargo test --test org_estate -- --nocapture`).
//!
//! Onboarding: some repositories hold WIF configs and no keyroll.toml; `discover
//! --onboarding` lists exactly them from the fake's code search (decoys: hits in build
//! output, in configured, archived and failing repositories), waits out search's rate limit,
//! says so when code search is refused; `keyroll onboard` opens one pull request and never a
//! second.

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
/// It holds a WIF config (found by code search).
fn has_wif(i: usize) -> bool {
    i % 7 == 1
}
/// Its only WIF config is build output (`bin/`): code search finds it, the scanner would not.
fn wif_only_in_bin(i: usize) -> bool {
    i % 7 == 2
}
/// The repositories `discover --onboarding` must list: reachable, looked up, no keyroll.toml,
/// a WIF config outside build output.
fn to_onboard(i: usize) -> bool {
    let skipped = archived(i) || disabled(i) || fork(i);
    let configured_or_unknown = lookup_fails(i) || has_config(i);
    has_wif(i) && !skipped && !configured_or_unknown
}

/// How the fake's code search answers.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Search {
    #[default]
    Allowed,
    /// The first call is rate limited (403, `x-ratelimit-remaining: 0`), then allowed.
    RateLimitedOnce,
    /// 403, as for an App installation token that may not search code.
    Refused,
}

#[derive(Default)]
struct State {
    /// The dashboard issue's body, once created.
    issue: Mutex<Option<String>>,
    search: Mutex<Search>,
    /// Search queries received (`q`).
    queries: Mutex<Vec<String>>,
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
                        "owner": {"login": ORG, "type": "Organization"},
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
        if path == "/search/code" {
            return self.search(&query);
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
                        serde_json::json!({"number": 1, "html_url": "https://github.example/contoso/central/issues/1", "state": "open", "body": body, "user": {"login": "keyroll[bot]", "type": "Bot"}, "author_association": "NONE"})
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

impl Fake {
    /// `GET /search/code`: every `*.config` holding `issuerNameRegistry` across the estate,
    /// whatever the repository's state (code search knows nothing of keyroll.toml or of
    /// archiving); 100 a page.
    fn search(&self, query: &std::collections::HashMap<String, String>) -> ResponseTemplate {
        let q = query["q"].clone();
        self.0.queries.lock().unwrap().push(q.clone());
        let mut mode = self.0.search.lock().unwrap();
        match *mode {
            Search::Refused => {
                return ResponseTemplate::new(403).set_body_json(serde_json::json!({
                    "message": "Resource not accessible by integration"
                }));
            }
            Search::RateLimitedOnce => {
                *mode = Search::Allowed;
                let reset = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                return ResponseTemplate::new(403)
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                    .set_body_json(serde_json::json!({"message": "API rate limit exceeded"}));
            }
            Search::Allowed => {}
        }
        drop(mode);
        let mut hits = Vec::new();
        for i in 0..REPOS {
            let full_name = format!("{ORG}/{}", name(i));
            if has_wif(i) {
                hits.push((full_name.clone(), "src/Web/Web.config".to_string()));
                if i % 2 == 1 {
                    hits.push((full_name.clone(), "src/Api/identity.config".to_string()));
                }
            }
            if wif_only_in_bin(i) {
                hits.push((full_name, "src/Web/bin/Release/Web.config".to_string()));
            }
        }
        let page: usize = query["page"].parse().unwrap();
        let per: usize = query["per_page"].parse().unwrap();
        let items: Vec<serde_json::Value> = hits
            .iter()
            .skip((page - 1) * per)
            .take(per)
            .map(|(repo, path)| {
                serde_json::json!({
                    "name": path.rsplit('/').next().unwrap(), "path": path,
                    "repository": {"full_name": repo}
                })
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total_count": hits.len(), "incomplete_results": false, "items": items
        }))
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
        // The run pushes with git to its bare origin (the fake GitHub has no git/
        // endpoints); `auto` would commit through the API with this installation token.
        text.push_str("commits = \"git\"\n");
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
    // The pending rollover: its PR and its key. The fake answers with URLs on
    // github.example, which is not the GitHub this run is on (no GITHUB_SERVER_URL: github.com),
    // so the PR is named, not linked (issue 26, item 5; tests/dashboard_links.rs links it).
    assert!(
        body.contains(&format!(
            "| `{}` | #7 (`https://github.example/{}/pull/7`) `contoso-adfs` (`created`) | 1 |",
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

async fn estate() -> (Fake, MockServer) {
    let fake = Fake::default();
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (fake, server)
}

fn discover_onboarding(dir: &Path, api: &str, outputs: &Path) -> Output {
    keyroll(
        dir,
        &[
            "discover",
            "--onboarding",
            "--api-url",
            api,
            "--token",
            "ghs_installation",
            "--write-outputs",
            outputs.to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_onboarding_lists_exactly_the_repositories_with_wif_configs_and_no_keyroll_toml() {
    let (fake, server) = estate().await;
    // Search's own rate limit answers the first call: waited out, not reported as a refusal.
    *fake.0.search.lock().unwrap() = Search::RateLimitedOnce;
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github-output");
    let out = discover_onboarding(dir.path(), &server.uri(), &outputs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let discovery: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Vec<String> = (0..REPOS)
        .filter(|&i| to_onboard(i))
        .map(|i| format!("{ORG}/{}", name(i)))
        .collect();
    assert!(expected.len() > 50, "{}", expected.len());
    let got: Vec<&str> = discovery["onboarding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    // The files found, build output left out; where keyroll.toml would go.
    let app1 = &discovery["onboarding"][0];
    assert_eq!(app1["repository"], format!("{ORG}/{}", name(1)));
    assert_eq!(
        app1["files"],
        serde_json::json!(["src/Api/identity.config", "src/Web/Web.config"])
    );
    assert_eq!(app1["config"], "keyroll.toml");
    assert_eq!(app1["name"], name(1));
    let search = &discovery["onboarding_search"];
    assert_eq!(search["complete"], true, "{search}");
    assert_eq!(search["note"], serde_json::Value::Null);
    // One query, from the rules; its pages, plus the one rate-limited attempt.
    let query = format!("issuerNameRegistry extension:config org:{ORG}");
    assert_eq!(search["queries"], serde_json::json!([query]));
    let hits = (0..REPOS)
        .map(|i| {
            usize::from(has_wif(i))
                + usize::from(has_wif(i) && i % 2 == 1)
                + usize::from(wif_only_in_bin(i))
        })
        .sum::<usize>();
    let pages = hits.div_ceil(100);
    assert_eq!(discovery["api_calls"]["search"], pages);
    let sent = fake.0.queries.lock().unwrap().clone();
    assert_eq!(sent.len(), pages + 1, "{sent:?}");
    assert!(sent.iter().all(|q| *q == query), "{sent:?}");
    // The matrix part is what discover without --onboarding gives.
    assert!(
        discovery["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| index_of(r["name"].as_str().unwrap()).is_some_and(has_config))
    );
    // The workflow's outputs: the onboarding matrix beside the batches.
    let github_output = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        github_output.contains(&format!("onboarding-count={}\n", expected.len())),
        "{github_output}"
    );
    let matrix: serde_json::Value = serde_json::from_str(
        github_output
            .lines()
            .find_map(|l| l.strip_prefix("onboarding-matrix="))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(matrix["include"], discovery["onboarding"]);
    assert!(github_output.contains("\nmatrix-1="), "{github_output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn code_search_refused_is_said_and_the_list_is_not_called_complete() {
    let (fake, server) = estate().await;
    *fake.0.search.lock().unwrap() = Search::Refused;
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github-output");
    let out = discover_onboarding(dir.path(), &server.uri(), &outputs);
    // Exit 0: discovery's matrix is whole and the estate's run goes on; the onboarding
    // list is what is missing, and every reader is told.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the onboarding list is not complete: query \"issuerNameRegistry extension:config org:contoso\": GitHub refused code search for this token (403)"),
        "{stderr}"
    );
    let discovery: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let search = &discovery["onboarding_search"];
    assert_eq!(search["complete"], false);
    let note = search["note"].as_str().unwrap();
    assert!(note.contains("App installation tokens"), "{note}");
    assert!(
        note.contains("Resource not accessible by integration"),
        "{note}"
    );
    assert_eq!(discovery["onboarding"], serde_json::json!([]));
    // A refusal is not retried.
    assert_eq!(fake.0.queries.lock().unwrap().len(), 1);
    assert_eq!(
        discovery["repositories"].as_array().unwrap().len(),
        (0..REPOS)
            .filter(
                |&i| !(archived(i) || disabled(i) || fork(i) || lookup_fails(i)) && has_config(i)
            )
            .count()
    );
    let github_output = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        github_output.contains("onboarding-count=0\n"),
        "{github_output}"
    );
}

/// Pull requests of one repository, as GitHub keeps them: listed by head, created, updated.
#[derive(Clone, Default)]
struct Pulls(Arc<Mutex<Vec<serde_json::Value>>>);

impl Respond for Pulls {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let method = request.method.as_str();
        if path == "/demo.xml" {
            return ResponseTemplate::new(200).set_body_bytes(std::fs::read(DEMO).unwrap());
        }
        let mut pulls = self.0.lock().unwrap();
        match (method, path) {
            ("GET", "/repos/contoso/app-0001/pulls") => {
                let head = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "head")
                    .map(|(_, v)| v.into_owned())
                    .unwrap();
                let list: Vec<&serde_json::Value> = pulls
                    .iter()
                    .filter(|p| format!("contoso:{}", p["head"]["ref"].as_str().unwrap()) == head)
                    .collect();
                ResponseTemplate::new(200).set_body_json(list)
            }
            ("POST", "/repos/contoso/app-0001/pulls") => {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                let number = pulls.len() as u64 + 1;
                let pr = serde_json::json!({
                    "number": number,
                    "html_url": format!("https://github.example/contoso/app-0001/pull/{number}"),
                    "state": "open", "merged_at": null, "title": body["title"], "body": body["body"],
                    "base": body["base"], "head": {"ref": body["head"], "sha": "0"}
                });
                pulls.push(pr.clone());
                ResponseTemplate::new(201).set_body_json(pr)
            }
            ("PATCH", p) if p.starts_with("/repos/contoso/app-0001/pulls/") => {
                let number: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                let pr = pulls.iter_mut().find(|p| p["number"] == number).unwrap();
                for key in ["title", "body", "state"] {
                    if !body[key].is_null() {
                        pr[key] = body[key].clone();
                    }
                }
                ResponseTemplate::new(200).set_body_json(pr.clone())
            }
            _ => ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"message": "Not Found"})),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_onboarding_pull_request_is_opened_once_and_never_reopened() {
    let pulls = Pulls::default();
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(pulls.clone())
        .mount(&server)
        .await;
    let api = server.uri();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("central.toml"),
        format!("[[issuer]]\nname = \"contoso-adfs\"\nmetadata = [\"{api}/demo.xml\"]\n"),
    )
    .unwrap();
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
    let snap = dir.path().join("snap");

    // A repository with the demo's configs and no keyroll.toml, its origin a bare repository.
    let bare = dir.path().join("origin.git");
    let work = dir.path().join("work");
    git(dir.path(), &["init", "-q", "--bare", "origin.git"]);
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/src"),
        &work.join("src"),
    );
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "app"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);

    let onboard = |extra: &[&str]| {
        let mut args = vec![
            "onboard",
            "--repo",
            "contoso/app-0001",
            "--snapshot",
            snap.to_str().unwrap(),
            "--api-url",
            &api,
            "--token",
            "ghs_repo",
            "--remote",
            bare.to_str().unwrap(),
            "--format",
            "json",
        ];
        if !extra.contains(&"--now") {
            args.extend(["--now", NOW]);
        }
        args.extend_from_slice(extra);
        let out = keyroll(&work, &args);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let calls = |report: &serde_json::Value| -> Vec<String> {
        report["api_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["method"].as_str().unwrap(),
                    c["path"].as_str().unwrap()
                )
            })
            .collect()
    };

    // A dry run shows the pull request and sends no write, pushes nothing.
    let dry = onboard(&["--dry-run"]);
    assert_eq!(dry["operation"], "created", "{dry:#}");
    assert_eq!(
        calls(&dry),
        [
            "GET /repos/contoso/app-0001/pulls?head=contoso%3Akeyroll/onboarding&state=all&per_page=100",
            "POST /repos/contoso/app-0001/pulls"
        ]
    );
    assert_eq!(dry["api_calls"][1]["sent"], false);
    assert_eq!(common::remote_head(&bare, "keyroll/onboarding"), None);
    assert!(pulls.0.lock().unwrap().is_empty());

    let first = onboard(&[]);
    assert_eq!(first["operation"], "created", "{first:#}");
    assert_eq!(first["number"], 1);
    let head = common::remote_head(&bare, "keyroll/onboarding").unwrap();
    assert_eq!(first["head_sha"], head);
    // The branch holds init's keyroll.toml (the issuer and the configs that trust it) and
    // lock, on top of main.
    let toml = git(&bare, &["show", "keyroll/onboarding:keyroll.toml"]);
    assert_eq!(first["settings"].as_str().unwrap().trim_end(), toml);
    assert!(toml.contains("name = \"adfs-contoso-com\""), "{toml}");
    assert!(
        toml.contains(&format!("metadata = [\"{api}/demo.xml\"]")),
        "{toml}"
    );
    assert!(toml.contains("src/Contoso.Web/Web.config"), "{toml}");
    let lock = git(&bare, &["show", "keyroll/onboarding:keyroll.lock"]);
    assert!(lock.contains("name = \"adfs-contoso-com\""), "{lock}");
    assert!(
        lock.contains("sha1 = \"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\""),
        "{lock}"
    );
    assert_eq!(
        git(&bare, &["rev-parse", "keyroll/onboarding^"]),
        git(&bare, &["rev-parse", "main"])
    );
    {
        let pulls = pulls.0.lock().unwrap();
        assert_eq!(pulls.len(), 1);
        assert_eq!(pulls[0]["base"], "main");
        let body = pulls[0]["body"].as_str().unwrap();
        assert!(body.contains("<!-- keyroll-onboarding -->"), "{body}");
        assert!(body.contains("`adfs-contoso-com`"), "{body}");
    }

    // Again, later: the same files, so nothing is pushed or written; the same PR.
    let second = onboard(&["--now", "2026-11-24T12:00:00Z"]);
    assert_eq!(second["operation"], "none", "{second:#}");
    assert_eq!(second["number"], 1);
    assert_eq!(
        common::remote_head(&bare, "keyroll/onboarding").unwrap(),
        head
    );
    assert_eq!(calls(&second).len(), 1, "{second:#}");
    assert_eq!(pulls.0.lock().unwrap().len(), 1);

    // A person closes it without merging: keyroll neither reopens it nor opens another.
    pulls.0.lock().unwrap()[0]["state"] = "closed".into();
    let third = onboard(&[]);
    assert_eq!(third["operation"], "skipped-closed", "{third:#}");
    assert_eq!(third["number"], 1);
    assert!(
        third["detail"]
            .as_str()
            .unwrap()
            .contains("closed without merging")
    );
    assert_eq!(calls(&third).len(), 1, "{third:#}");
    assert_eq!(pulls.0.lock().unwrap().len(), 1);
    assert_eq!(pulls.0.lock().unwrap()[0]["state"], "closed");
    assert_eq!(
        common::remote_head(&bare, "keyroll/onboarding").unwrap(),
        head
    );

    // Once keyroll.toml is on main, there is nothing to onboard and no call is made.
    git(
        &work,
        &["fetch", "-q", bare.to_str().unwrap(), "keyroll/onboarding"],
    );
    git(&work, &["merge", "-q", "--ff-only", "FETCH_HEAD"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
    let done = onboard(&[]);
    assert_eq!(done["operation"], "already-onboarded", "{done:#}");
    assert_eq!(calls(&done).len(), 0);
}

/// Anyone may open an issue on a public repository and paste the dashboard's marker into it.
/// Such an issue, found by the marker search, is not the dashboard: keyroll neither updates it
/// (its opener could then edit what keyroll wrote) nor stops creating its own. One a bot or a
/// collaborator opened is; so is a labelled one (only those with triage rights label), even
/// one GitHub says a `CONTRIBUTOR` opened, as it may say of a member whose membership is private.
#[tokio::test]
async fn an_outsiders_issue_holding_the_marker_is_not_taken_for_the_dashboard() {
    use keyroll::act::dashboard::{MARKER, Published, publish};
    use keyroll::act::github::{GitHub, RepoName, RetryPolicy, Secret};
    use wiremock::matchers::{method, path};

    let marked = |number: u64, login: &str, kind: &str, association: &str| {
        serde_json::json!({
            "number": number, "state": "open",
            "html_url": format!("https://github.example/contoso/central/issues/{number}"),
            "body": format!("{MARKER}\nall up to date"),
            "user": {"login": login, "type": kind}, "author_association": association,
        })
    };
    let outsiders = [
        marked(3, "mallory", "User", "NONE"),
        marked(4, "eve", "User", "CONTRIBUTOR"),
    ];
    let cases = [
        (None, None, Published::Created(Some(9))),
        (
            None,
            Some(marked(5, "github-actions[bot]", "Bot", "NONE")),
            Published::Updated(5),
        ),
        (
            None,
            Some(marked(6, "alice", "User", "MEMBER")),
            Published::Updated(6),
        ),
        (
            Some(marked(7, "bob", "User", "CONTRIBUTOR")),
            None,
            Published::Updated(7),
        ),
    ];
    for (labelled, searched, expected) in cases {
        let server = MockServer::start().await;
        let labelled: Vec<serde_json::Value> = labelled.into_iter().collect();
        let mut found = outsiders.to_vec();
        found.extend(labelled.iter().cloned().chain(searched));
        Mock::given(method("GET"))
            .and(path("/repos/contoso/central/issues"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&labelled))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/search/issues"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"total_count": found.len(), "items": found})),
            )
            .mount(&server)
            .await;
        for (verb, answer) in [("POST", 201), ("PATCH", 200)] {
            Mock::given(method(verb))
                .respond_with(
                    ResponseTemplate::new(answer).set_body_json(serde_json::json!({
                        "number": 9, "state": "open",
                        "html_url": "https://github.example/contoso/central/issues/9",
                    })),
                )
                .mount(&server)
                .await;
        }
        let github = GitHub::new(
            &server.uri(),
            Some(Secret::new("test-token")),
            false,
            RetryPolicy::default(),
        );
        let repo = RepoName::parse("contoso/central").unwrap();
        let body = format!("{MARKER}\nbody");
        let published = publish(
            &github,
            &repo,
            "keyroll dashboard",
            "keyroll-dashboard",
            &body,
        )
        .await
        .unwrap();
        assert_eq!(published, expected);
        let calls: Vec<String> = requests(&server)
            .await
            .into_iter()
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        // The outsiders' issues are never written to.
        for number in [3, 4] {
            let theirs = format!("PATCH /repos/contoso/central/issues/{number}");
            assert!(!calls.contains(&theirs), "{calls:?}");
        }
    }
}
