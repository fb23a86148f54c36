//! Rollover scenarios end to end: certificates generated here (rcgen), metadata rewritten
//! between runs, `--now` stepping through the days, and the real binary doing the work.

mod common;
mod kit;

use std::path::Path;
use std::process::Command;

use common::{Repo, assert_contains, assert_ok};
use kit::Key;
use time::macros::datetime;

/// WS-Federation metadata in the shape AD FS publishes.
fn metadata(entity_id: &str, signing: &[&Key], encryption: &[&Key]) -> String {
    let keys: String = signing
        .iter()
        .map(|k| k.key_descriptor("signing"))
        .chain(encryption.iter().map(|k| k.key_descriptor("encryption")))
        .collect();
    format!(
        "<EntityDescriptor ID=\"_1\" entityID=\"{entity_id}\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><RoleDescriptor xsi:type=\"fed:SecurityTokenServiceType\" protocolSupportEnumeration=\"http://docs.oasis-open.org/wsfed/federation/200706\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:fed=\"http://docs.oasis-open.org/wsfed/federation/200706\">{keys}</RoleDescriptor></EntityDescriptor>"
    )
}

const ADFS: &str = "http://adfs.contoso.com/adfs/services/trust";

/// A WIF 4.5 web.config as Visual Studio writes it: BOM, CRLF, spaces.
fn wif45_config(thumbprints: &[&str]) -> String {
    let adds: String = thumbprints
        .iter()
        .map(|t| format!("          <add thumbprint=\"{t}\" name=\"{ADFS}\" />\r\n"))
        .collect();
    format!(
        "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n  <configSections>\r\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\" />\r\n  </configSections>\r\n  <system.identityModel>\r\n    <identityConfiguration>\r\n      <audienceUris>\r\n        <add value=\"https://app.contoso.com/\" />\r\n      </audienceUris>\r\n      <issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\">\r\n        <trustedIssuers>\r\n{adds}        </trustedIssuers>\r\n      </issuerNameRegistry>\r\n    </identityConfiguration>\r\n  </system.identityModel>\r\n</configuration>"
    )
}

fn adfs_settings() -> String {
    format!(
        "[[issuer]]\nname = \"contoso-adfs\"\nmetadata = [\"metadata.xml\"]\nentity_id = \"{ADFS}\"\n\n[[target]]\nfiles = [\"**/web.config\"]\nissuers = [\"contoso-adfs\"]\n"
    )
}

/// A repository tracking the AD FS issuer: site/web.config trusts `trusted`, metadata.xml
/// publishes `signing`.
fn adfs_repo(trusted: &[&str], signing: &[&Key]) -> Repo {
    let repo = Repo::with_settings(&adfs_settings());
    repo.write("site/web.config", &wif45_config(trusted));
    repo.write("metadata.xml", &metadata(ADFS, signing, &[]));
    repo
}

fn changes(plan: &serde_json::Value) -> Vec<(String, String, String)> {
    plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["changes"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["thumbprint"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn adfs_auto_rollover_adds_early_keeps_both_and_removes_after_grace() {
    let old = Key::new(
        "ADFS Signing - adfs.contoso.com",
        datetime!(2025-02-01 0:00 UTC),
        datetime!(2026-02-01 0:00 UTC),
    );
    // Generated 20 days before the old one expires; valid from its generation time.
    let new = Key::new(
        "ADFS Signing - adfs.contoso.com",
        datetime!(2026-01-12 01:00 UTC),
        datetime!(2027-01-12 01:00 UTC),
    );
    let repo = Repo::with_settings(&adfs_settings());
    repo.write("site/web.config", &wif45_config(&[&old.hex()]));
    let original = repo.read("site/web.config");

    // Day 0: only the current key. Nothing to change in the config; the lock starts.
    repo.write("metadata.xml", &metadata(ADFS, &[&old], &[]));
    repo.apply("2026-01-01T00:00:00Z");
    assert_eq!(repo.read("site/web.config"), original);
    assert!(repo.lock().unwrap().contains(&old.hex()));

    // The next key is published (not valid for another half hour): added at once, beside the old.
    repo.write("metadata.xml", &metadata(ADFS, &[&old, &new], &[]));
    let plan = repo.plan_json("2026-01-12T00:30:00Z");
    let c = changes(&plan);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "add");
    assert_eq!(c[0].1, new.hex());
    assert_contains(&c[0].2, "published in metadata since 2026-01-12T00:30:00Z");
    assert_contains(&c[0].2, "not yet valid");
    repo.apply("2026-01-12T00:30:00Z");
    let both = wif45_config(&[&old.hex(), &new.hex()]);
    assert_eq!(repo.read("site/web.config"), both);

    // Promotion five days later: both stay; a second apply in a row changes nothing at all.
    let lock_before = repo.lock();
    repo.apply("2026-01-17T00:30:00Z");
    repo.apply("2026-01-17T00:30:00Z");
    assert_eq!(repo.read("site/web.config"), both);
    assert_eq!(
        repo.lock(),
        lock_before,
        "the lock changes only when something changed"
    );

    // The old key leaves the metadata: kept through the 7-day grace period.
    repo.write("metadata.xml", &metadata(ADFS, &[&new], &[]));
    repo.apply("2026-01-20T00:00:00Z");
    assert_eq!(repo.read("site/web.config"), both);
    assert!(
        repo.lock()
            .unwrap()
            .contains("missing_since = \"2026-01-20T00:00:00Z\"")
    );
    let plan = repo.plan_json("2026-01-26T23:59:00Z");
    assert!(changes(&plan).is_empty());

    // Grace elapsed: removed, with the reason; the result is the original layout, new key only.
    let plan = repo.plan_json("2026-01-27T00:00:00Z");
    let c = changes(&plan);
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("remove", old.hex().as_str())
    );
    assert_eq!(
        c[0].2,
        "absent from metadata since 2026-01-20T00:00:00Z, grace of 7 days elapsed"
    );
    repo.apply("2026-01-27T00:00:00Z");
    assert_eq!(
        repo.read("site/web.config"),
        original.replace(&old.hex(), &new.hex())
    );
    assert!(
        repo.lock().unwrap().contains(&old.hex()),
        "remembered as withdrawn until it expires"
    );
    let out = repo.run(&["plan", "--detailed-exitcode"], "2026-01-28T00:00:00Z");
    assert_eq!(out.status.code(), Some(0));

    // An old document, replayed, lists the withdrawn key again: it is not trusted again
    // (nothing to change, the reason given), unless the run accepts an identity change.
    repo.write("metadata.xml", &metadata(ADFS, &[&old, &new], &[]));
    let plan = repo.plan_json("2026-01-28T00:00:00Z");
    assert!(changes(&plan).is_empty(), "{plan:#}");
    let text = plan.to_string();
    assert_contains(&text, "published again, but the issuer withdrew it");
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&old.hex())),
        "{plan:#}"
    );
    // Nor does it continue the issuer's identity: a document listing it and a key never
    // seen, without the current one, is an identity change.
    let stranger = Key::new(
        "ADFS Signing - adfs.contoso.com",
        datetime!(2026-01-20 0:00 UTC),
        datetime!(2027-01-20 0:00 UTC),
    );
    repo.write("metadata.xml", &metadata(ADFS, &[&old, &stranger], &[]));
    let out = repo.run(&["plan", "--detailed-exitcode"], "2026-01-28T00:00:00Z");
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&String::from_utf8_lossy(&out.stdout), "identity change");
    repo.write("metadata.xml", &metadata(ADFS, &[&old, &new], &[]));
    let out = repo.run(&["plan", "--detailed-exitcode"], "2026-01-28T00:00:00Z");
    assert_eq!(out.status.code(), Some(0));
    let out = repo.run(
        &[
            "plan",
            "--format",
            "json",
            "--accept-identity-change",
            "contoso-adfs",
        ],
        "2026-01-28T00:00:00Z",
    );
    let accepted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = changes(&accepted);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("add", old.hex().as_str())
    );

    // Once it has expired, keyroll.lock forgets it.
    repo.write("metadata.xml", &metadata(ADFS, &[&new], &[]));
    repo.apply("2026-02-02T00:00:00Z");
    assert!(
        !repo.lock().unwrap().contains(&old.hex()),
        "forgotten once expired and trusted nowhere"
    );
}

#[test]
fn emergency_roll_adds_new_key_at_once_and_removes_old_after_grace() {
    let old = Key::current("login.contoso.test");
    let new = Key::new(
        "login.contoso.test",
        datetime!(2026-03-01 0:00 UTC),
        datetime!(2028-03-01 0:00 UTC),
    );
    let repo = adfs_repo(&[&old.lower()], &[&old]);
    repo.apply("2026-03-01T00:00:00Z");

    // The old key vanishes from metadata at once. In unsigned metadata that is an identity
    // change (no key seen before is still published): nothing changes until it is accepted.
    repo.write("metadata.xml", &metadata(ADFS, &[&new], &[]));
    let out = repo.run(&["plan", "--detailed-exitcode"], "2026-03-02T08:00:00Z");
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&String::from_utf8_lossy(&out.stdout), "identity change");
    let accept = ["--accept-identity-change", "contoso-adfs"];
    let out = repo.run(
        &[&["plan", "--detailed-exitcode"], &accept[..]].concat(),
        "2026-03-02T08:00:00Z",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_ok(&repo.run(&[&["apply"], &accept[..]].concat(), "2026-03-02T08:00:00Z"));
    // Added in the file's own (lowercase) style, the old one still there.
    assert_eq!(
        repo.read("site/web.config"),
        wif45_config(&[&old.lower(), &new.lower()])
    );
    repo.apply("2026-03-09T07:59:00Z");
    assert_eq!(
        repo.read("site/web.config"),
        wif45_config(&[&old.lower(), &new.lower()])
    );
    repo.apply("2026-03-09T08:00:00Z");
    assert_eq!(repo.read("site/web.config"), wif45_config(&[&new.lower()]));
}

fn vinr_config(t1: &[&str], t2: &[&str]) -> String {
    let authority = |name: &str, keys: &[&str]| {
        let adds: String = keys
            .iter()
            .map(|k| format!("          <add thumbprint=\"{k}\" />\n"))
            .collect();
        format!(
            "      <authority name=\"{name}\">\n        <keys>\n{adds}        </keys>\n        <validIssuers>\n          <add name=\"{name}\" />\n        </validIssuers>\n      </authority>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089\" />\n  </configSections>\n  <system.identityModel>\n    <identityConfiguration>\n    <issuerNameRegistry type=\"System.IdentityModel.Tokens.ValidatingIssuerNameRegistry, System.IdentityModel.Tokens.ValidatingIssuerNameRegistry\">\n{}{}    </issuerNameRegistry>\n    </identityConfiguration>\n  </system.identityModel>\n</configuration>\n",
        authority("https://sts.windows.net/tenant-one/", t1),
        authority("https://sts.windows.net/tenant-two/", t2)
    )
}

#[test]
fn several_tenants_in_one_vinr_file_track_their_own_metadata() {
    let one_old = Key::current("tenant one");
    let one_new = Key::new(
        "tenant one next",
        datetime!(2025-06-01 0:00 UTC),
        datetime!(2027-06-01 0:00 UTC),
    );
    let two = Key::current("tenant two");
    let settings = "[[issuer]]\nname = \"one\"\nmetadata = [\"one.xml\"]\nentity_id = \"https://sts.windows.net/tenant-one/\"\n\n[[issuer]]\nname = \"two\"\nmetadata = [\"two.xml\"]\nentity_id = \"https://sts.windows.net/tenant-two/\"\n\n[[target]]\nfiles = [\"web.config\"]\nissuers = [\"one\"]\nauthority = \"https://sts.windows.net/tenant-one/\"\n\n[[target]]\nfiles = [\"web.config\"]\nissuers = [\"two\"]\nauthority = \"https://sts.windows.net/tenant-two/\"\n";
    let repo = Repo::with_settings(settings);
    repo.write(
        "web.config",
        &vinr_config(&[&one_old.lower()], &[&two.lower()]),
    );
    repo.write(
        "one.xml",
        &metadata("https://sts.windows.net/tenant-one/", &[&one_old], &[]),
    );
    repo.write(
        "two.xml",
        &metadata("https://sts.windows.net/tenant-two/", &[&two], &[]),
    );
    repo.apply("2026-01-01T00:00:00Z");
    let before = repo.read("web.config");

    repo.write(
        "one.xml",
        &metadata(
            "https://sts.windows.net/tenant-one/",
            &[&one_old, &one_new],
            &[],
        ),
    );
    repo.apply("2026-01-02T00:00:00Z");
    let after = repo.read("web.config");
    assert_eq!(
        after,
        vinr_config(&[&one_old.lower(), &one_new.lower()], &[&two.lower()])
    );
    // Tenant two's authority is byte-for-byte what it was.
    let tenant_two = |text: &str| {
        let start = text
            .find("<authority name=\"https://sts.windows.net/tenant-two/\"")
            .unwrap();
        text[start..].to_string()
    };
    assert_eq!(tenant_two(&after), tenant_two(&before));
}

#[test]
fn key_added_by_hand_is_recognised_and_nothing_extra_proposed() {
    let old = Key::new(
        "adfs",
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-06-01 0:00 UTC),
    );
    let new = Key::new(
        "adfs next",
        datetime!(2026-05-12 0:00 UTC),
        datetime!(2027-05-12 0:00 UTC),
    );
    // A person already did the phased rollover's first step, in their own style.
    let repo = adfs_repo(&[&old.hex(), &new.lower()], &[&old, &new]);
    let plan = repo.plan_json("2026-05-13T00:00:00Z");
    assert!(changes(&plan).is_empty(), "{plan:#}");
    repo.apply("2026-05-13T00:00:00Z");
    let out = repo.run(&["plan", "--detailed-exitcode"], "2026-05-14T00:00:00Z");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn pasted_thumbprint_with_invisible_mark_and_spaces_is_normalized_with_reason() {
    let key = Key::current("adfs");
    let spaced: String = key
        .hex()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let repo = adfs_repo(&[&format!("\u{200E}{spaced}")], &[&key]);
    let plan = repo.plan_json("2026-01-01T00:00:00Z");
    let c = changes(&plan);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "normalize");
    assert_contains(&c[0].2, "U+200E LEFT-TO-RIGHT MARK at position 1");
    assert_contains(&c[0].2, "spaces");
    repo.apply("2026-01-01T00:00:00Z");
    assert_eq!(repo.read("site/web.config"), wif45_config(&[&key.lower()]));
}

#[test]
fn duplicate_entry_is_dropped_with_reason() {
    let key = Key::current("adfs");
    let repo = adfs_repo(&[&key.hex(), &key.lower()], &[&key]);
    let c = changes(&repo.plan_json("2026-01-01T00:00:00Z"));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "dedupe");
    assert!(c[0].2.starts_with("duplicate of line 13"), "{}", c[0].2);
    repo.apply("2026-01-01T00:00:00Z");
    assert_eq!(repo.read("site/web.config"), wif45_config(&[&key.hex()]));
}

fn assert_refused(repo: &Repo, now: &str, expect: &str) {
    let config = repo.read("site/web.config");
    let lock = repo.lock();
    let out = repo.run(&["apply"], now);
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains(expect), "expected {expect:?} in:\n{all}");
    assert_eq!(repo.read("site/web.config"), config, "config untouched");
    assert_eq!(repo.lock(), lock, "lock untouched");
}

/// An issuer that now publishes only an expired certificate is refused as a whole (before
/// the lockout guard is even needed): nothing removed, nothing written.
#[test]
fn issuer_publishing_only_expired_keys_is_refused_and_nothing_changes() {
    let old = Key::current("adfs");
    // The issuer now publishes only a certificate that already expired (misconfigured STS).
    let stale = Key::new(
        "adfs stale",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2025-01-01 0:00 UTC),
    );
    let repo = adfs_repo(&[&old.hex()], &[&old]);
    repo.apply("2026-01-01T00:00:00Z");
    repo.write("metadata.xml", &metadata(ADFS, &[&stale], &[]));
    assert_refused(
        &repo,
        "2026-01-10T00:00:00Z",
        "every key the issuer publishes has expired",
    );
}

#[test]
fn failed_source_is_an_error_never_all_keys_vanished() {
    let key = Key::current("adfs");
    let repo = adfs_repo(&[&key.hex()], &[&key]);
    repo.apply("2026-01-01T00:00:00Z");
    std::fs::remove_file(repo.path("metadata.xml")).unwrap();
    assert_refused(
        &repo,
        "2026-02-01T00:00:00Z",
        "metadata source failed to load",
    );
    // A truncated download is refused the same way.
    repo.write(
        "metadata.xml",
        "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"><RoleDes",
    );
    assert_refused(&repo, "2026-02-01T00:00:00Z", "malformed XML");
}

#[test]
fn entity_id_mismatch_is_refused() {
    let key = Key::current("adfs");
    let other = Key::current("evil");
    let repo = Repo::with_settings(&adfs_settings());
    repo.write("site/web.config", &wif45_config(&[&key.hex()]));
    repo.write(
        "metadata.xml",
        &metadata("http://other.example/adfs/services/trust", &[&other], &[]),
    );
    assert_refused(&repo, "2026-01-01T00:00:00Z", "entityID mismatch");
}

#[test]
fn metadata_with_no_signing_key_is_refused() {
    let key = Key::current("adfs");
    let repo = Repo::with_settings(&adfs_settings());
    repo.write("site/web.config", &wif45_config(&[&key.hex()]));
    repo.write("metadata.xml", &metadata(ADFS, &[], &[&key]));
    assert_refused(&repo, "2026-01-01T00:00:00Z", "publishes no signing key");
}

#[test]
fn a_published_key_is_never_removed_even_when_expired() {
    let expired = Key::new(
        "adfs old",
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2025-06-01 0:00 UTC),
    );
    let current = Key::current("adfs");
    let repo = adfs_repo(&[&expired.hex(), &current.hex()], &[&expired, &current]);
    let plan = repo.plan_json("2026-01-01T00:00:00Z");
    assert!(changes(&plan).is_empty(), "{plan:#}");
    let keys = plan["issuers"][0]["keys"].as_array().unwrap();
    let old = keys
        .iter()
        .find(|k| k["sha1"] == expired.hex().as_str())
        .unwrap();
    assert_eq!(old["action"], "keep");
    assert!(
        old["reason"]
            .as_str()
            .unwrap()
            .starts_with("published but expired")
    );
}

#[test]
fn unknown_entries_are_kept_or_removed_by_policy() {
    let key = Key::current("adfs");
    let unknown = "0123456789ABCDEF0123456789ABCDEF01234567";
    let repo = adfs_repo(&[unknown, &key.hex()], &[&key]);
    let plan = repo.plan_json("2026-01-01T00:00:00Z");
    assert!(changes(&plan).is_empty());
    assert!(plan["notes"][0].as_str().unwrap().contains("keep_unknown"));

    std::fs::write(
        repo.path("keyroll.toml"),
        format!("{}\n[policy]\nkeep_unknown = false\n", adfs_settings()),
    )
    .unwrap();
    repo.apply("2026-01-01T00:00:00Z");
    assert_eq!(repo.read("site/web.config"), wif45_config(&[&key.hex()]));
}

#[test]
fn plan_on_corpus_configs_matches_the_reviewed_golden_file() {
    // The three samples were pretty-printed after signing (tests/data/signature/SOURCES.md):
    // their signatures no longer verify, so they are read with `signature = "off"`.
    let repo = Repo::with_settings(
        "[[issuer]]\nname = \"adatum\"\nmetadata = [\"metadata/adatum.xml\"]\nentity_id = \"https://localhost/Adatum.SimulatedIssuer/\"\nsignature = \"off\"\n\n\
         [[issuer]]\nname = \"litware\"\nmetadata = [\"metadata/litware.xml\"]\nsignature = \"off\"\n\n\
         [[issuer]]\nname = \"dummysts\"\nmetadata = [\"metadata/dummysts.xml\"]\nissuer_name = \"DummySTS\"\nsignature = \"off\"\n\n\
         [[target]]\nfiles = [\"apps/fabrikam/Web.config\"]\nissuers = [\"adatum\", \"litware\"]\n\n\
         [[target]]\nfiles = [\"apps/order/Web.config\"]\nissuers = [\"adatum\"]\n\n\
         [[target]]\nfiles = [\"apps/nordvall/Web.config\"]\nissuers = [\"dummysts\"]\n",
    );
    let copy = |from: &str, to: &str| {
        let to = repo.path(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new("tests/data").join(from), to).unwrap();
    };
    copy(
        "metadata/cbib-adatum-simulatedissuer1-federationmetadata.xml",
        "metadata/adatum.xml",
    );
    copy(
        "metadata/cbib-litware-simulatedissuer3-federationmetadata.xml",
        "metadata/litware.xml",
    );
    copy(
        "metadata/nordvall-dummysts-federationmetadata.xml",
        "metadata/dummysts.xml",
    );
    copy(
        "configs/cbib-fabrikam-federationprovider3.config",
        "apps/fabrikam/Web.config",
    );
    copy(
        "configs/cbib-a-order-claimsaware.config",
        "apps/order/Web.config",
    );
    copy(
        "configs/nordvall-mvc5-http.config",
        "apps/nordvall/Web.config",
    );
    // A day when the DummySTS certificate was valid: its config trusts a different one, and
    // with no keyroll.lock yet that is an identity change (issue 25), accepted here.
    let refused = repo.run(&["plan"], "2013-06-01T00:00:00Z");
    assert!(
        String::from_utf8_lossy(&refused.stdout)
            .contains("issuer dummysts (http://localhost:3008/STSWebSite1/)\n  error: identity change, not a rollover"),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let out = repo.run(
        &["plan", "--accept-identity-change", "dummysts"],
        "2013-06-01T00:00:00Z",
    );
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let root = format!("{}/", repo.dir.path().display());
    let text = text.replace(&root, "");
    let golden = Path::new("tests/golden/plan-corpus.txt");
    if std::env::var_os("KEYROLL_BLESS").is_some() {
        std::fs::write(golden, &text).unwrap();
    }
    assert_eq!(
        text,
        std::fs::read_to_string(golden).unwrap(),
        "run with KEYROLL_BLESS=1 to update, then review"
    );
}

/// README's first command: the embedded example, offline.
#[test]
fn embedded_demo_plan_adds_the_next_adfs_key_and_cleans_the_pasted_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args([
            "plan",
            "--config",
            "examples/demo/keyroll.toml",
            "--now",
            "2026-11-23T12:00:00Z",
            "--detailed-exitcode",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("keyroll plan as of 2026-11-23T12:00:00Z: 2 files to change"),
        "{text}"
    );
    assert_contains(
        &text,
        "+          <add thumbprint=\"81CB9F506E54F19731D89F749FBBCE8FE6476295\" name=\"http://adfs.contoso.com/adfs/services/trust\" />",
    );
    assert_contains(
        &text,
        "contained U+200E LEFT-TO-RIGHT MARK at position 1, 19 spaces",
    );
    assert_contains(&text, "--- a/src/Contoso.Api/identity.config");
}

#[test]
fn init_writes_a_config_that_plans_cleanly() {
    let key = Key::current("adfs");
    let repo = Repo::empty();
    repo.write(
        "site/web.config",
        &wif45_config(&[&key.hex(), "0123456789ABCDEF0123456789ABCDEF01234567"]),
    );
    repo.write("idp/metadata.xml", &metadata(ADFS, &[&key], &[]));
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["init", "--metadata"])
        .arg(repo.path("idp/metadata.xml"))
        .arg("--dir")
        .arg(repo.dir.path())
        .args(["--now", "2026-01-01T00:00:00Z"])
        .output()
        .unwrap();
    assert_ok(&out);
    let summary = String::from_utf8(out.stdout).unwrap();
    assert_contains(&summary, "1 issuer, 1 trusted thumbprint matched");
    assert_contains(
        &summary,
        "unmatched site/web.config:14 0123456789ABCDEF0123456789ABCDEF01234567",
    );
    let settings = repo.read("keyroll.toml");
    assert_contains(&settings, "name = \"adfs-contoso-com\"");
    assert_contains(&settings, "metadata = [\"idp/metadata.xml\"]");
    assert_contains(&settings, &format!("entity_id = \"{ADFS}\""));
    assert_contains(
        &settings,
        "files = [\"site/web.config\"]\ndialect = \"wif45\"\nissuers = [\"adfs-contoso-com\"]",
    );
    assert!(repo.lock().unwrap().contains(&key.hex()));
    let out = repo.run(&["plan", "--detailed-exitcode"], "2026-01-01T00:00:00Z");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A second init does not overwrite the reviewed file.
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["init", "--metadata"])
        .arg(repo.path("idp/metadata.xml"))
        .arg("--dir")
        .arg(repo.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --force"));
}
