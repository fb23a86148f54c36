//! The secret and transport rules at the command line, outside the Action (tests/action.rs
//! checks them through action.yml): empty environment values, URL passwords in fetch errors,
//! the overall --timeout deadline, and tokens kept off plain http.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn keyroll(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("GITHUB_TOKEN")
        .env_remove("KEYROLL_APP_ID")
        .env_remove("KEYROLL_APP_PRIVATE_KEY")
        .env_remove("GITHUB_ACTIONS");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const DEMO: [&str; 6] = [
    "pr",
    "--dry-run",
    "--config",
    "examples/demo/keyroll.toml",
    "--now",
    "2026-11-23T12:00:00Z",
];

#[test]
fn empty_credentials_in_the_environment_count_as_unset() {
    // Set but empty, as `${{ secrets.MISSING }}` leaves them: no App, no token.
    let out = keyroll(
        &DEMO,
        &[
            ("KEYROLL_APP_ID", ""),
            ("KEYROLL_APP_PRIVATE_KEY", ""),
            ("GITHUB_TOKEN", ""),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // An App id with an empty key is an App id alone: clap's "requires" names the missing key.
    let out = keyroll(
        &DEMO,
        &[("KEYROLL_APP_ID", "12345"), ("KEYROLL_APP_PRIVATE_KEY", "")],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("--app-private-key"), "{}", text(&out));
}

#[test]
fn a_key_that_is_not_pem_is_refused_without_being_quoted() {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github-app-test-key.pem"),
    )
    .unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let out = keyroll(
        &DEMO,
        &[
            ("KEYROLL_APP_ID", "12345"),
            ("KEYROLL_APP_PRIVATE_KEY", &body),
        ],
    );
    assert!(!out.status.success());
    let all = text(&out);
    assert!(all.contains("not a PEM private key"), "{all}");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!all.contains(&line[..24]), "the key leaked: {all}");
    }
}

#[test]
fn a_password_in_a_metadata_url_is_not_echoed() {
    // Port 9 (discard) on loopback: the connection is refused at once.
    let out = keyroll(
        &[
            "inspect",
            "--retries",
            "0",
            "https://admin:hunter2-metadata@127.0.0.1:9/FederationMetadata.xml",
        ],
        &[],
    );
    assert!(!out.status.success());
    let all = text(&out);
    assert!(
        all.contains("https://***@127.0.0.1:9/FederationMetadata.xml"),
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn timeout_bounds_the_whole_fetch_retries_included() {
    // A server that accepts and never answers: with 3 retries and a per-attempt bound this
    // took 4 × 2 s plus backoff; the deadline is for the source as a whole.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/FederationMetadata.xml",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let out = keyroll(
        &[
            "inspect",
            "--allow-http",
            "--timeout",
            "2",
            "--retries",
            "3",
            &url,
        ],
        &[],
    );
    let elapsed = started.elapsed();
    assert!(!out.status.success());
    assert!(text(&out).contains("timed out after 2."), "{}", text(&out));
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn the_token_is_not_sent_to_a_plain_http_api() {
    let out = keyroll(
        &DEMO,
        &[
            ("GITHUB_TOKEN", "ghs_cli_token_for_http_test"),
            ("GITHUB_API_URL", "http://ghe.example.invalid/api/v3"),
        ],
    );
    let all = text(&out);
    assert!(
        all.contains("refusing to send the token to the GitHub API http://ghe.example.invalid/api/v3 over plain http://"),
        "{all}"
    );
    assert!(!all.contains("ghs_cli_token_for_http_test"));
}
