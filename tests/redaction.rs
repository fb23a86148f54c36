//! No secret is stored (issue 26, item 4): a metadata URL's user information
//! (`https://user:pw@host/…`) is used to fetch, and appears nowhere keyroll writes or prints —
//! the saved plan, keyroll.lock, the snapshot's manifest (an uploaded artifact), and every
//! report — while a saved plan made from such a URL still applies. The organisation commands'
//! runner files (`--write-outputs`) are redacted as the main commands' are.
//!
//! Through the binary, against metadata served by a local server that insists on the
//! credentials (so a fetch without them would fail).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-11-23T12:00:00Z";
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo");
const PASSWORD: &str = "s3cr3t-pw-4711";
const USER: &str = "keyroll-reader";

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .args(["--now", NOW])
        .current_dir(dir)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, dest).unwrap();
        }
    }
}

/// Every file below `dir`, with its text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            out.push((path, text));
        }
    }
    out
}

/// The demo repository, its issuer's metadata named by `url`.
fn demo_repo(dir: &Path, url: &str) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    copy_tree(Path::new(DEMO), &repo);
    let config = repo.join("keyroll.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "metadata = [\"metadata/FederationMetadata.xml\"]",
        &format!("metadata = [\"{url}\"]"),
    );
    assert!(text.contains(url));
    std::fs::write(config, text).unwrap();
    repo
}

/// `user:password@` inserted after the scheme of the server's base URL.
fn with_userinfo(base: &str, rest: &str) -> String {
    let (scheme, host) = base.split_once("://").unwrap();
    format!("{scheme}://{USER}:{PASSWORD}@{host}{rest}")
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} holds the URL's password:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metadata_urls_password_is_used_to_fetch_and_never_stored_or_printed() {
    let server = MockServer::start().await;
    let basic = format!(
        "Basic {}",
        base64_encode(format!("{USER}:{PASSWORD}").as_bytes())
    );
    // Only with the credentials: a fetch that dropped them would get the 401 below.
    Mock::given(method("GET"))
        .and(path("/md.xml"))
        .and(header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(
            std::fs::read(format!("{DEMO}/metadata/FederationMetadata.xml")).unwrap(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let url = with_userinfo(&server.uri(), "/md.xml");
    let shown = url.replace(&format!("{USER}:{PASSWORD}"), "***");
    let dir = tempfile::tempdir().unwrap();
    let repo = demo_repo(dir.path(), &url);

    // Every report: text and JSON plans, the pull requests keyroll would open.
    for args in [
        vec!["plan", "--allow-http"],
        vec!["plan", "--allow-http", "--format", "json"],
        vec!["pr", "--dry-run", "--allow-http"],
        vec!["pr", "--dry-run", "--allow-http", "--format", "json"],
        vec!["scan", "--config", "keyroll.toml", "--allow-http"],
    ] {
        let out = keyroll(&repo, &args);
        let said = text(&out);
        assert_clean(&format!("{args:?}"), &said);
        // scan names no source when the metadata loads; the others show it redacted.
        if args[0] != "scan" {
            assert!(said.contains(&shown), "{args:?} shows the source: {said}");
            // "HTTP 401", the fetch's refusal; not "401" alone, which the mock's port can hold
            // (CI once ran it on port 42401).
            assert!(
                !said.contains("HTTP 401"),
                "{args:?} fetched with the credentials: {said}"
            );
        }
    }

    // The saved plan: the source without its password; applying it re-reads the metadata
    // (with the credentials) and finds the plan unchanged.
    let out = keyroll(&repo, &["plan", "--allow-http", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let saved = std::fs::read_to_string(repo.join("plan.json")).unwrap();
    assert_clean("plan.json", &saved);
    assert!(saved.contains(&shown), "{saved}");
    let out = keyroll(&repo, &["apply", "--allow-http", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_clean("apply", &text(&out));
    assert!(
        std::fs::read_to_string(repo.join("src/Contoso.Web/Web.config"))
            .unwrap()
            .contains("81CB9F506E54F19731D89F749FBBCE8FE6476295"),
        "the saved plan was applied"
    );

    // A snapshot: its manifest (an artifact) keeps no password; a run reading the snapshot
    // with the URL as keyroll.toml writes it (password included) finds the document.
    let out = keyroll(&repo, &["snapshot", "--allow-http", "--out", "../snap"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_clean("snapshot", &text(&out));
    let snap = dir.path().join("snap");
    let manifest = std::fs::read_to_string(snap.join("manifest.json")).unwrap();
    assert!(manifest.contains(&shown), "{manifest}");
    let out = keyroll(
        &repo,
        &[
            "plan",
            "--format",
            "json",
            "--snapshot",
            snap.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_clean("plan from the snapshot", &text(&out));

    // Nothing keyroll left anywhere holds it: keyroll.lock, the plan, the snapshot.
    for (file, content) in files(dir.path()) {
        if file.ends_with("keyroll.toml") {
            continue;
        }
        assert_clean(&file.display().to_string(), &content);
    }

    // A source that fails: its error names it redacted, in the report and in the manifest.
    let failing = demo_repo(
        &dir.path().join("failing"),
        &with_userinfo(&server.uri(), "/gone.xml"),
    );
    for args in [
        vec!["plan", "--allow-http", "--retries", "0"],
        vec![
            "plan",
            "--allow-http",
            "--retries",
            "0",
            "--out",
            "plan.json",
        ],
        vec![
            "snapshot",
            "--allow-http",
            "--retries",
            "0",
            "--out",
            "snap",
        ],
    ] {
        let out = keyroll(&failing, &args);
        let said = text(&out);
        assert_clean(&format!("{args:?}"), &said);
        assert!(said.contains("HTTP 401"), "{args:?}: {said}");
    }
    for (file, content) in files(&failing) {
        if file.ends_with("keyroll.toml") {
            continue;
        }
        assert_clean(&file.display().to_string(), &content);
    }
    let manifest = std::fs::read_to_string(failing.join("snap/manifest.json")).unwrap();
    assert!(manifest.contains("401"), "{manifest}");
}

/// `discover --write-outputs` appends to `$GITHUB_OUTPUT` redacted, as `pr` does: an API
/// that echoes the token (here as a repository's name) does not get it written there.
#[tokio::test(flavor = "multi_thread")]
async fn org_commands_runner_files_are_redacted() {
    const TOKEN: &str = "ghs_echoedtoken4711";
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/contoso/repos"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!([{
                "full_name": format!("contoso/{TOKEN}"),
                "name": TOKEN,
                "default_branch": "main",
            }])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/repos/contoso/{TOKEN}/contents/keyroll.toml"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"type": "file"})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("github-output");
    let out = keyroll(
        dir.path(),
        &[
            "discover",
            "--org",
            "contoso",
            "--api-url",
            &server.uri(),
            "--token",
            TOKEN,
            "--write-outputs",
            outputs.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(TOKEN), "{}", text(&out));
    let written = std::fs::read_to_string(&outputs).unwrap();
    assert!(written.contains("repositories"), "{written}");
    assert!(written.contains("contoso/***"), "{written}");
    assert!(!written.contains(TOKEN), "{written}");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
