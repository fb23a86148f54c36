//! The rollover timeline a reviewer sees: Mermaid `gantt` blocks made by the real binary
//! (`plan --format markdown`, `pr --dry-run`'s body) for the embedded demo and three
//! rollovers, then opened with the pinned `mermaid` package in headless Chromium (Debian's
//! `chromium`, driven by `playwright-core`; both installed by scripts/test). Each block must
//! render to an SVG without a parse error, with one bar per key of the issuer and labels that
//! read as the certificate subjects do (`:`, `#`, `;` and quotes escaped, then shown). The
//! screenshots stay in `target/tmp/timeline/` as the test's output.
//!
//! Linux only: the browser is Debian's package (CI's Linux job runs it through `.ci/run`);
//! the Windows and macOS jobs run the rest of the suite without a browser installed.
#![cfg(target_os = "linux")]

mod common;
mod kit;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Repo, assert_contains, assert_ok, stdout};
use kit::Key;
use time::macros::datetime;

const ADFS: &str = "http://adfs.contoso.com/adfs/services/trust";
const ENTRA: &str = "https://sts.windows.net/7f3c2a1e-0000-4000-8000-000000000001/";
/// A subject with every character Mermaid reads: it must show as written.
const ODD_SUBJECT: &str = "accounts: \"contoso\" #1; eu";

fn metadata(entity_id: &str, signing: &[&Key]) -> String {
    let keys: String = signing
        .iter()
        .map(|k| k.key_descriptor("signing"))
        .collect();
    format!(
        "<EntityDescriptor ID=\"_1\" entityID=\"{entity_id}\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><RoleDescriptor xsi:type=\"fed:SecurityTokenServiceType\" protocolSupportEnumeration=\"http://docs.oasis-open.org/wsfed/federation/200706\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:fed=\"http://docs.oasis-open.org/wsfed/federation/200706\">{keys}</RoleDescriptor></EntityDescriptor>"
    )
}

fn config(entity_id: &str, thumbprints: &[&str]) -> String {
    let adds: String = thumbprints
        .iter()
        .map(|t| format!("<add thumbprint=\"{t}\" name=\"{entity_id}\" />"))
        .collect();
    format!(
        "<configuration><configSections><section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\" /></configSections><system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\"><trustedIssuers>{adds}</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>"
    )
}

fn repo(issuer: &str, entity_id: &str, trusted: &[&str], signing: &[&Key]) -> Repo {
    let repo = Repo::with_settings(&format!(
        "[[issuer]]\nname = \"{issuer}\"\nmetadata = [\"metadata.xml\"]\nentity_id = \"{entity_id}\"\n\n[[target]]\nfiles = [\"**/web.config\"]\nissuers = [\"{issuer}\"]\n"
    ));
    repo.write("site/web.config", &config(entity_id, trusted));
    repo.write("metadata.xml", &metadata(entity_id, signing));
    repo
}

/// `plan --format markdown` at `now`, which must succeed.
fn markdown(repo: &Repo, now: &str, extra: &[&str]) -> String {
    let out = repo.run(&[&["plan", "--format", "markdown"], extra].concat(), now);
    assert_ok(&out);
    stdout(&out)
}

/// A scenario's Markdown and how many keys its one issuer has.
struct Scenario {
    name: &'static str,
    markdown: String,
    keys: usize,
}

/// AD FS mid-way through AutoCertificateRollover: the next key published and added, not
/// promoted yet; the old one still current.
fn adfs_midway() -> Scenario {
    let old = Key::new(
        "ADFS Signing - adfs.contoso.com",
        datetime!(2025-02-01 0:00 UTC),
        datetime!(2026-02-01 0:00 UTC),
    );
    let new = Key::new(
        "ADFS Signing - adfs.contoso.com",
        datetime!(2026-01-12 01:00 UTC),
        datetime!(2027-01-12 01:00 UTC),
    );
    let repo = repo("contoso-adfs", ADFS, &[&old.hex()], &[&old]);
    repo.apply("2026-01-01T00:00:00Z");
    repo.write("metadata.xml", &metadata(ADFS, &[&old, &new]));
    repo.apply("2026-01-12T00:30:00Z");
    let md = markdown(&repo, "2026-01-14T09:00:00Z", &[]);
    // The promotion mark: the next key's NotBefore plus AD FS's five days.
    assert_contains(&md, ":milestone, p1, 2026-01-17, 0d");
    Scenario {
        name: "adfs-midway",
        markdown: md,
        keys: 2,
    }
}

/// Entra ID rolls at once: the old key leaves the metadata the day the new one appears; the
/// old one is kept through the grace period (marked), then removed (the last scenario).
fn entra(now: &str, name: &'static str) -> Scenario {
    let old = Key::new(
        ODD_SUBJECT,
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    let new = Key::new(
        ODD_SUBJECT,
        datetime!(2026-03-01 0:00 UTC),
        datetime!(2028-03-01 0:00 UTC),
    );
    let repo = repo("entra", ENTRA, &[&old.hex()], &[&old]);
    repo.apply("2026-03-01T00:00:00Z");
    repo.write("metadata.xml", &metadata(ENTRA, &[&new]));
    let accept = ["--accept-identity-change", "entra"];
    assert_ok(&repo.run(&[&["apply"], &accept[..]].concat(), "2026-03-02T08:00:00Z"));
    let md = markdown(&repo, now, &[]);
    Scenario {
        name,
        markdown: md,
        keys: 2,
    }
}

fn demo() -> Scenario {
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "pr",
            "--dry-run",
            "--now",
            "2026-11-23T12:00:00Z",
            "--config",
        ])
        .arg(common::demo_dir().join("keyroll.toml"))
        .output()
        .unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    let body = text
        .split("--- pull request body\n")
        .nth(1)
        .expect("the dry run shows the body")
        .to_string();
    Scenario {
        name: "demo",
        markdown: body,
        keys: 2,
    }
}

#[test]
fn the_same_plan_and_now_give_the_same_timeline() {
    let a = adfs_midway();
    let b = adfs_midway();
    // Different certificates each time: compare the picture without the thumbprints.
    let shape = |md: &str| -> Vec<String> {
        md.lines()
            .skip_while(|l| *l != "```mermaid")
            .take_while(|l| *l != "```")
            .map(|l| {
                l.split_whitespace()
                    .filter(|w| w.len() != 8)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert!(!shape(&a.markdown).is_empty());
    assert_eq!(shape(&a.markdown), shape(&b.markdown));
    let demo = demo().markdown;
    assert_eq!(
        demo,
        self::demo().markdown,
        "the demo's body is byte for byte stable"
    );
    assert_contains(&demo, "\n```mermaid\ngantt\n");
    assert_contains(&demo, "    today :milestone, now, 2026-11-23, 0d\n");
}

#[test]
fn grace_and_removal_are_marked_and_labels_escaped() {
    let during = entra("2026-03-04T00:00:00Z", "entra-emergency").markdown;
    assert_contains(&during, "grace ends");
    assert_contains(&during, ":milestone, g0, 2026-03-09, 0d");
    assert_contains(&during, ":milestone, r0, 2026-03-09, 0d");
    // The subject as keyroll shows it (RFC 4514 escapes `"` and `;` with `\`), every
    // character Mermaid reads written as an entity.
    assert_contains(
        &during,
        "accounts#58; #92;#34;contoso#92;#34; #35;1#92;#59; eu",
    );
    let past = entra("2026-03-12T00:00:00Z", "past-grace").markdown;
    assert_contains(&past, ":crit, k0,");
    assert_contains(&past, ":milestone, r0, 2026-03-12, 0d");
}

#[test]
fn a_single_key_without_a_rollover_is_a_note_not_a_picture() {
    let only = Key::current("login.contoso.test");
    let repo = repo("single", ENTRA, &[&only.hex()], &[&only]);
    let md = markdown(&repo, "2026-03-01T00:00:00Z", &[]);
    assert!(!md.contains("```mermaid"), "{md}");
    assert_contains(
        &md,
        "_No timeline for `single`: a single key and no date of a rollover to draw._",
    );
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn the_timelines_render_in_a_real_browser_with_one_bar_per_key() {
    let modules = browser_dir().join("node_modules");
    assert!(
        modules.join("mermaid").is_dir() && modules.join("playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run scripts/test (it runs npm ci there)"
    );
    let chromium = std::env::var("KEYROLL_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/test as root (it installs Debian's chromium)"
    );
    let scenarios = [
        demo(),
        adfs_midway(),
        entra("2026-03-04T00:00:00Z", "entra-emergency"),
        entra("2026-03-12T00:00:00Z", "past-grace"),
    ];
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut files = Vec::new();
    for s in &scenarios {
        let file = out_dir.join(format!("{}.md", s.name));
        std::fs::write(&file, &s.markdown).unwrap();
        files.push(file);
    }
    let out = Command::new("node")
        .arg(browser_dir().join("render.mjs"))
        .arg(&out_dir)
        .args(&files)
        .output()
        .expect("node runs");
    assert_ok(&out);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(
        results.len(),
        scenarios.len(),
        "one block per scenario: {results:#?}"
    );
    for (s, r) in scenarios.iter().zip(results) {
        assert_eq!(r["error"], serde_json::Value::Null, "{}: {r:#}", s.name);
        assert_eq!(r["svg"], true, "{}: {r:#}", s.name);
        assert_eq!(r["errorText"], "", "{}: {r:#}", s.name);
        assert_eq!(r["bars"], s.keys, "{}: one bar per key: {r:#}", s.name);
        assert!(r["milestones"].as_u64().unwrap() >= 2, "{}: {r:#}", s.name);
        let shot = PathBuf::from(r["screenshot"].as_str().unwrap());
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "{shot:?}");
        let labels = r["labels"].to_string();
        assert!(labels.contains("today"), "{}: {labels}", s.name);
    }
    // The escaped subject is shown as the certificate has it.
    let entra_labels = results[2]["labels"].as_array().unwrap();
    assert!(
        entra_labels.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains(r#"accounts: \"contoso\" #1\; eu"#)),
        "{entra_labels:?}"
    );
    assert_eq!(results[0]["title"], "Keys of contoso-adfs");
}
