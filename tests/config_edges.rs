//! Config files at the edges of what keyroll reads, through the binary:
//! - namespace declarations whose values hold `>`;
//! - per-environment appSettings in a config transform;
//! - a removal and an addition at a registry's last entry in one run;
//! - an `<issuerNameRegistry>` without `type=`;
//! - targets in hidden folders;
//! - `configSource` references .NET refuses.

mod kit;

use std::path::Path;
use std::process::{Command, Output};

use kit::Key;
use time::macros::datetime;

const NOW: &str = "2026-06-01T00:00:00Z";

fn keyroll_at(dir: &Path, now: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(args)
        .args(["--now", now])
        .current_dir(dir)
        .output()
        .unwrap()
}

fn keyroll(dir: &Path, args: &[&str]) -> Output {
    keyroll_at(dir, NOW, args)
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `keyroll apply`, which must succeed, and then `path`'s text.
fn applied(dir: &Path, path: &str) -> String {
    let out = keyroll(dir, &["apply"]);
    assert!(out.status.success(), "{}", said(&out));
    std::fs::read_to_string(dir.join(path)).unwrap()
}

fn valid(cn: &str) -> Key {
    Key::new(
        cn,
        datetime!(2026-01-01 0:00 UTC),
        datetime!(2027-06-01 0:00 UTC),
    )
}

/// A folder with issuer `idp` (metadata idp.xml publishing `keys`), a target `files` glob,
/// and `configs` written at their paths.
fn repo(keys: &[&Key], files: &str, configs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("idp.xml"), kit::metadata("urn:idp", keys)).unwrap();
    for (path, text) in configs {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(
        root.join("keyroll.toml"),
        format!(
            "[[issuer]]\nname = \"idp\"\nmetadata = [\"idp.xml\"]\n\n[[target]]\nfiles = [\"{files}\"]\nissuers = [\"idp\"]\n"
        ),
    )
    .unwrap();
    dir
}

/// A declared WIF 4.5 section whose `<identityConfiguration>` holds `registry`.
fn wif45_with(registry: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel\" />\n  </configSections>\n  <system.identityModel>\n    <identityConfiguration>\n{registry}\n    </identityConfiguration>\n  </system.identityModel>\n</configuration>\n"
    )
}

const CONFIGURATION_BASED: &str =
    "System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel";

#[test]
fn a_namespace_declaration_holding_a_gt_does_not_end_the_start_tag() {
    // `<trustedIssuers xmlns:a="urn:a>b" />` is self-closing: the `>` in the declaration's
    // value is not the end of its start tag (keyroll used to panic adding to it).
    let new = valid("new");
    let web = wif45_with(&format!(
        "      <issuerNameRegistry type=\"{CONFIGURATION_BASED}\">\n        <trustedIssuers xmlns:a=\"urn:a>b\" />\n      </issuerNameRegistry>"
    ));
    let dir = repo(&[&new], "Web.config", &[("Web.config", &web)]);
    let after = applied(dir.path(), "Web.config");
    assert!(
        after.contains(&format!(
            "<trustedIssuers xmlns:a=\"urn:a>b\">\n          <add thumbprint=\"{}\" name=\"urn:idp\" />\n        </trustedIssuers>",
            new.hex()
        )),
        "{after}"
    );

    // WIF counts each declaration as an attribute: this `<add>` has three (ID7010), though
    // the first declaration's value holds a `>`.
    let bad = kit::wif45(&[format!(
        "<add thumbprint=\"{}\" xmlns:a=\"u>\" xmlns:b=\"v\"/>",
        new.hex()
    )]);
    std::fs::write(dir.path().join("Web.config"), &bad).unwrap();
    let out = keyroll(dir.path(), &["scan", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains("ID7010: <add> has 3 attributes"),
        "{}",
        said(&out)
    );
}

fn app_settings(entries: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<configuration xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\">\n  <appSettings>\n{entries}\n  </appSettings>\n</configuration>\n"
    )
}

#[test]
fn a_per_environment_app_setting_in_a_transform_is_reported_never_skipped() {
    let (old, new) = (valid("old"), valid("new"));
    let base = format!(
        "<?xml version=\"1.0\"?>\n<configuration>\n  <appSettings>\n    <add key=\"ida:IssuerThumbprint\" value=\"{}\" />\n    <add key=\"Environment\" value=\"dev\" />\n  </appSettings>\n</configuration>\n",
        old.hex()
    );
    // Release puts its own value back at publish time, whatever the base holds.
    let release = app_settings(&format!(
        "    <add key=\"Environment\" value=\"prod\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />\n    <add key=\"ida:IssuerThumbprint\" value=\"{}\" xdt:Transform=\"SetAttributes\" xdt:Locator=\"Match(key)\" />",
        old.hex()
    ));
    let dir = repo(
        &[&old, &new],
        "Web.config",
        &[("Web.config", &base), ("Web.Release.config", &release)],
    );
    for command in ["plan", "apply"] {
        let out = keyroll(dir.path(), &[command]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", said(&out));
        let text = said(&out);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("uninterpreted-transform"))
            .collect();
        // The thumbprint setting, at its line; the unrelated setting is no finding.
        assert_eq!(lines.len(), 1, "{command}: {text}");
        assert!(
            lines[0].contains("Web.Release.config:5:")
                && lines[0].contains("xdt:Locator=\"Match(key)\""),
            "{command}: {text}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Web.Release.config")).unwrap(),
        release
    );

    // A Replace'd appSettings is what Release holds: no finding (and it is planned with the
    // base, as a Replace'd WIF registry is).
    let replaced = app_settings(&format!(
        "    <add key=\"ida:IssuerThumbprint\" value=\"{}\" />",
        old.hex()
    ))
    .replace("<appSettings>", "<appSettings xdt:Transform=\"Replace\">");
    std::fs::write(dir.path().join("Web.Release.config"), &replaced).unwrap();
    let out = keyroll(dir.path(), &["plan"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        !said(&out).contains("uninterpreted-transform"),
        "{}",
        said(&out)
    );
}

#[test]
fn removing_the_last_entry_with_trailing_blanks_and_adding_compose() {
    let kept = valid("kept");
    let old = Key::new(
        "old",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-03-01 0:00 UTC),
    );
    let new = valid("new");
    // The entry that goes is the last one, with blanks after it on its line.
    let web = kit::wif45(&[
        kit::add(&kept, "idp"),
        format!("{}  ", kit::add(&old, "idp")),
    ]);
    let dir = repo(&[&kept, &old], "Web.config", &[("Web.config", &web)]);
    let out = keyroll_at(dir.path(), "2026-02-01T00:00:00Z", &["apply"]);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Web.config")).unwrap(),
        web
    );
    // `old` expired and left the metadata, `new` arrived: one run drops one and adds the other.
    std::fs::write(
        dir.path().join("idp.xml"),
        kit::metadata("urn:idp", &[&kept, &new]),
    )
    .unwrap();
    let out = keyroll(dir.path(), &["apply"]);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Web.config")).unwrap(),
        kit::wif45(&[kit::add(&kept, "idp"), kit::add(&new, "idp")])
    );
}

#[test]
fn a_registry_without_type_is_configuration_based_and_gets_a_trusted_issuers() {
    let new = valid("new");
    let web = wif45_with("      <issuerNameRegistry>\n      </issuerNameRegistry>");
    let dir = repo(&[&new], "Web.config", &[("Web.config", &web)]);
    let after = applied(dir.path(), "Web.config");
    assert!(
        after.contains(&format!(
            "<issuerNameRegistry>\n        <trustedIssuers>\n          <add thumbprint=\"{}\" name=\"urn:idp\" />\n        </trustedIssuers>\n      </issuerNameRegistry>",
            new.hex()
        )),
        "{after}"
    );
}

#[test]
fn a_target_in_a_hidden_folder_is_planned_as_pr_lists_it_and_the_git_folder_never() {
    let (old, new) = (valid("old"), valid("new"));
    let web = kit::wif45(&[kit::add(&old, "idp")]);
    let dir = repo(
        &[&old, &new],
        "**/Web.config",
        &[(".deploy/Web.config", &web)],
    );
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(git.status.success(), "{}", said(&git));
    std::fs::write(dir.path().join(".git/Web.config"), &web).unwrap();
    let out = keyroll(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains(".deploy/Web.config"), "{}", said(&out));
    assert!(!said(&out).contains(".git/Web.config"), "{}", said(&out));
    let after = applied(dir.path(), ".deploy/Web.config");
    assert!(after.contains(&new.hex()), "{after}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".git/Web.config")).unwrap(),
        web
    );
}

/// A `configSource` .NET refuses (`/` in it, white space around it, or a file above the
/// config's own folder) stops the app at start: keyroll names it as `config-source-invalid`
/// at its line, in `plan` and `scan` alike, and never edits the fragment it names (which
/// belongs to another app, or to none). A `\\` reference below the folder is followed.
#[test]
fn a_config_source_dotnet_refuses_is_reported_and_never_followed() {
    let old = valid("old");
    let fragment = format!(
        "<system.identityModel>\n  <identityConfiguration>\n    <issuerNameRegistry type=\"{CONFIGURATION_BASED}\">\n      <trustedIssuers>\n        <add thumbprint=\"{}\" name=\"idp\" />\n      </trustedIssuers>\n    </issuerNameRegistry>\n  </identityConfiguration>\n</system.identityModel>\n",
        old.hex()
    );
    let web = |reference: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel\" />\n  </configSections>\n  <system.identityModel configSource=\"{reference}\" />\n</configuration>\n"
        )
    };
    let new = valid("new");
    for (reference, why) in [
        (
            "..\\Shared\\identity.config",
            "not in the config file's folder or below it",
        ),
        ("App_Data/identity.config", "'/' is not allowed"),
        (" identity.config", "white space around it"),
    ] {
        let dir = repo(
            &[&old, &new],
            "App/Web.config",
            &[
                ("App/Web.config", &web(reference)),
                ("Shared/identity.config", &fragment),
                ("App/App_Data/identity.config", &fragment),
                ("App/identity.config", &fragment),
            ],
        );
        let out = keyroll(dir.path(), &["apply"]);
        let text = said(&out);
        assert_eq!(out.status.code(), Some(1), "{reference}: {text}");
        assert!(text.contains("App/Web.config:6"), "{reference}: {text}");
        assert!(text.contains(why), "{reference}: {text}");
        for path in [
            "Shared/identity.config",
            "App/App_Data/identity.config",
            "App/identity.config",
        ] {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(path)).unwrap(),
                fragment,
                "{reference}: {path} untouched"
            );
        }
        let out = keyroll(dir.path(), &["scan", "App"]);
        let text = said(&out);
        assert!(
            text.contains("config-source-invalid"),
            "{reference}: {text}"
        );
        assert!(text.contains(why), "{reference}: {text}");
    }

    // `Configuration\\identity.config`, in a folder below the config's: followed and rolled.
    let dir = repo(
        &[&old, &new],
        "App/Web.config",
        &[
            ("App/Web.config", &web("Configuration\\identity.config")),
            ("App/Configuration/identity.config", &fragment),
        ],
    );
    let rolled = applied(dir.path(), "App/Configuration/identity.config");
    assert!(rolled.contains(&new.hex()), "{rolled}");
}
