//! Workflow-command injection (issue 26, item 3): text from outside (an entityID, a metadata
//! path, a config's content and attribute values, a repository name and an error message from
//! the GitHub API) is fed through every printing path of the real binary — plan, apply, pr
//! --dry-run, inspect, scan, discover — and no line of stdout or stderr may read as a runner
//! command (`::…` after optional blanks: the runner trims them) or carry a control character
//! (a lone CR ends a line for the runner, as .NET reads lines; ESC drives the terminal).
//! Line breaks in outside text are escaped visibly (`\n`), not dropped.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-11-23T12:00:00Z";
/// An entityID carrying a runner command after an LF, another after a lone CR, a line
/// separator, NEL and a C1 CSI (the 8-bit ESC [) — as XML character references.
const HOSTILE_ENTITY_XML: &str = "http://adfs.contoso.com/x&#10;::error title=pwn::x&#13;::warning::cr&#x2028;sep&#x85;nel&#x9b;31m";
/// What keyroll prints for it: every break escaped where it stood.
const HOSTILE_ENTITY_SHOWN: &str =
    r"http://adfs.contoso.com/x\n::error title=pwn::x\r::warning::cr\u{2028}sep\u{85}nel\u{9b}31m";

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_API_URL")
        .env("KEYROLL_TEST_FAST_RETRY", "1")
        .output()
        .unwrap()
}

/// No line of `bytes` is a runner command or holds a control character (tab and a CRLF's CR
/// excepted: a Windows config's diff keeps its own line ends and indentation).
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (i, line) in text.split('\n').enumerate() {
        assert!(
            !line.trim_start().starts_with("::"),
            "{what}: line {} reads as a runner command: {line:?}\n---\n{text}",
            i + 1
        );
        let line = line.strip_suffix('\r').unwrap_or(line);
        let bad: Vec<char> = line
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: line {} carries {bad:?}: {line:?}\n---\n{text}",
            i + 1
        );
    }
}

fn assert_both_clean(what: &str, out: &Output) {
    assert_clean(&format!("{what} (stdout)"), &out.stdout);
    assert_clean(&format!("{what} (stderr)"), &out.stderr);
}

/// The embedded example with a hostile entityID in its metadata, and a config holding a
/// runner command on a line of its own (in a comment next to the registry, so the diff shows
/// it as a context line, ` ::error…`). `keep_entity_id`: keyroll.toml still names the
/// original entityID, so the issuer fails with an error quoting the hostile one.
fn hostile_demo(dir: &Path, keep_entity_id: bool) {
    common::copy_dir(&common::demo_dir(), dir);
    let metadata = dir.join("metadata/FederationMetadata.xml");
    let xml = std::fs::read_to_string(&metadata).unwrap();
    let original = "entityID=\"http://adfs.contoso.com/adfs/services/trust\"";
    assert!(xml.contains(original));
    std::fs::write(
        &metadata,
        xml.replace(original, &format!("entityID=\"{HOSTILE_ENTITY_XML}\"")),
    )
    .unwrap();
    let config = dir.join("src/Contoso.Api/identity.config");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "<trustedIssuers>\n",
        "<trustedIssuers>\n<!--\n::error title=cfg::from a config\n\t  ::warning::indented\n-->\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    if !keep_entity_id {
        let toml = std::fs::read_to_string(dir.join("keyroll.toml")).unwrap();
        let toml: String = toml
            .lines()
            .filter(|l| !l.starts_with("entity_id"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.join("keyroll.toml"), toml).unwrap();
    }
}

#[test]
fn plan_apply_and_pr_dry_run_print_a_hostile_entity_id_and_config_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    hostile_demo(root, false);

    let plan = keyroll(root, &["plan", "--config", "keyroll.toml", "--now", NOW]);
    assert!(plan.status.success(), "{plan:?}");
    assert_both_clean("plan", &plan);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    // Escaped where it stood, visibly; the config's line is shown, its first colon escaped.
    assert!(stdout.contains(HOSTILE_ENTITY_SHOWN), "{stdout}");
    assert!(
        stdout.contains(r" \u{3a}:error title=cfg::from a config"),
        "{stdout}"
    );

    let json = keyroll(
        root,
        &[
            "plan",
            "--config",
            "keyroll.toml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
    );
    assert!(json.status.success());
    assert_both_clean("plan --format json", &json);

    let pr = keyroll(
        root,
        &["pr", "--dry-run", "--config", "keyroll.toml", "--now", NOW],
    );
    assert!(pr.status.success(), "{pr:?}");
    assert_both_clean("pr --dry-run", &pr);
    let stdout = String::from_utf8_lossy(&pr.stdout);
    assert!(stdout.contains("--- pull request body"), "{stdout}");

    let apply = keyroll(root, &["apply", "--config", "keyroll.toml", "--now", NOW]);
    assert!(apply.status.success(), "{apply:?}");
    assert_both_clean("apply", &apply);
}

#[test]
fn an_issuer_error_quoting_a_hostile_entity_id_is_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    hostile_demo(root, true);
    for args in [
        &["plan", "--config", "keyroll.toml", "--now", NOW][..],
        &["apply", "--config", "keyroll.toml", "--now", NOW],
        &["pr", "--dry-run", "--config", "keyroll.toml", "--now", NOW],
    ] {
        let out = keyroll(root, args);
        assert!(!out.status.success(), "{args:?}: the issuer fails");
        assert_both_clean(&args[..2].join(" "), &out);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains(r"\n::error title=pwn::x"), "{args:?}: {all}");
    }
    // Item 9: the closing line promises no named file when the error names none.
    let stderr = |args: &[&str]| String::from_utf8_lossy(&keyroll(root, args).stderr).into_owned();
    let plan = stderr(&["plan", "--config", "keyroll.toml", "--now", NOW]);
    assert!(
        plan.ends_with("error: 1 error, naming no file: apply would plan nothing for what it names (it would write every other change)\n"),
        "{plan}"
    );
    let apply = stderr(&["apply", "--config", "keyroll.toml", "--now", NOW]);
    assert!(
        apply.ends_with("error: 1 error, naming no file: nothing was planned for what it names (every other change was written)\n"),
        "{apply}"
    );
}

#[test]
fn an_error_about_a_file_names_it_in_the_closing_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::copy_dir(&common::demo_dir(), root);
    // Not well-formed: plan cannot read the registry, so it changes nothing in this file.
    let config = root.join("src/Contoso.Web/Web.config");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("</trustedIssuers>", "</trustedIssuer>"),
    )
    .unwrap();
    let out = keyroll(root, &["apply", "--config", "keyroll.toml", "--now", NOW]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with("error: 1 error: src/Contoso.Web/Web.config was not written (every other change was written)\n"),
        "{stderr}"
    );
}

#[test]
fn inspect_prints_hostile_metadata_and_a_hostile_path_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    hostile_demo(root, false);
    let out = keyroll(
        root,
        &["inspect", "metadata/FederationMetadata.xml", "--now", NOW],
    );
    assert!(out.status.success(), "{out:?}");
    assert_both_clean("inspect", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains(HOSTILE_ENTITY_SHOWN));
    // JSON, written as it is made: serde_json leaves NEL, C1 and U+2028 raw; keyroll does not.
    let out = keyroll(
        root,
        &[
            "inspect",
            "metadata/FederationMetadata.xml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_both_clean("inspect --format json", &out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["certificates"][0]["entity_id"]
            .as_str()
            .unwrap()
            .contains("x\n::error title=pwn::x\r::warning::cr\u{2028}sep\u{85}nel\u{9b}31m"),
        "the JSON reads back as the metadata's text: {json}"
    );

    // A source that does not exist, named with a lone CR, a CR LF and a command: the error
    // quotes it: its CR LF is escaped too, so the error stays one line.
    let out = keyroll(
        root,
        &[
            "inspect",
            "missing\r::warning::cr\r\n::error title=path::x.xml",
            "--now",
            NOW,
        ],
    );
    assert!(!out.status.success());
    assert_both_clean("inspect of a missing hostile path", &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r"missing\r::warning::cr\r\n::error title=path::x.xml"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A metadata path in keyroll.toml with a CR LF: plan's issuer error quotes it.
    let toml = std::fs::read_to_string(root.join("keyroll.toml")).unwrap();
    std::fs::write(
        root.join("keyroll.toml"),
        toml.replace(
            "metadata = [\"metadata/FederationMetadata.xml\"]",
            "metadata = [\"metadata/gone\\r\\n::error title=toml::x.xml\"]",
        ),
    )
    .unwrap();
    let out = keyroll(root, &["plan", "--config", "keyroll.toml", "--now", NOW]);
    assert!(!out.status.success());
    assert_both_clean("plan with a hostile metadata path", &out);
}

#[test]
fn scan_prints_hostile_attribute_values_escaped_and_only_its_own_commands() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("web.config"),
        "<configuration><system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\"><trustedIssuers>\n\
         <add thumbprint=\"5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379\" name=\"a&#10;::error title=scan::x&#13;::warning::y\" />\n\
         <add thumbprint=\"not&#10;::error::hex\" name=\"b\" />\n\
         </trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>\n",
    )
    .unwrap();
    let text = keyroll(root, &["scan", "."]);
    assert_both_clean("scan", &text);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains(r"a\n::error title=scan::x\r::warning::y"),
        "{stdout}"
    );

    // `--format github` prints commands on purpose: one per finding, none from the config.
    let json = keyroll(root, &["scan", ".", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let findings = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["findings"].as_array().unwrap().len())
        .sum::<usize>()
        + json["problems"].as_array().unwrap().len();
    assert!(findings > 0);
    let github = keyroll(root, &["scan", ".", "--format", "github"]);
    let commands = String::from_utf8_lossy(&github.stdout);
    let lines: Vec<&str> = commands.lines().collect();
    assert_eq!(lines.len(), findings, "{commands}");
    for line in lines {
        assert!(
            ["::error file=", "::warning file=", "::notice file="]
                .iter()
                .any(|p| line.starts_with(p))
                && !line.contains('\r'),
            "{line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_prints_a_hostile_repository_name_and_api_error_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/installation/repositories"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total_count": 2,
            "repositories": [
                {"full_name": "org/evil\n::error title=pwn::name", "name": "evil",
                 "owner": {"login": "org", "type": "Organization"},
                 "archived": false, "disabled": false, "fork": false, "default_branch": "main"},
                {"full_name": "org/broken", "name": "broken",
                 "owner": {"login": "org", "type": "Organization"},
                 "archived": false, "disabled": false, "fork": false, "default_branch": "main"},
            ],
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/org/broken/contents/keyroll.toml"))
        .respond_with(ResponseTemplate::new(418).set_body_json(
            serde_json::json!({"message": "teapot\r\n::error title=api::message\u{1b}[2J"}),
        ))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let out = keyroll(
        dir.path(),
        &[
            "discover",
            "--api-url",
            &server.uri(),
            "--token",
            "ghs_installation_token",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_both_clean("discover", &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r"org/evil\n::error title=pwn::name"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failed"].as_array().unwrap().len(), 2, "{json}");
}

#[test]
fn a_marker_holding_an_issuer_name_with_a_comment_end_stays_one_comment() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::copy_dir(&common::demo_dir(), root);
    let name = "contoso --> <b>adfs<b> --!> x";
    let toml = std::fs::read_to_string(root.join("keyroll.toml")).unwrap();
    std::fs::write(
        root.join("keyroll.toml"),
        toml.replace("\"contoso-adfs\"", &format!("{name:?}")),
    )
    .unwrap();
    let out = keyroll(
        root,
        &["pr", "--dry-run", "--config", "keyroll.toml", "--now", NOW],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let body = stdout
        .split("--- pull request body\n")
        .nth(1)
        .expect("a body is shown");
    let start = body.rfind("<!-- keyroll: ").expect("the marker is there");
    let marker = &body[start..];
    let comment = &marker[4..marker.find("-->").unwrap()];
    // The comment ends where keyroll ended it, and nothing inside could end it earlier.
    assert!(!comment.contains("--"), "{marker}");
    assert!(
        marker.starts_with(&format!("<!--{comment}-->\n")),
        "{marker}"
    );
    // Read back as keyroll reads it.
    let found = keyroll::act::pr::Marker::find(body).expect("the marker parses");
    assert_eq!(found.issuer, name);
}

/// A parser's message quotes outside text: serde names an unknown keyroll.toml key as it was
/// written, line breaks included (a quoted TOML key may hold `\n`). The error is still one
/// line: only the problems of an error that lists several get lines of their own.
#[test]
fn an_error_quoting_a_line_break_from_a_parser_message_stays_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::copy_dir(&common::demo_dir(), root);
    let toml = root.join("keyroll.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\"x\\nerror: all clear\\r::error::pwn\" = 1\n");
    std::fs::write(&toml, text).unwrap();
    for args in [
        &["plan", "--config", "keyroll.toml", "--now", NOW][..],
        &["apply", "--config", "keyroll.toml", "--now", NOW],
        &["scan", "--config", "keyroll.toml"],
    ] {
        let out = keyroll(root, args);
        assert!(!out.status.success(), "{args:?}");
        assert_both_clean(args[0], &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(r"unknown field `x\nerror: all clear\r::error::pwn`"),
            "{args:?}: {stderr}"
        );
    }
    // A lock with two bad rows lists both, one per line, each escaped.
    std::fs::write(
        root.join("keyroll.toml"),
        std::fs::read(common::demo_dir().join("keyroll.toml")).unwrap(),
    )
    .unwrap();
    let lock = root.join("keyroll.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let bad = text.replacen("sha1 = \"", "sha1 = \"\\nerror: forged ", 2);
    assert_ne!(bad, text);
    std::fs::write(&lock, bad).unwrap();
    let out = keyroll(root, &["plan", "--config", "keyroll.toml", "--now", NOW]);
    assert!(!out.status.success());
    assert_both_clean("plan with a bad lock", &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().all(|l| !l.starts_with("error: forged")),
        "{stderr}"
    );
    assert!(stderr.contains(r#"sha1 "\nerror: forged "#), "{stderr}");
}
