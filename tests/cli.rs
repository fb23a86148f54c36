//! The binary as a user runs it: arguments in, stdout/stderr/exit code out.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;

fn keyroll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .output()
        .expect("run keyroll")
}

fn keyroll_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The AD FS 2.0 signing certificate, as base64 taken from the corpus metadata.
fn adfs_signing_base64() -> String {
    let xml = std::fs::read_to_string("tests/data/metadata/adfs-v2-metadata.xml").unwrap();
    let start = xml.find("<X509Certificate>").unwrap() + "<X509Certificate>".len();
    let end = start + xml[start..].find("</X509Certificate>").unwrap();
    xml[start..end].to_string()
}
const ADFS_SIGNING_SHA1: &str = "28D1BE71EBAB715A8F53CB9FD9D84C4373CD3708";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn thumbprint_of_der_pem_base64_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = adfs_signing_base64();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .unwrap();
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\r\n{}\r\n-----END CERTIFICATE-----\r\n",
        wrapped.join("\r\n")
    );
    for (name, bytes) in [
        ("signing.cer", der.clone()),
        ("signing.pem", pem.into_bytes()),
        ("signing.b64", b64.clone().into_bytes()),
    ] {
        let path = write(dir.path(), name, &bytes);
        let out = keyroll(&["thumbprint", &path]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{ADFS_SIGNING_SHA1}\n"), "{name}");
    }
    let out = keyroll_stdin(&["thumbprint", "-"], &der);
    assert_eq!(stdout(&out), format!("{ADFS_SIGNING_SHA1}\n"));

    let path = write(dir.path(), "signing.cer", &der);
    let out = keyroll(&["thumbprint", "--sha256", &path]);
    let sha256 = hex::encode_upper(<sha2::Sha256 as sha2::Digest>::digest(&der));
    assert_eq!(stdout(&out), format!("{sha256}\n"));

    let out = keyroll(&["thumbprint", "--format", "json", &path]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sha1"], ADFS_SIGNING_SHA1);
    assert_eq!(json["sha256"], sha256);
    assert_eq!(json["subject"], "CN=ADFS Signing - fs.msidlab7.com");
    assert_eq!(json["not_before"], "2016-12-03T02:36:10Z");
    assert_eq!(json["not_after"], "2017-12-03T02:36:10Z");
}

#[test]
fn thumbprint_of_a_non_certificate_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "notes.txt", b"hello, not a certificate");
    let out = keyroll(&["thumbprint", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("notes.txt: not a certificate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_names_the_left_to_right_mark_and_prints_the_clean_form() {
    let out = keyroll(&[
        "thumbprint",
        "--check",
        "\u{200E}28 d1 be 71 eb ab 71 5a 8f 53 cb 9f d9 d8 4c 43 73 cd 37 08",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), format!("{ADFS_SIGNING_SHA1}\n"));
    let err = stderr(&out);
    assert!(
        err.contains("removed U+200E LEFT-TO-RIGHT MARK at position 1"),
        "{err}"
    );
    assert!(err.contains("removed U+0020 SPACE at position 4"), "{err}");
}

#[test]
fn check_refuses_question_mark_and_wrong_length() {
    let out = keyroll(&["thumbprint", "--check", &format!("?{ADFS_SIGNING_SHA1}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("stray U+003F QUESTION MARK at position 1"),
        "{}",
        stderr(&out)
    );

    let out = keyroll(&["thumbprint", "--check", &ADFS_SIGNING_SHA1[..39]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expected 40 hex digits, found 39"));
}

#[test]
fn check_accepts_x5t_and_reports_json() {
    let out = keyroll(&[
        "thumbprint",
        "--check",
        "--format",
        "json",
        "a3QN0BZS7s4nN-BdrjbF0Y_LdMM",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["thumbprint"],
        "6B740DD01652EECE2737E05DAE36C5D18FCB74C3"
    );
    assert_eq!(json["notation"], "x5t");
    assert_eq!(json["valid"], true);
}

#[test]
fn inspect_json_schema_on_a_corpus_file() {
    let out = keyroll(&[
        "inspect",
        "--format",
        "json",
        "--now",
        "2017-11-20T00:00:00Z",
        "tests/data/metadata/adfs-v2-metadata.xml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], "keyroll.inspect/v1");
    assert_eq!(json["kind"], "saml-metadata");
    assert_eq!(json["signature"]["present"], true);
    assert_eq!(json["signature"]["verified"], true);
    assert_eq!(json["signature"]["verdict"]["status"], "valid");
    assert_eq!(json["signature"]["signer_sha1"], ADFS_SIGNING_SHA1);
    let certs = json["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    let signing = certs
        .iter()
        .find(|c| c["sha1"] == ADFS_SIGNING_SHA1)
        .unwrap();
    assert_eq!(
        signing["entity_id"],
        "http://fs.msidlab7.com/adfs/services/trust"
    );
    assert_eq!(signing["use"], serde_json::json!(["signing"]));
    assert_eq!(
        signing["roles"],
        serde_json::json!([
            "SecurityTokenServiceType",
            "SPSSODescriptor",
            "IDPSSODescriptor"
        ])
    );
    // Expires 2017-12-03: within the default 30 days of --now.
    assert_eq!(signing["status"], "expiring");
    assert_eq!(signing["issuer"], "CN=ADFS Signing - fs.msidlab7.com");
}

#[test]
fn inspect_status_follows_now_and_warn_days() {
    let path = "tests/data/metadata/adfs-v2-metadata.xml";
    let status = |now: &str, extra: &[&str]| {
        let mut args = vec!["inspect", "--format", "json", "--now", now, path];
        args.extend_from_slice(extra);
        let json: serde_json::Value = serde_json::from_slice(&keyroll(&args).stdout).unwrap();
        json["certificates"][0]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("2016-01-01T00:00:00Z", &[]), "not-yet-valid");
    assert_eq!(status("2017-06-01T00:00:00Z", &[]), "valid");
    assert_eq!(
        status("2017-06-01T00:00:00Z", &["--warn-days", "200"]),
        "expiring"
    );
    assert_eq!(status("2018-01-01T00:00:00Z", &[]), "expired");
}

#[test]
fn inspect_text_table_lists_entity_and_roles() {
    let out = keyroll(&[
        "inspect",
        "--now",
        "2017-06-01T00:00:00Z",
        "examples/metadata/windows-ad-metadata.xml",
    ]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("entity urn:federation:MicrosoftOnline"),
        "{text}"
    );
    assert!(text.contains("791BC6AD9893AA570DF03452B4F8069C8A743C29"));
    assert!(text.contains("DCED98D330C1D33A26AA3F7FD15B961573E5DA6A"));
    assert!(text.contains("signature: valid (reference #_"), "{text}");
}

fn inspect_error(name: &str, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, content.as_bytes());
    let out = keyroll(&["inspect", &path]);
    assert_eq!(out.status.code(), Some(1), "{name}");
    assert!(out.stdout.is_empty());
    stderr(&out)
}

#[test]
fn bad_documents_are_refused_with_source_line_and_column() {
    let err = inspect_error(
        "dtd.xml",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"boom\">]>\n<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">&a;</EntityDescriptor>",
    );
    assert!(err.contains("dtd.xml:2:1: the document has a DTD"), "{err}");

    let err = inspect_error(
        "broken.xml",
        "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">\n  <KeyDescriptor>\n</EntityDescriptor>",
    );
    assert!(err.contains("broken.xml:3:1: malformed XML"), "{err}");

    let err = inspect_error(
        "nocerts.xml",
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>",
    );
    assert!(
        err.contains("nocerts.xml: the document lists no certificates"),
        "{err}"
    );

    let err = inspect_error(
        "badb64.xml",
        "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"urn:x\">\n<IDPSSODescriptor>\n<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data>\n  <X509Certificate>MIIB***</X509Certificate></X509Data></KeyInfo></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>",
    );
    assert!(
        err.contains("badb64.xml:4:3: certificate of urn:x in IDPSSODescriptor: invalid base64"),
        "{err}"
    );

    let err = inspect_error(
        "notcert.xml",
        "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"urn:x\"><SPSSODescriptor><KeyDescriptor><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>MIIBAAAA</X509Certificate></X509Data></KeyInfo></KeyDescriptor></SPSSODescriptor></EntityDescriptor>",
    );
    assert!(err.contains("notcert.xml:1:"), "{err}");
    assert!(err.contains("not a DER certificate"), "{err}");

    let err = inspect_error("keys.json", "{\"keys\": [ {\"kid\": 1,, } ]}");
    assert!(err.contains("keys.json:1:22: invalid JSON"), "{err}");

    let err = inspect_error("other.xml", "<configuration/>");
    assert!(err.contains("root element is <configuration>"), "{err}");
}

#[test]
fn inspect_of_missing_file_names_it() {
    let out = keyroll(&["inspect", "no/such/metadata.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no/such/metadata.xml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_refuses_plain_http_urls() {
    let out = keyroll(&["inspect", "http://127.0.0.1:9/metadata.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing plain http://"),
        "{}",
        stderr(&out)
    );
}

// ---- scan ----

/// A tree with a problem config, an ignored folder, build output and a binary file.
fn scan_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let nordvall = std::fs::read_to_string("tests/data/configs/nordvall-mvc5-http.config").unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(
        root.join("app/Web.config"),
        nordvall.replace(
            "thumbprint=\"18145fb6b5d96b3cc34ec7599f12172bb93c68ef\"",
            "thumbprint=\"\u{200E}18145fb6b5d96b3cc34ec7599f12172bb93c68ef\"",
        ),
    )
    .unwrap();
    for skipped in ["app/bin", "app/obj", "ignored"] {
        std::fs::create_dir_all(root.join(skipped)).unwrap();
        std::fs::write(root.join(skipped).join("Web.config"), &nordvall).unwrap();
    }
    std::fs::write(root.join(".gitignore"), "ignored/\n").unwrap();
    std::fs::write(root.join("app/blob.config"), b"\0\0thumbprint\0").unwrap();
    dir
}

#[test]
fn scan_reports_dirty_entry_and_exits_1_skipping_ignored_and_build_output() {
    let tree = scan_tree();
    let root = tree.path().to_str().unwrap();
    let out = keyroll(&["scan", "--format", "json", root]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], "keyroll.scan/v1");
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let entry = &entries[0];
    assert!(entry["file"].as_str().unwrap().ends_with("app/Web.config"));
    assert_eq!(entry["line"], 72);
    assert_eq!(entry["dialect"], "wif45");
    assert_eq!(entry["issuer_name"], "DummySTS");
    assert_eq!(
        entry["normalized"],
        "18145FB6B5D96B3CC34EC7599F12172BB93C68EF"
    );
    let codes: Vec<&str> = entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["dirty", "lowercase"]);
    // A config holding NUL bytes is reported where it is, as `plan` reports it (issue 26,
    // item 9): not passed over without a word.
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("app/blob.config"),
        "{problems:#?}"
    );
    assert_eq!(problems[0]["code"], "malformed");
    assert_eq!(json["summary"]["errors"], 2);
}

#[test]
fn scan_of_clean_corpus_exits_0_and_github_format_annotates() {
    let out = keyroll(&["scan", "tests/data/configs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("14 trusted thumbprints in 10 files: 0 errors"));

    let tree = scan_tree();
    let out = keyroll(&["scan", "--format", "github", tree.path().to_str().unwrap()]);
    let text = stdout(&out);
    let error_line = text.lines().find(|l| l.starts_with("::error ")).unwrap();
    assert!(
        error_line.contains(
            ",line=72,col=32,title=keyroll dirty::contains U+200E LEFT-TO-RIGHT MARK at position 1"
        ),
        "{error_line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("::notice ") && l.contains("lowercase"))
    );
}

#[test]
fn scan_of_missing_path_cannot_run_exit_2() {
    let out = keyroll(&["scan", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such/dir"));
}

#[test]
fn scan_sarif_validates_against_the_sarif_2_1_0_schema() {
    // The published schema's `language` pattern (on run and toolComponent) has a stray `]`
    // that no regex engine here accepts, so the validator refuses the schema itself. keyroll
    // never emits `language`; the pattern is corrected in memory (the vendored bytes stay as
    // published).
    let published = std::fs::read_to_string("tests/data/schema/sarif-2.1.0-rtm.5.json").unwrap();
    let broken_pattern = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert_eq!(published.matches(broken_pattern).count(), 2);
    let schema: serde_json::Value = serde_json::from_str(
        &published.replace(broken_pattern, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#),
    )
    .unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&schema)
        .unwrap();
    let tree = scan_tree();
    for target in [tree.path().to_str().unwrap(), "tests/data/configs"] {
        let out = keyroll(&["scan", "--format", "sarif", target]);
        let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&sarif)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
    }
    // The validator does reject a broken log, so the check above means something.
    let broken = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {}}]});
    assert!(!validator.is_valid(&broken));
}

#[test]
fn scan_with_metadata_flags_expired_certificates() {
    let out = keyroll(&[
        "scan",
        "--format",
        "json",
        "--now",
        "2026-01-01T00:00:00Z",
        "--metadata",
        "tests/data/metadata/cbib-adatum-simulatedissuer1-federationmetadata.xml",
        "tests/data/configs/cbib-a-order-claimsaware.config",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // CN=adatum is valid until 2036: nothing to flag.
    assert!(!stdout(&out).contains("\"expired\""));
    assert_eq!(json["entries"].as_array().unwrap().len(), 1);

    let out = keyroll(&[
        "scan",
        "--format",
        "json",
        "--now",
        "2036-06-01T00:00:00Z",
        "--metadata",
        "tests/data/metadata/cbib-adatum-simulatedissuer1-federationmetadata.xml",
        "tests/data/configs/cbib-a-order-claimsaware.config",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = &json["entries"][0]["findings"][1];
    assert_eq!(finding["code"], "expired");
    assert_eq!(
        finding["message"],
        "certificate CN=adatum expired on 2036-01-01T03:00:00Z"
    );
}

#[test]
fn scan_with_a_user_rule_directory_finds_custom_app_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mykeys.toml"),
        "name = \"mykeys\"\ntitle = \"My app's signing key setting\"\nfiles = [\"*.config\"]\nregistries = [\"appSettings\"]\n[entry]\nelement = \"add\"\nthumbprint = \"value\"\nkey = \"key\"\nkeys = [\"TokenSignerCert\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.config"),
        "<configuration>\n  <appSettings>\n    <add key=\"TokenSignerCert\" value=\"6b740dd01652eece2737e05dae36c5d18fcb74c3\"/>\n    <add key=\"Other\" value=\"x\"/>\n  </appSettings>\n</configuration>\n",
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let config = dir.path().join("app.config");
    let out = keyroll(&[
        "scan",
        "--format",
        "json",
        "--rules",
        rules,
        config.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{json:#}");
    assert_eq!(entries[0]["dialect"], "mykeys");
    assert_eq!(entries[0]["key"], "TokenSignerCert");
    assert_eq!(entries[0]["line"], 3);

    std::fs::write(dir.path().join("bad.toml"), "name = 3\n").unwrap();
    let out = keyroll(&["scan", "--rules", rules, config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml:1:8"), "{}", stderr(&out));
}

#[test]
fn completions_and_man_page_are_generated_from_the_cli() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(
        bash.contains("_keyroll()") && bash.contains("thumbprint") && bash.contains("--dry-run")
    );
    let powershell = run(&["completions", "powershell"]);
    assert!(powershell.contains("Register-ArgumentCompleter"));
    let man = run(&["man"]);
    assert!(man.starts_with(".ie") && man.contains(".TH keyroll 1") && man.contains("pr"));
}
