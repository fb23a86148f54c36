//! `keyroll snapshot` and `--snapshot DIR`, through the binary, against metadata served by a
//! local server: each document is read once, written byte for byte with its SHA-256 and
//! signature verdict, and a later run reads the same bytes from the snapshot (no request).

use std::path::Path;
use std::process::{Command, Output};

use sha2::Digest as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-11-23T12:00:00Z";
const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/demo/metadata/FederationMetadata.xml"
);
const SIGNED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/metadata/adfs-v4-metadata.xml"
);
const BROKEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/metadata/azuread-common-formatted.xml"
);

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .args(["--now", NOW])
        .current_dir(dir)
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode_upper(sha2::Sha256::digest(bytes))
}

async fn serve(server: &MockServer, at: &str, file: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(std::fs::read(file).unwrap()))
        .expect(times)
        .mount(server)
        .await;
}

/// The demo repository, its issuer's metadata named by `url`.
fn demo_repo(dir: &Path, url: &str) -> std::path::PathBuf {
    let repo = dir.join("repo");
    let copy = |from: &Path, to: &Path| {
        for entry in walk(from) {
            let rel = entry.strip_prefix(from).unwrap();
            let dest = to.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&entry, dest).unwrap();
        }
    };
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo"),
        &repo,
    );
    let config = repo.join("keyroll.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "metadata = [\"metadata/FederationMetadata.xml\"]",
        &format!("metadata = [\"{url}\"]"),
    );
    assert!(text.contains(url));
    std::fs::write(config, text).unwrap();
    repo
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_records_exact_bytes_digests_and_verdicts_and_runs_read_them_back() {
    let server = MockServer::start().await;
    // Two issuers share the demo URL: still one request.
    serve(&server, "/demo.xml", DEMO, 1).await;
    serve(&server, "/signed.xml", SIGNED, 1).await;
    serve(&server, "/broken.xml", BROKEN, 1).await;
    Mock::given(method("GET"))
        .and(path("/down.xml"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.uri();
    std::fs::write(
        dir.path().join("central.toml"),
        format!(
            r#"[[issuer]]
name = "contoso-adfs"
metadata = ["{base}/demo.xml"]

[[issuer]]
name = "contoso-adfs-again"
metadata = ["{base}/demo.xml"]

[[issuer]]
name = "signed"
metadata = ["{base}/signed.xml"]

[[issuer]]
name = "broken"
metadata = ["{base}/broken.xml"]

[[issuer]]
name = "down"
metadata = ["{base}/down.xml"]
"#
        ),
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
            "--retries",
            "0",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("down: ") && stderr.contains("404"),
        "{stderr}"
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("snap/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["schema"], "keyroll-snapshot/1");
    assert_eq!(manifest["taken_at"], NOW);
    let docs = manifest["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 4, "{manifest:#}");
    for (url, file) in [
        ("/demo.xml", DEMO),
        ("/signed.xml", SIGNED),
        ("/broken.xml", BROKEN),
    ] {
        let doc = docs
            .iter()
            .find(|d| d["url"] == format!("{base}{url}"))
            .unwrap_or_else(|| panic!("{url} in {manifest:#}"));
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(doc["sha256"], sha256(&bytes));
        assert_eq!(doc["bytes"], bytes.len());
        assert!(doc["read_at"].as_str().unwrap().len() >= 20);
        let written =
            std::fs::read(dir.path().join("snap").join(doc["file"].as_str().unwrap())).unwrap();
        assert!(written == bytes, "{url}: the bytes are kept exactly");
    }
    let down = docs
        .iter()
        .find(|d| d["url"] == format!("{base}/down.xml"))
        .unwrap();
    assert!(down["error"].as_str().unwrap().contains("404"), "{down}");
    let issuer = |name: &str| {
        manifest["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()["sources"][0]
            .clone()
    };
    assert_eq!(issuer("contoso-adfs")["signature"]["status"], "unsigned");
    assert_eq!(issuer("signed")["signature"]["status"], "valid");
    assert!(
        issuer("signed")["signature"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("valid: signed by "),
        "{manifest:#}"
    );
    assert_eq!(issuer("broken")["signature"]["status"], "refused");
    assert_eq!(issuer("contoso-adfs")["kind"], "saml-metadata");
    assert!(issuer("down")["error"].as_str().unwrap().contains("404"));

    // A repository's plan from the snapshot: the same SHA-256, and no request (the server's
    // expectations above count exactly one per URL).
    let repo = demo_repo(dir.path(), &format!("{base}/demo.xml"));
    let snap = dir.path().join("snap");
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["issuers"][0]["sources"][0]["sha256"],
        sha256(&std::fs::read(DEMO).unwrap())
    );
    assert_eq!(plan["changes_pending"], true, "{plan:#}");

    // The failure recorded in the snapshot is what a repository reading it reports.
    let failing = demo_repo(&dir.path().join("f"), &format!("{base}/down.xml"));
    let out = keyroll(
        &failing,
        &[
            "plan",
            "--format",
            "json",
            "--snapshot",
            snap.to_str().unwrap(),
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("the snapshot recorded a failure") && text.contains("404"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_missing_from_the_snapshot_or_a_changed_document_is_an_error() {
    let server = MockServer::start().await;
    serve(&server, "/demo.xml", DEMO, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.uri();
    std::fs::write(
        dir.path().join("central.toml"),
        format!("[[issuer]]\nname = \"contoso-adfs\"\nmetadata = [\"{base}/demo.xml\"]\n"),
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
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = dir.path().join("snap");

    // Another URL: named in the error, with the snapshot's folder; nothing fetched.
    let other = format!("{base}/other.xml");
    let repo = demo_repo(dir.path(), &other);
    for command in [
        vec!["plan", "--snapshot", snap.to_str().unwrap()],
        vec!["inspect", &other, "--snapshot", snap.to_str().unwrap()],
    ] {
        let out = keyroll(&repo, &command);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}: {text}");
        assert!(
            text.contains(&other) && text.contains("not in the snapshot"),
            "{command:?}: {text}"
        );
    }

    // inspect reads the snapshot's document for the URL it holds.
    let url = format!("{base}/demo.xml");
    let out = keyroll(
        &repo,
        &[
            "inspect",
            &url,
            "--format",
            "json",
            "--snapshot",
            snap.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A document changed after the snapshot was taken is refused, not read.
    let doc = walk(&snap.join("documents")).pop().unwrap();
    let mut bytes = std::fs::read(&doc).unwrap();
    bytes.extend_from_slice(b"\n<!-- edited -->\n");
    std::fs::write(&doc, bytes).unwrap();
    let out = keyroll(
        &repo,
        &["inspect", &url, "--snapshot", snap.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("changed after it was taken"), "{stderr}");

    // A folder that is no snapshot.
    let out = keyroll(&repo, &["inspect", &url, "--snapshot", "."]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("manifest.json"), "{stderr}");
}
