//! One case per WIF load rule in DOMAIN.md: a minimal input WIF refuses gets the named
//! error-level finding; the same input with the fault removed is clean. And the entries
//! that load but never match (a character WIF does not strip) are `dirty`.

use std::path::Path;

use keyroll::load::scan::{self, Code, KnownCertificates, Severity};
use keyroll::model::rules::RuleSet;

const T1: &str = "6B740DD01652EECE2737E05DAE36C5D18FCB74C3";
const T2: &str = "5DD3BCFB7A24B73D741CC063ECCD46AE9CD43379";

const DECLARED: &str = "<configSections><section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel\" /></configSections>";

fn wif45(trusted: &str) -> String {
    format!(
        "<configuration>{DECLARED}<system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">{trusted}</issuerNameRegistry></identityConfiguration></system.identityModel></configuration>"
    )
}

fn findings(text: &str) -> Vec<(Code, String)> {
    let file = scan::parse_config(
        Path::new("web.config"),
        text.as_bytes().to_vec(),
        &RuleSet::builtin(),
        &KnownCertificates::default(),
    );
    let mut all: Vec<(Code, String)> = file
        .problems
        .iter()
        .filter(|p| p.finding.severity == Severity::Error)
        .map(|p| (p.finding.code, p.finding.message.clone()))
        .collect();
    for e in &file.entries {
        for f in e.findings.iter().filter(|f| f.severity == Severity::Error) {
            all.push((f.code, f.message.clone()));
        }
    }
    all
}

fn refused(bad: &str, good: &str, code: Code, says: &str) {
    let found = findings(bad);
    assert!(
        found.iter().any(|(c, m)| *c == code && m.contains(says)),
        "expected {code} saying {says:?} in {found:?} for\n{bad}"
    );
    let clean = findings(good);
    assert!(clean.is_empty(), "{clean:?} for\n{good}");
}

#[test]
fn duplicate_keys_even_when_a_later_remove_withdraws_them() {
    refused(
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" name=\"a\" /><add thumbprint=\"{}\" name=\"a\" /><remove thumbprint=\"{T1}\" /></trustedIssuers>",
            T1.to_lowercase()
        )),
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" name=\"a\" /><remove thumbprint=\"{T1}\" /><add thumbprint=\"{T1}\" name=\"a\" /></trustedIssuers>"
        )),
        Code::Duplicate,
        "duplicate of line",
    );
    // A clear between them makes the second one fine too.
    assert!(findings(&wif45(&format!(
        "<trustedIssuers><add thumbprint=\"{T1}\" /><clear /><add thumbprint=\"{T1}\" /></trustedIssuers>"
    )))
    .is_empty());
}

#[test]
fn id7010_an_add_with_more_than_two_attributes() {
    refused(
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" name=\"a\" comment=\"rotated\" /></trustedIssuers>"
        )),
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" comment=\"rotated\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "ID7010",
    );
}

#[test]
fn id7010_a_namespace_declaration_counts_as_an_attribute() {
    refused(
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" name=\"a\" xmlns:x=\"urn:x\" /></trustedIssuers>"
        )),
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" name=\"a\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "ID7010",
    );
}

#[test]
fn id7010_an_add_without_thumbprint() {
    refused(
        &wif45("<trustedIssuers><add name=\"a\" /></trustedIssuers>"),
        &wif45("<trustedIssuers></trustedIssuers>"),
        Code::LoadError,
        "without `thumbprint`",
    );
}

#[test]
fn id7010_a_remove_with_more_than_one_attribute() {
    refused(
        &wif45(&format!(
            "<trustedIssuers><remove thumbprint=\"{T1}\" name=\"a\" /></trustedIssuers>"
        )),
        &wif45(&format!(
            "<trustedIssuers><remove thumbprint=\"{T1}\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "<remove> has 2 attributes",
    );
}

#[test]
fn id7002_unknown_child_of_trusted_issuers_or_the_registry() {
    refused(
        &wif45(&format!(
            "<trustedIssuers><addd thumbprint=\"{T1}\" /></trustedIssuers>"
        )),
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "ID7002",
    );
    refused(
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" /></trustedIssuers><keys />"
        )),
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "ID7002",
    );
}

#[test]
fn id7019_two_trusted_issuers_in_one_registry() {
    refused(
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" /></trustedIssuers><trustedIssuers><add thumbprint=\"{T2}\" /></trustedIssuers>"
        )),
        &wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{T1}\" /><add thumbprint=\"{T2}\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "ID7019",
    );
}

#[test]
fn text_inside_trusted_issuers() {
    refused(
        &wif45(&format!(
            "<trustedIssuers>{T2}<add thumbprint=\"{T1}\" /></trustedIssuers>"
        )),
        &wif45(&format!(
            "<trustedIssuers><!-- {T2} --><add thumbprint=\"{T1}\" /></trustedIssuers>"
        )),
        Code::LoadError,
        "text inside",
    );
}

#[test]
fn id7029_two_identity_configurations_with_the_same_name() {
    let config = |second: &str| {
        format!(
            "<configuration>{DECLARED}<system.identityModel><identityConfiguration name=\"a\" /><identityConfiguration{second} /></system.identityModel></configuration>"
        )
    };
    refused(
        &config(" name=\"a\""),
        &config(" name=\"b\""),
        Code::LoadError,
        "ID7029",
    );
    // Two unnamed ones collide too.
    let unnamed = format!(
        "<configuration>{DECLARED}<system.identityModel><identityConfiguration /><identityConfiguration /></system.identityModel></configuration>"
    );
    assert!(findings(&unnamed).iter().any(|(_, m)| m.contains("ID7029")));
}

#[test]
fn a_wif_section_used_but_not_declared() {
    let good = wif45(&format!(
        "<trustedIssuers><add thumbprint=\"{T1}\" /></trustedIssuers>"
    ));
    let bad = good.replace(DECLARED, "");
    refused(&bad, &good, Code::UndeclaredSection, "system.identityModel");
    // system.identityModel.services needs its own declaration.
    let services = good.replace(
        "</configuration>",
        "<system.identityModel.services><federationConfiguration /></system.identityModel.services></configuration>",
    );
    assert!(
        findings(&services)
            .iter()
            .any(|(c, m)| *c == Code::UndeclaredSection && m.contains("services"))
    );
    // A configSource fragment inherits its parent's declarations.
    let fragment = format!(
        "<system.identityModel><identityConfiguration><issuerNameRegistry><trustedIssuers><add thumbprint=\"{T1}\" /></trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel>"
    );
    assert!(findings(&fragment).is_empty());
}

#[test]
fn wif35_add_needs_exactly_thumbprint_and_a_non_empty_name() {
    let config = |add: &str| {
        format!(
            "<configuration><configSections><section name=\"microsoft.identityModel\" type=\"Microsoft.IdentityModel.Configuration.MicrosoftIdentityModelSection, Microsoft.IdentityModel\" /></configSections><microsoft.identityModel><service><issuerNameRegistry type=\"Microsoft.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, Microsoft.IdentityModel\"><trustedIssuers>{add}</trustedIssuers></issuerNameRegistry></service></microsoft.identityModel></configuration>"
        )
    };
    let good = config(&format!("<add thumbprint=\"{T1}\" name=\"sts\" />"));
    for bad in [
        format!("<add thumbprint=\"{T1}\" />"),
        format!("<add thumbprint=\"{T1}\" name=\"\" />"),
        format!("<add thumbprint=\"{T1}\" name=\"sts\" comment=\"x\" />"),
    ] {
        refused(&config(&bad), &good, Code::LoadError, "WIF 3.5");
    }
}

#[test]
fn vinr_authorities_are_unique_and_complete() {
    let config = |authorities: &str| {
        format!(
            "<configuration>{DECLARED}<system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ValidatingIssuerNameRegistry, System.IdentityModel.Tokens.ValidatingIssuerNameRegistry\">{authorities}</issuerNameRegistry></identityConfiguration></system.identityModel></configuration>"
        )
    };
    let authority = |name: &str| {
        format!(
            "<authority name=\"{name}\"><keys><add thumbprint=\"{T1}\" /></keys><validIssuers><add name=\"{name}\" /></validIssuers></authority>"
        )
    };
    let good = config(&(authority("https://sts/a/") + &authority("https://sts/b/")));
    refused(
        &config(&(authority("https://sts/a/") + &authority("https://sts/a/"))),
        &good,
        Code::LoadError,
        "two <authority>",
    );
    refused(
        &config(
            "<authority name=\"x\"><validIssuers><add name=\"x\" /></validIssuers></authority>",
        ),
        &good,
        Code::LoadError,
        "needs <keys>",
    );
}

#[test]
fn characters_wif_does_not_strip_make_an_entry_dirty_spaces_do_not() {
    for value in [
        format!("{}\t{}", &T1[..20], &T1[20..]),
        format!("{}&#9;{}", &T1[..20], &T1[20..]),
        format!("{}&#xA;{}", &T1[..20], &T1[20..]),
        format!("{}\u{A0}{}", &T1[..20], &T1[20..]),
        format!("&#x200E;{T1}"),
        format!("\u{FEFF}{T1}"),
    ] {
        let found = findings(&wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{value}\" /></trustedIssuers>"
        )));
        assert!(
            found.iter().any(|(c, _)| *c == Code::Dirty),
            "{value:?}: {found:?}"
        );
    }
    let spaced = format!("{} {}", &T1[..20], &T1[20..]);
    assert!(
        findings(&wif45(&format!(
            "<trustedIssuers><add thumbprint=\"{spaced}\" /></trustedIssuers>"
        )))
        .is_empty()
    );
}

/// In a transform, what a `Replace` puts in place is what WIF loads once published: the same
/// rules hold, and the transform's own `xdt:` attributes (removed by publishing) do not count.
/// In a config WIF loads directly, an `xdt:` attribute is one more attribute.
#[test]
fn a_replaced_registry_is_held_to_the_load_rules_and_xdt_attributes_count_only_outside_transforms()
{
    const XDT: &str = "xmlns:xdt=\"http://schemas.microsoft.com/XML-Document-Transform\"";
    let transform = |trusted: &str| {
        format!(
            "<configuration {XDT}><system.identityModel><identityConfiguration><issuerNameRegistry><trustedIssuers xdt:Transform=\"Replace\">{trusted}</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>"
        )
    };
    refused(
        &transform(&format!(
            "<add thumbprint=\"{T1}\" name=\"a\" /><issuer thumbprint=\"{T2}\" />"
        )),
        &transform(&format!(
            "<add thumbprint=\"{T1}\" name=\"a\" /><add thumbprint=\"{T2}\" name=\"a\" />"
        )),
        Code::LoadError,
        "ID7002: unknown element <issuer>",
    );
    // The same elements outside any Replace are not what a build configuration loads.
    let located = format!(
        "<configuration {XDT}><system.identityModel><identityConfiguration><issuerNameRegistry><trustedIssuers><issuer thumbprint=\"{T2}\" /></trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>"
    );
    assert!(
        !findings(&located).iter().any(|(_, m)| m.contains("ID7002")),
        "{located}"
    );
    // Declared on <trustedIssuers>, so the document is no transform and the <add> holds three
    // attributes, no declaration.
    let with_xdt = format!(
        "<trustedIssuers {XDT}><add thumbprint=\"{T1}\" name=\"a\" xdt:Transform=\"Insert\" /></trustedIssuers>"
    );
    assert!(
        findings(&wif45(&with_xdt))
            .iter()
            .any(|(c, m)| *c == Code::LoadError && m.contains("ID7010: <add> has 3 attributes")),
        "an xdt: attribute in a loaded config is counted"
    );
}
