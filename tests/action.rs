//! The action's two steps (`action/install.sh`, `action/run.sh`) run as scripts on this
//! machine in a simulated Actions environment: a local "release" server with the archive and
//! its SHA256SUMS, `GITHUB_PATH`, `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, and
//! `GITHUB_API_URL` pointing at a mock GitHub.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::git;
use serde_json::json;
use sha2::Digest as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

/// A release `v0.1.0` holding this build's keyroll as the Linux x64 archive; with
/// `tamper`, SHA256SUMS names another digest.
fn release(dir: &Path, tamper: bool) -> PathBuf {
    let root = dir.join("releases");
    let version = root.join("v0.1.0");
    let stage = dir.join("stage");
    std::fs::create_dir_all(&version).unwrap();
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_keyroll"), stage.join("keyroll")).unwrap();
    let archive = version.join("keyroll-x86_64-unknown-linux-gnu.tar.gz");
    let status = Command::new("tar")
        .args([
            "-czf",
            archive.to_str().unwrap(),
            "-C",
            stage.to_str().unwrap(),
            "keyroll",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut digest = hex::encode(sha2::Sha256::digest(std::fs::read(&archive).unwrap()));
    if tamper {
        digest = digest.replace(&digest[..4], "0000");
    }
    std::fs::write(
        version.join("SHA256SUMS"),
        format!("{digest}  keyroll-x86_64-unknown-linux-gnu.tar.gz\n"),
    )
    .unwrap();
    root
}

fn install(dir: &Path, releases_url: &str) -> (std::process::Output, String) {
    let github_path = dir.join("github_path");
    std::fs::write(&github_path, "").unwrap();
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("action/install.sh"))
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", dir.join("runner_temp"))
        .env("GITHUB_PATH", &github_path)
        .env("KEYROLL_VERSION", "0.1.0")
        .env("KEYROLL_RELEASES_URL", releases_url)
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&github_path).unwrap())
}

#[test]
fn install_refuses_an_archive_whose_checksum_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve_files(release(dir.path(), true));
    let (out, github_path) = install(dir.path(), &url);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("::error::") && stdout.contains("refusing to install"),
        "{stdout}"
    );
    assert_eq!(github_path, "", "nothing put on PATH");
}

#[tokio::test(flavor = "multi_thread")]
async fn install_then_run_writes_outputs_summary_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve_files(release(dir.path(), false));
    let (out, github_path) = install(dir.path(), &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified (SHA-256"));
    let bin_dir = PathBuf::from(github_path.trim());
    assert!(bin_dir.join("keyroll").exists(), "{github_path}");

    // The repository the workflow checked out, with its origin.
    let bare = dir.path().join("origin.git");
    let work = dir.path().join("workspace");
    git(dir.path(), &["init", "-q", "--bare", "origin.git"]);
    common::demo_work_repo(&work, &bare);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);

    let github = MockServer::start().await;
    let repo = "/repos/contoso/identity-configs";
    Mock::given(method("GET"))
        .and(path(format!("{repo}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{repo}/pulls")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 7, "html_url": "https://github.com/contoso/identity-configs/pull/7",
            "state": "open", "head": {"ref": "keyroll/contoso-adfs", "sha": "0"}
        })))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&github)
        .await;

    let output_file = dir.path().join("github_output");
    let summary_file = dir.path().join("step_summary");
    let api = github.uri();
    let (run_work, out_f, sum_f) = (work.clone(), output_file.clone(), summary_file.clone());
    let out = tokio::task::spawn_blocking(move || {
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("action/run.sh"))
            .current_dir(&run_work)
            .env("PATH", path)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &out_f)
            .env("GITHUB_STEP_SUMMARY", &sum_f)
            .env("GITHUB_API_URL", &api)
            .env("GITHUB_REPOSITORY", "contoso/identity-configs")
            .env("KEYROLL_CONFIG", "keyroll.toml")
            .env("KEYROLL_TOKEN", "ghs_action_token")
            .env("KEYROLL_DRY_RUN", "false")
            .env("KEYROLL_ARGS", "--now 2026-11-23T12:00:00Z")
            .env_remove("GITHUB_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Annotations from scan: the pasted U+200E is an error on the file and line.
    assert!(
        stdout.contains("::error file=src/Contoso.Api/identity.config,line="),
        "{stdout}"
    );
    // The token was given as a secret input: never echoed.
    assert!(!stdout.contains("ghs_action_token"));

    let outputs = std::fs::read_to_string(&output_file).unwrap();
    assert!(outputs.contains("changed=true\n"), "{outputs}");
    assert!(outputs.contains("pull-request-numbers=7\n"), "{outputs}");
    assert!(
        outputs.contains("pull-request-urls=https://github.com/contoso/identity-configs/pull/7\n")
    );
    let operations = outputs
        .lines()
        .find_map(|l| l.strip_prefix("operations="))
        .unwrap();
    let operations: serde_json::Value = serde_json::from_str(operations).unwrap();
    assert_eq!(operations[0]["issuer"], "contoso-adfs");
    assert_eq!(operations[0]["operation"], "created");
    assert_eq!(operations[0]["branch"], "keyroll/contoso-adfs");

    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        summary.contains(
            "| contoso-adfs | created | [#7](https://github.com/contoso/identity-configs/pull/7) |"
        ),
        "{summary}"
    );
    assert!(summary.contains("`81CB9F506E54F19731D89F749FBBCE8FE6476295`"));
    // The current key expires 2026-12-13, within 30 days: highlighted.
    assert!(summary.contains("⚠️ **expiring**"), "{summary}");
}
