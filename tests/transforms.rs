//! Config transforms, to production: `Web.Release.config` beside `Web.config` decides what
//! the published app trusts. A `Replace`d registry is edited with the base, in the same
//! pull request; any other transform of the trusted keys is reported and never edited; the
//! lockout guard holds for every build configuration.

mod kit;

use std::path::Path;
use std::process::{Command, Output};

use keyroll::decide::plan::PlanError;
use keyroll::model::lock::Lock;
use kit::Key;
use time::macros::datetime;

const NOW: &str = "2026-06-01T00:00:00Z";

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .args(["--now", NOW])
        .current_dir(dir)
        .output()
        .unwrap()
}

fn release_transform(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<configuration xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\">\n  <system.identityModel>\n    <identityConfiguration>\n      <issuerNameRegistry>\n{inner}\n      </issuerNameRegistry>\n    </identityConfiguration>\n  </system.identityModel>\n</configuration>\n"
    )
}

/// A Release transform whose `Replace`d `<trustedIssuers>` holds one entry for `key`, with
/// `attributes` after its thumbprint.
fn replaced_release(key: &Key, attributes: &str) -> String {
    release_transform(&format!(
        "        <trustedIssuers xdt:Transform=\"Replace\">\n          <add thumbprint=\"{}\" {attributes} />\n        </trustedIssuers>",
        key.hex()
    ))
}

fn repo(old: &Key, new: &Key, release: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("idp.xml"), kit::metadata("urn:idp", &[old, new])).unwrap();
    std::fs::create_dir_all(root.join("App")).unwrap();
    std::fs::write(
        root.join("App/Web.config"),
        kit::wif45(&[kit::add(old, "idp")]),
    )
    .unwrap();
    std::fs::write(root.join("App/Web.Release.config"), release).unwrap();
    std::fs::write(
        root.join("keyroll.toml"),
        "[[issuer]]\nname = \"idp\"\nmetadata = [\"idp.xml\"]\n\n[[target]]\nfiles = [\"App/Web.config\"]\nissuers = [\"idp\"]\n",
    )
    .unwrap();
    dir
}

fn valid(cn: &str) -> Key {
    Key::new(
        cn,
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-06-01 0:00 UTC),
    )
}

#[test]
fn a_replaced_release_registry_gets_the_new_key_in_the_same_pull_request_as_the_base() {
    let (old, new) = (valid("old"), valid("new"));
    let release = replaced_release(&old, "name=\"idp\"");
    let dir = repo(&old, &new, &release);
    let out = keyroll(
        dir.path(),
        &["pr", "--dry-run", "--format", "json", "--repo", "o/r"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let proposal = &json["issuers"][0]["proposal"];
    let files: Vec<&str> = proposal["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files.contains(&"App/Web.config"), "{files:?}");
    assert!(files.contains(&"App/Web.Release.config"), "{files:?}");
    // Applied, the Release transform keeps its Replace and now holds both keys.
    let out = keyroll(dir.path(), &["apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(dir.path().join("App/Web.Release.config")).unwrap();
    assert!(
        after.contains(&new.hex()) && after.contains(&old.hex()),
        "{after}"
    );
    assert!(after.contains("xdt:Transform=\"Replace\""));
    // And the next plan is empty.
    let out = keyroll(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_set_attributes_transform_with_a_locator_is_reported_and_never_edited() {
    let (old, new) = (valid("old"), valid("new"));
    let release = release_transform(&format!(
        "        <trustedIssuers>\n          <add thumbprint=\"{}\" name=\"idp-prod\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(thumbprint)\" />\n        </trustedIssuers>",
        old.hex()
    ));
    let dir = repo(&old, &new, &release);
    let out = keyroll(dir.path(), &["apply"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("App/Web.Release.config:7:")
            && stdout.contains("uninterpreted-transform")
            && stdout.contains("xdt:Locator=\"Match(thumbprint)\""),
        "{stdout}"
    );
    // The base still got its key; the transform is byte for byte as it was.
    let base = std::fs::read_to_string(dir.path().join("App/Web.config")).unwrap();
    assert!(base.contains(&new.hex()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("App/Web.Release.config")).unwrap(),
        release
    );
}

/// What a `Replace` puts in place is what the Release app loads: WIF's load rules hold for it
/// as for the base (here ID7010, a third attribute on an entry), in `scan` and `apply` alike,
/// and keyroll does not write into the transform.
#[test]
fn a_replaced_registry_wif_refuses_is_reported_and_never_edited() {
    let (old, new) = (valid("old"), valid("new"));
    let release = replaced_release(&old, "name=\"idp\" note=\"prod\"");
    let dir = repo(&old, &new, &release);
    let names_it = |said: &str| {
        said.lines()
            .any(|l| l.contains("App/Web.Release.config:7:") && l.contains("ID7010"))
    };
    let scan = keyroll(dir.path(), &["scan"]);
    let said = String::from_utf8_lossy(&scan.stdout);
    assert_eq!(scan.status.code(), Some(1), "{said}");
    assert!(names_it(&said), "{said}");
    let out = keyroll(dir.path(), &["apply"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(names_it(&said), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("App/Web.Release.config")).unwrap(),
        release
    );
}

#[test]
fn the_lockout_guard_holds_for_the_release_configuration() {
    // The Release transform trusts only `old`, which left the metadata long ago; the issuer
    // now publishes only a key that is not valid yet. Removing `old` would leave Release
    // with no valid key.
    let old = Key::new(
        "old",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    );
    let future = Key::new(
        "future",
        datetime!(2026-07-01 0:00 UTC),
        datetime!(2027-07-01 0:00 UTC),
    );
    let settings = kit::settings_for(&["a"], "remove_after = \"1d\"\nremove_expired = false");
    let release = replaced_release(&old, "name=\"a\"");
    let targets = || vec![kit::target("App/Web.Release.config", &release, vec![0])];
    let seed = kit::inputs(
        settings.clone(),
        vec![kit::issuer("a", &[&old])],
        targets(),
        Lock::default(),
    );
    let lock = kit::decide(&seed, datetime!(2026-05-01 0:00 UTC)).lock_after;
    // Unsigned and with no key seen before still published, this is also an identity
    // change: accepted in both runs, so that the lockout guard is what stops it.
    let mut gone = kit::inputs(
        settings.clone(),
        vec![kit::issuer("a", &[&future])],
        targets(),
        lock,
    );
    gone.accept_identity_change.insert("a".to_string());
    let lock = kit::decide(&gone, datetime!(2026-05-10 0:00 UTC)).lock_after;
    let mut input = kit::inputs(
        settings,
        vec![kit::issuer("a", &[&future])],
        targets(),
        lock,
    );
    input.accept_identity_change.insert("a".to_string());
    let plan = kit::decide(&input, datetime!(2026-06-01 0:00 UTC));
    assert!(
        plan.errors.iter().any(
            |e| matches!(e, PlanError::Lockout { file, .. } if file == "App/Web.Release.config")
        ),
        "{:?}",
        plan.errors
    );
    assert!(plan.files.is_empty());
}

#[test]
fn scan_transforms_shows_what_every_build_configuration_trusts() {
    let (old, new) = (valid("old"), valid("new"));
    let release = replaced_release(&new, "name=\"idp\"");
    let dir = repo(&old, &new, &release);
    let app = dir.path().join("App");
    std::fs::write(
        app.join("Web.Staging.config"),
        release_transform(&format!(
            "        <trustedIssuers>\n          <add thumbprint=\"{}\" xdt:Transform=\"Remove\" xdt:Locator=\"Match(thumbprint)\" />\n        </trustedIssuers>",
            old.hex()
        )),
    )
    .unwrap();
    std::fs::write(
        app.join("Web.Debug.config"),
        "<configuration xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\"><system.web><compilation xdt:Transform=\"RemoveAttributes(debug)\" /></system.web></configuration>",
    )
    .unwrap();
    let out = keyroll(dir.path(), &["scan", "--transforms", "App"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("App/Web.config: what each build configuration trusts once published"),
        "{text}"
    );
    assert!(
        text.contains(&format!("(base)       {}", old.hex())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "release      {} (Replace in App/Web.Release.config)",
            new.hex()
        )),
        "{text}"
    );
    assert!(
        text.contains("staging      cannot tell: App/Web.Staging.config:7:"),
        "{text}"
    );
    // A transform that leaves the identity sections alone is no finding.
    assert!(!text.contains("Web.Debug.config"), "{text}");
    // The uninterpreted transform is an error-level finding: scan exits 1.
    assert_eq!(out.status.code(), Some(1));
}
