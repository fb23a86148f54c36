//! `keyroll init` through the binary (issue 14): every source becomes an issuer, a source no
//! config trusts yet gets a commented `[[target]]` and a line saying why, configs whose
//! thumbprints no source publishes are listed, paths are relative to keyroll.toml.
//! Certificates are made here (rcgen); metadata and configs are small documents written here.

mod common;
mod kit;

use std::path::Path;
use std::process::{Command, Output};

use common::{Repo, assert_contains, assert_ok, stdout};
use kit::{Key, entity};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-01-01T00:00:00Z";
const ADFS: &str = "http://fs.contoso.com/adfs/services/trust";

fn aggregate(entities: &[String]) -> String {
    format!(
        "<EntitiesDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}</EntitiesDescriptor>",
        entities.concat()
    )
}

fn jwks(certs: &[&Key]) -> String {
    let keys: Vec<serde_json::Value> = certs
        .iter()
        .map(|c| serde_json::json!({"kty": "EC", "use": "sig", "kid": &c.hex()[..8], "x5c": [c.base64()]}))
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn wif45_config(thumbprints: &[&str]) -> String {
    let adds: String = thumbprints
        .iter()
        .map(|t| format!("          <add thumbprint=\"{t}\" name=\"DummySTS\" />\r\n"))
        .collect();
    format!(
        "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n  <system.identityModel>\r\n    <identityConfiguration>\r\n      <issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">\r\n        <trustedIssuers>\r\n{adds}        </trustedIssuers>\r\n      </issuerNameRegistry>\r\n    </identityConfiguration>\r\n  </system.identityModel>\r\n</configuration>\r\n"
    )
}

/// `keyroll init` run from `cwd` with `--dir dir` and the sources as given.
fn init(cwd: &Path, dir: &str, sources: &[&str], extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
    command
        .current_dir(cwd)
        .args(["init", "--dir", dir, "--now", NOW]);
    for source in sources {
        command.args(["--metadata", source]);
    }
    command.args(extra).output().unwrap()
}

/// The stale-config case keyroll exists for: the only config trusts an old key, the metadata
/// publishes only a new one. init used to print "0 issuers" and write nothing about it.
#[test]
fn a_source_no_config_trusts_yet_is_an_issuer_with_a_target_to_fill_in() {
    let repo = Repo::empty();
    let old = Key::current("old");
    let new = Key::current("new");
    repo.write("idp/FederationMetadata.xml", &entity(ADFS, &[&new]));
    repo.write("src/Site/Web.config", &wif45_config(&[&old.hex()]));
    let out = init(repo.dir.path(), ".", &["idp/FederationMetadata.xml"], &[]);
    assert_ok(&out);
    let text = stdout(&out);
    assert_contains(&text, ": 1 issuer, 0 trusted thumbprints matched\n");
    assert_contains(
        &text,
        &format!(
            "  issuer    fs-contoso-com from idp/FederationMetadata.xml (entity {ADFS}, 1 signing key)\n"
        ),
    );
    assert_contains(
        &text,
        &format!(
            "  unmatched src/Site/Web.config:7 {} (no given metadata publishes it",
            old.hex()
        ),
    );
    assert_contains(
        &text,
        "  untrusted fs-contoso-com: no config here trusts any of its 1 signing key yet; fill in the commented [[target]] for it in keyroll.toml\n",
    );
    assert_contains(
        &text,
        "  no match  src/Site/Web.config: none of its 1 trusted thumbprint is published by the given metadata\n",
    );

    let settings = repo.read("keyroll.toml");
    assert_contains(
        &settings,
        &format!(
            "[[issuer]]\nname = \"fs-contoso-com\"\nmetadata = [\"idp/FederationMetadata.xml\"]\nentity_id = \"{ADFS}\"\n"
        ),
    );
    let stanza = "# [[target]]\n# files = [\"src/Site/Web.config\"]\n# dialect = \"wif45\"\n# issuers = [\"fs-contoso-com\"]\n";
    assert_contains(&settings, stanza);
    assert!(!settings.contains("\n[[target]]"), "{settings}");
    assert!(repo.read("keyroll.lock").contains(&new.hex()));

    // Filled in as the comment says, the stanza plans the new key into the stale config.
    let filled = settings.replace(stanza, &stanza.replace("# ", ""));
    repo.write("keyroll.toml", &filled);
    let out = repo.run(&["plan"], NOW);
    let plan = stdout(&out);
    assert!(
        plan.contains(&new.hex()),
        "{plan}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_contains(&plan, "src/Site/Web.config");
}

/// Two sources, one trusted and one not: both are written and the second is named.
#[test]
fn every_source_becomes_an_issuer_and_configs_with_no_match_are_listed() {
    let repo = Repo::empty();
    let adfs = Key::current("adfs");
    let other = Key::current("jwks key");
    let stale = Key::current("gone");
    repo.write("metadata/adfs.xml", &entity(ADFS, &[&adfs]));
    repo.write("metadata/partner-keys.json", &jwks(&[&other]));
    repo.write("app/Web.config", &wif45_config(&[&adfs.hex()]));
    repo.write(
        "legacy/Web.config",
        &wif45_config(&[&stale.hex(), "0123456789ABCDEF0123456789ABCDEF01234567"]),
    );
    let out = init(
        repo.dir.path(),
        ".",
        &["metadata/adfs.xml", "metadata/partner-keys.json"],
        &[],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert_contains(&text, ": 2 issuers, 1 trusted thumbprint matched\n");
    assert_contains(
        &text,
        &format!(
            "  matched   app/Web.config:7 {} → fs-contoso-com\n",
            adfs.hex()
        ),
    );
    assert_contains(
        &text,
        "  issuer    partner-keys from metadata/partner-keys.json (1 signing key)\n",
    );
    assert_contains(&text, "  untrusted partner-keys: no config here trusts");
    assert_contains(
        &text,
        "  no match  legacy/Web.config: none of its 2 trusted thumbprints is published",
    );
    assert!(!text.contains("no match  app/Web.config"), "{text}");

    let settings = repo.read("keyroll.toml");
    assert_contains(
        &settings,
        "[[target]]\nfiles = [\"app/Web.config\"]\ndialect = \"wif45\"\nissuers = [\"fs-contoso-com\"]\n",
    );
    // A bare JWKS names no entity: no entity_id line for it.
    assert_contains(
        &settings,
        "[[issuer]]\nname = \"partner-keys\"\nmetadata = [\"metadata/partner-keys.json\"]\n\n",
    );
    assert_contains(
        &settings,
        "# [[target]]\n# files = [\"legacy/Web.config\"]\n# dialect = \"wif45\"\n# issuers = [\"partner-keys\"]\n",
    );
    assert!(!settings.contains("name = \"issuer\""), "{settings}");
    // What init wrote loads as keyroll.toml.
    keyroll::model::settings::Settings::parse(&repo.path("keyroll.toml"), &settings).unwrap();
}

/// Sources given relative to another folder, or absolute, are written relative to
/// keyroll.toml's folder; one outside it climbs out with `..`.
#[test]
fn metadata_paths_are_written_relative_to_keyroll_toml() {
    let repo = Repo::empty();
    let key = Key::current("adfs");
    repo.write("shared/idp/adfs.xml", &entity(ADFS, &[&key]));
    repo.write(
        "shared/idp/second.xml",
        &entity("https://sts.fabrikam.com/", &[&Key::current("fab")]),
    );
    repo.write("apps/site/Web.config", &wif45_config(&[&key.hex()]));
    let absolute = repo.path("shared/idp/second.xml");
    let out = init(
        repo.dir.path(),
        "apps",
        &["shared/idp/adfs.xml", absolute.to_str().unwrap()],
        &[],
    );
    assert_ok(&out);
    let settings = repo.read("apps/keyroll.toml");
    assert_contains(&settings, "metadata = [\"../shared/idp/adfs.xml\"]");
    assert_contains(&settings, "metadata = [\"../shared/idp/second.xml\"]");
    assert_contains(&settings, "name = \"sts-fabrikam-com\"");
    assert_contains(&settings, "files = [\"site/Web.config\"]");
    assert!(
        !settings.contains(repo.dir.path().to_str().unwrap()),
        "{settings}"
    );
}

/// An aggregate: a trusted entity becomes an issuer with its entity_id; an aggregate none
/// of whose entities is trusted gets a commented [[issuer]] to pick from, and a line.
#[test]
fn aggregates_name_the_trusted_entity_or_ask_for_one() {
    let repo = Repo::empty();
    let a = Key::current("a");
    let b = Key::current("b");
    let c = Key::current("c");
    repo.write(
        "fed/trusted.xml",
        &aggregate(&[
            entity("https://idp.a.example/", &[&a]),
            entity("https://idp.b.example/", &[&b]),
        ]),
    );
    repo.write(
        "fed/untrusted.xml",
        &aggregate(&[
            entity("https://idp.c.example/", &[&c]),
            entity("https://idp.d.example/", &[&Key::current("d")]),
        ]),
    );
    repo.write("Web.config", &wif45_config(&[&b.hex()]));
    let out = init(
        repo.dir.path(),
        ".",
        &["fed/trusted.xml", "fed/untrusted.xml"],
        &[],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert_contains(&text, ": 1 issuer, 1 trusted thumbprint matched\n");
    assert_contains(
        &text,
        "  skipped   fed/untrusted.xml: it lists 2 entities and no config trusts a key of any; pick one in the commented [[issuer]] in keyroll.toml\n",
    );
    let settings = repo.read("keyroll.toml");
    assert_contains(
        &settings,
        "[[issuer]]\nname = \"idp-b-example\"\nmetadata = [\"fed/trusted.xml\"]\nentity_id = \"https://idp.b.example/\"\n",
    );
    assert_contains(
        &settings,
        "# [[issuer]]\n# name = \"idp-c-example\"\n# metadata = [\"fed/untrusted.xml\"]\n# entity_id = \"https://idp.c.example/\"\n",
    );
    keyroll::model::settings::Settings::parse(&repo.path("keyroll.toml"), &settings).unwrap();
}

/// An OpenID configuration by URL: named from its issuer's host, entity_id set, the URL kept.
#[tokio::test(flavor = "multi_thread")]
async fn an_openid_source_is_named_from_its_host() {
    let server = MockServer::start().await;
    let key = Key::current("entra");
    let issuer = "https://login.contoso.com/tenant/v2.0";
    Mock::given(method("GET"))
        .and(path("/tenant/v2.0/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            serde_json::json!({"issuer": issuer, "jwks_uri": format!("{}/tenant/discovery/v2.0/keys", server.uri())}).to_string(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tenant/discovery/v2.0/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_string(jwks(&[&key])))
        .mount(&server)
        .await;
    let source = format!(
        "{}/tenant/v2.0/.well-known/openid-configuration",
        server.uri()
    );
    let repo = Repo::empty();
    repo.write("Web.config", &wif45_config(&[&key.hex()]));
    let out = tokio::task::spawn_blocking(move || {
        let out = init(repo.dir.path(), ".", &[&source], &["--allow-http"]);
        (out, repo.read("keyroll.toml"), source)
    })
    .await
    .unwrap();
    let (out, settings, source) = out;
    assert_ok(&out);
    assert_contains(
        &settings,
        &format!(
            "[[issuer]]\nname = \"login-contoso-com\"\nmetadata = [\"{source}\"]\nentity_id = \"{issuer}\"\n"
        ),
    );
    assert_contains(&settings, "issuers = [\"login-contoso-com\"]");
}
