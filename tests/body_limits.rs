//! Bodies that always fit: a plan changing 500 files, published by the real binary
//! (`pr --dry-run`, `--write-summary`), gives a pull request body and a job summary under
//! 58,000 characters (GitHub refuses 65,536; Renovate keeps to 58,000), cut in the stated
//! order (the largest diffs, then the per-file detail) with a line saying what was cut and
//! where to see it, and the hidden marker still last.

mod common;
mod kit;

use common::{Repo, assert_contains, assert_ok, stdout};
use kit::Key;

const ADFS: &str = "http://adfs.contoso.com/adfs/services/trust";
const LIMIT: usize = 58_000;

fn metadata(signing: &[&Key]) -> String {
    let keys: String = signing
        .iter()
        .map(|k| k.key_descriptor("signing"))
        .collect();
    format!(
        "<EntityDescriptor ID=\"_1\" entityID=\"{ADFS}\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><RoleDescriptor xsi:type=\"fed:SecurityTokenServiceType\" protocolSupportEnumeration=\"http://docs.oasis-open.org/wsfed/federation/200706\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:fed=\"http://docs.oasis-open.org/wsfed/federation/200706\">{keys}</RoleDescriptor></EntityDescriptor>"
    )
}

/// A web.config trusting `thumbprint`, padded with `filler` lines of app settings before the
/// registry (a large file whose diff is long only in context lines' reach).
fn config(thumbprint: &str, filler: usize) -> String {
    let settings: String = (0..filler)
        .map(|i| format!("    <add key=\"setting{i}\" value=\"{i}\" />\n"))
        .collect();
    format!(
        "<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\" />\n  </configSections>\n  <appSettings>\n{settings}  </appSettings>\n  <system.identityModel>\n    <identityConfiguration>\n      <issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\">\n        <trustedIssuers>\n          <add thumbprint=\"{thumbprint}\" name=\"{ADFS}\" />\n        </trustedIssuers>\n      </issuerNameRegistry>\n    </identityConfiguration>\n  </system.identityModel>\n</configuration>\n"
    )
}

fn repo(files: usize) -> (Repo, Key, Key) {
    let old = Key::current("ADFS Signing - adfs.contoso.com");
    let new = Key::current("ADFS Signing - adfs.contoso.com");
    let repo = Repo::with_settings(&format!(
        "[[issuer]]\nname = \"contoso-adfs\"\nmetadata = [\"metadata.xml\"]\nentity_id = \"{ADFS}\"\n\n[[target]]\nfiles = [\"**/Web.config\"]\nissuers = [\"contoso-adfs\"]\n\n[pr]\nrepository = \"contoso/identity-configs\"\nbase = \"main\"\n"
    ));
    repo.write("metadata.xml", &metadata(&[&old, &new]));
    for i in 0..files {
        repo.write(
            &format!("apps/service-{i:03}/src/Web.config"),
            &config(&old.hex(), 3),
        );
    }
    (repo, old, new)
}

fn dry_run(repo: &Repo, summary: &std::path::Path) -> (String, String) {
    let out = repo.run(
        &[
            "pr",
            "--dry-run",
            "--write-summary",
            summary.to_str().unwrap(),
        ],
        "2026-03-01T00:00:00Z",
    );
    assert_ok(&out);
    let text = stdout(&out);
    let body = text
        .split("--- pull request body\n")
        .nth(1)
        .expect("the dry run shows the body")
        .split("\nGitHub API calls")
        .next()
        .unwrap()
        .to_string();
    (body, std::fs::read_to_string(summary).unwrap())
}

#[test]
fn five_hundred_changed_files_give_a_body_and_summary_under_the_limit_saying_what_was_cut() {
    let (repo, _old, new) = repo(500);
    let summary = repo.path("summary.md");
    let (body, summary) = dry_run(&repo, &summary);
    assert!(
        body.chars().count() < LIMIT,
        "{} characters",
        body.chars().count()
    );
    assert!(
        summary.chars().count() < LIMIT,
        "{} characters",
        summary.chars().count()
    );
    println!(
        "500 files: body {} characters, summary {} characters",
        body.chars().count(),
        summary.chars().count()
    );
    // Cut in order: diffs first, then the per-file detail; said once, with where to look.
    assert_contains(
        &body,
        "> **Shortened to stay under GitHub's size limit**: left out the diffs of",
    );
    assert_contains(
        &body,
        "the per-file detail (each file's changes and reasons)",
    );
    assert_contains(&body, "`keyroll plan --format markdown`");
    // Every file is still named, on one line each.
    assert_eq!(body.matches(": 1 change\n").count(), 500);
    // What stays: the summary line, the key table, the timeline, the checklist, the marker.
    assert_contains(&body, "### contoso-adfs publishes 1 signing certificate");
    assert_contains(&body, &new.hex());
    assert_contains(&body, "```mermaid\ngantt\n");
    assert_contains(&body, "**Before merging**");
    assert!(
        body.trim_end().ends_with("-->")
            && body.contains("<!-- keyroll: {\"issuer\":\"contoso-adfs\""),
        "the marker is last: {}",
        &body[body.len() - 300..]
    );
    // Every diff block opened is closed.
    assert_eq!(
        body.matches("```diff").count(),
        body.matches("\n```\n\n</details>").count()
    );
    // The plan itself still has all 500.
    let out = repo.run(&["plan", "--format", "markdown"], "2026-03-01T00:00:00Z");
    assert_eq!(stdout(&out).matches("```diff").count(), 500);
}

#[test]
fn the_largest_diffs_are_left_out_first_and_small_ones_kept_whole() {
    let (repo, _old, _new) = repo(3);
    // One file whose diff is far over the limit on its own: long lines next to the change.
    let path = "apps/service-001/src/Web.config";
    let long_lines: String = (0..3)
        .map(|i| format!("          <!-- note {i}: {} -->\n", "x".repeat(30_000)))
        .collect();
    let padded = repo.read(path).replace(
        "        <trustedIssuers>\n",
        &format!("        <trustedIssuers>\n{long_lines}"),
    );
    repo.write(path, &padded);
    let summary = repo.path("summary.md");
    let (body, _) = dry_run(&repo, &summary);
    assert!(body.chars().count() < LIMIT, "{}", body.chars().count());
    // The two small files' diffs are whole; the large one is cut or left out, and said so.
    for small in [
        "apps/service-000/src/Web.config",
        "apps/service-002/src/Web.config",
    ] {
        assert_contains(&body, &format!("<summary><code>{small}</code></summary>"));
    }
    assert_contains(
        &body,
        "> **Shortened to stay under GitHub's size limit**: left out",
    );
    assert_contains(&body, "more lines cut to stay under GitHub's size limit");
    // Per-file detail is kept: only the diff had to go.
    assert!(!body.contains("the per-file detail"), "{body}");
}
