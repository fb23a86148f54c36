//! `keyroll pr` pushing over smart HTTP: `git http-backend` (git's own CGI server side)
//! behind a small local HTTP server that demands the token, so libgit2's credential
//! callback path is the one that carries it. The pushed tree's bytes are checked.

mod common;
use common::git;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_smart_http_token";
const BRANCH: &str = "keyroll/contoso-adfs";

/// What the server saw: (method, path, authorized).
type Log = Arc<Mutex<Vec<(String, String, bool)>>>;

/// Serves `root` over smart HTTP on 127.0.0.1; every request must carry Basic
/// `x-access-token:TOKEN`, else 401 with a challenge (as GitHub answers).
fn serve(root: PathBuf) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let _ = handle(stream, &root, &seen);
            });
        }
    });
    (url, log)
}

fn handle(stream: TcpStream, root: &Path, log: &Log) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (verb, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length") {
            body.resize(len.parse().unwrap_or(0), 0);
            reader.read_exact(&mut body)?;
        } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let (path_info, query) = target.split_once('?').unwrap_or((&target, ""));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"))
        );
        let authorized = header("authorization").as_deref() == Some(expected.as_str());
        log.lock()
            .unwrap()
            .push((verb.clone(), path_info.to_string(), authorized));
        if !authorized {
            out.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
        let mut cgi = Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &verb)
            .env("PATH_INFO", path_info)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "x-access-token")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        cgi.stdin.take().unwrap().write_all(&body)?;
        let output = cgi.wait_with_output()?;
        let split = output
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| (p, 4))
            .or_else(|| {
                output
                    .stdout
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|p| (p, 2))
            })
            .unwrap_or((output.stdout.len(), 0));
        let head = String::from_utf8_lossy(&output.stdout[..split.0]).to_string();
        let payload = &output.stdout[split.0 + split.1..];
        let mut status = "200 OK".to_string();
        let mut response = String::new();
        for line in head.lines() {
            match line.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
                Some(_) => response.push_str(&format!("{line}\r\n")),
                None => {}
            }
        }
        out.write_all(
            format!(
                "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\n\r\n",
                payload.len()
            )
            .as_bytes(),
        )?;
        out.write_all(payload)?;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_over_smart_http_with_the_token_from_the_credential_callback() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "--bare", "identity-configs.git"]);
    let bare = root.join("identity-configs.git");
    let work = dir.path().join("work");
    common::demo_work_repo(&work, &bare);
    // This test is about git's push: keep it from committing through the API, which
    // `commits = "auto"` does with an installation token like this one.
    pin_git_commits(&work, &bare);
    let (server_url, log) = serve(root.clone());
    let remote = format!("{server_url}/identity-configs.git");

    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/contoso/identity-configs/pulls"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "number": 1, "html_url": "https://github.com/contoso/identity-configs/pull/1",
            "state": "open", "head": {"ref": BRANCH, "sha": "0"}
        })))
        .mount(&github)
        .await;

    let run = |token: &'static str| {
        let (api, remote, work) = (github.uri(), remote.clone(), work.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_keyroll"))
                .args(["pr", "--now", "2026-11-23T12:00:00Z", "--api-url", &api])
                .args(["--remote", &remote, "--token", token])
                .env_remove("GITHUB_TOKEN")
                .current_dir(&work)
                .output()
                .unwrap()
        })
    };

    // A wrong token: the push is refused, nothing lands, and the token is never printed.
    let out = run("ghs_wrong_token").await.unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(!all.contains("ghs_wrong_token"), "{all}");
    assert!(
        all.contains("refused the token") || all.contains("401") || all.contains("authentication"),
        "{all}"
    );

    let out = run(TOKEN).await.unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(TOKEN));
    assert!(all.contains("created"), "{all}");

    // The server saw an unauthenticated probe answered 401, then the token, for a push.
    let seen = log.lock().unwrap().clone();
    assert!(seen.iter().any(|(_, _, ok)| !ok), "{seen:?}");
    assert!(
        seen.iter()
            .any(|(v, p, ok)| v == "POST" && p.ends_with("git-receive-pack") && *ok),
        "{seen:?}"
    );

    // The pushed commit holds the planned bytes: BOM and CRLF kept, the new key added.
    let head = git(&bare, &["rev-parse", &format!("refs/heads/{BRANCH}")]);
    let web = Command::new("git")
        .args([
            "cat-file",
            "blob",
            &format!("{head}:src/Contoso.Web/Web.config"),
        ])
        .current_dir(&bare)
        .output()
        .unwrap()
        .stdout;
    let before = std::fs::read(work.join("src/Contoso.Web/Web.config")).unwrap();
    assert!(web.starts_with(b"\xEF\xBB\xBF"));
    assert!(String::from_utf8_lossy(&web).contains("81CB9F506E54F19731D89F749FBBCE8FE6476295"));
    assert_eq!(web.len(), before.len() + b"          <add thumbprint=\"81CB9F506E54F19731D89F749FBBCE8FE6476295\" name=\"http://adfs.contoso.com/adfs/services/trust\" />\r\n".len());
    assert_eq!(
        git(&bare, &["rev-parse", &format!("{head}^")]),
        git(&bare, &["rev-parse", "refs/heads/main"])
    );
}

/// `[pr] commits = "git"` in the work repository's keyroll.toml (the demo's last section is
/// `[pr]`), committed and pushed to main.
fn pin_git_commits(work: &Path, bare: &Path) {
    let config = work.join("keyroll.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}commits = \"git\"\n")).unwrap();
    git(work, &["commit", "-q", "-am", "commit with git"]);
    git(work, &["push", "-q", bare.to_str().unwrap(), "HEAD:main"]);
}
