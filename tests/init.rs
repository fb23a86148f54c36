//! `keyroll init` through the binary (issue 14): every source becomes an issuer, a source no
//! config trusts yet gets a commented `[[target]]` and a line saying why, configs whose
//! thumbprints no source publishes are listed, paths are relative to keyroll.toml.
//! Certificates are made here (rcgen); metadata and configs are small documents written here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use keyroll::cert::Certificate;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: &str = "2026-01-01T00:00:00Z";
const ADFS: &str = "http://fs.contoso.com/adfs/services/trust";

struct Cert {
    der: Vec<u8>,
    sha1: String,
}

impl Cert {
    fn new(cn: &str) -> Cert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.not_before = time::macros::datetime!(2025-01-01 0:00 UTC);
        params.not_after = time::macros::datetime!(2027-01-01 0:00 UTC);
        let der = params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec();
        let sha1 = Certificate::from_der(der.clone()).unwrap().sha1.to_string();
        Cert { der, sha1 }
    }

    fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }
}

fn entity(entity_id: &str, signing: &[&Cert]) -> String {
    let keys: String = signing
        .iter()
        .map(|c| format!("<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>", c.base64()))
        .collect();
    format!(
        "<EntityDescriptor entityID=\"{entity_id}\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{keys}</IDPSSODescriptor></EntityDescriptor>"
    )
}

fn aggregate(entities: &[String]) -> String {
    format!(
        "<EntitiesDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}</EntitiesDescriptor>",
        entities.concat()
    )
}

fn jwks(certs: &[&Cert]) -> String {
    let keys: Vec<serde_json::Value> = certs
        .iter()
        .map(|c| serde_json::json!({"kty": "EC", "use": "sig", "kid": &c.sha1[..8], "x5c": [c.base64()]}))
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

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        Repo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// `keyroll init` run from `cwd` with `--dir dir` and the sources as given.
    fn init(&self, cwd: &Path, dir: &str, sources: &[&str], extra: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyroll"));
        command
            .current_dir(cwd)
            .args(["init", "--dir", dir, "--now", NOW]);
        for source in sources {
            command.args(["--metadata", source]);
        }
        command.args(extra).output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stale-config case keyroll exists for: the only config trusts an old key, the metadata
/// publishes only a new one. init used to print "0 issuers" and write nothing about it.
#[test]
fn a_source_no_config_trusts_yet_is_an_issuer_with_a_target_to_fill_in() {
    let repo = Repo::new();
    let old = Cert::new("old");
    let new = Cert::new("new");
    repo.write("idp/FederationMetadata.xml", &entity(ADFS, &[&new]));
    repo.write("src/Site/Web.config", &wif45_config(&[&old.sha1]));
    let out = repo.init(repo.dir.path(), ".", &["idp/FederationMetadata.xml"], &[]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(": 1 issuer, 0 trusted thumbprints matched\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  issuer    fs-contoso-com from idp/FederationMetadata.xml (entity {ADFS}, 1 signing key)\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  unmatched src/Site/Web.config:7 {} (no given metadata publishes it",
            old.sha1
        )),
        "{text}"
    );
    assert!(
        text.contains("  untrusted fs-contoso-com: no config here trusts any of its 1 signing key yet; fill in the commented [[target]] for it in keyroll.toml\n"),
        "{text}"
    );
    assert!(
        text.contains("  no match  src/Site/Web.config: none of its 1 trusted thumbprint is published by the given metadata\n"),
        "{text}"
    );

    let settings = repo.read("keyroll.toml");
    assert!(
        settings.contains(&format!("[[issuer]]\nname = \"fs-contoso-com\"\nmetadata = [\"idp/FederationMetadata.xml\"]\nentity_id = \"{ADFS}\"\n")),
        "{settings}"
    );
    let stanza = "# [[target]]\n# files = [\"src/Site/Web.config\"]\n# dialect = \"wif45\"\n# issuers = [\"fs-contoso-com\"]\n";
    assert!(settings.contains(stanza), "{settings}");
    assert!(!settings.contains("\n[[target]]"), "{settings}");
    assert!(repo.read("keyroll.lock").contains(&new.sha1));

    // Filled in as the comment says, the stanza plans the new key into the stale config.
    let filled = settings.replace(stanza, &stanza.replace("# ", ""));
    repo.write("keyroll.toml", &filled);
    let out = Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["plan", "--now", NOW, "--config"])
        .arg(repo.path("keyroll.toml"))
        .output()
        .unwrap();
    let plan = stdout(&out);
    assert!(
        plan.contains(&new.sha1),
        "{plan}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(plan.contains("src/Site/Web.config"), "{plan}");
}

/// Two sources, one trusted and one not: both are written and the second is named.
#[test]
fn every_source_becomes_an_issuer_and_configs_with_no_match_are_listed() {
    let repo = Repo::new();
    let adfs = Cert::new("adfs");
    let other = Cert::new("jwks key");
    let stale = Cert::new("gone");
    repo.write("metadata/adfs.xml", &entity(ADFS, &[&adfs]));
    repo.write("metadata/partner-keys.json", &jwks(&[&other]));
    repo.write("app/Web.config", &wif45_config(&[&adfs.sha1]));
    repo.write(
        "legacy/Web.config",
        &wif45_config(&[&stale.sha1, "0123456789ABCDEF0123456789ABCDEF01234567"]),
    );
    let out = repo.init(
        repo.dir.path(),
        ".",
        &["metadata/adfs.xml", "metadata/partner-keys.json"],
        &[],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(": 2 issuers, 1 trusted thumbprint matched\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  matched   app/Web.config:7 {} → fs-contoso-com\n",
            adfs.sha1
        )),
        "{text}"
    );
    assert!(
        text.contains("  issuer    partner-keys from metadata/partner-keys.json (1 signing key)\n"),
        "{text}"
    );
    assert!(
        text.contains("  untrusted partner-keys: no config here trusts"),
        "{text}"
    );
    assert!(
        text.contains(
            "  no match  legacy/Web.config: none of its 2 trusted thumbprints is published"
        ),
        "{text}"
    );
    assert!(!text.contains("no match  app/Web.config"), "{text}");

    let settings = repo.read("keyroll.toml");
    assert!(
        settings.contains("[[target]]\nfiles = [\"app/Web.config\"]\ndialect = \"wif45\"\nissuers = [\"fs-contoso-com\"]\n"),
        "{settings}"
    );
    // A bare JWKS names no entity: no entity_id line for it.
    assert!(
        settings.contains(
            "[[issuer]]\nname = \"partner-keys\"\nmetadata = [\"metadata/partner-keys.json\"]\n\n"
        ),
        "{settings}"
    );
    assert!(
        settings.contains("# [[target]]\n# files = [\"legacy/Web.config\"]\n# dialect = \"wif45\"\n# issuers = [\"partner-keys\"]\n"),
        "{settings}"
    );
    assert!(!settings.contains("name = \"issuer\""), "{settings}");
    // What init wrote loads as keyroll.toml.
    keyroll::settings::Settings::parse(&repo.path("keyroll.toml"), &settings).unwrap();
}

/// Sources given relative to another folder, or absolute, are written relative to
/// keyroll.toml's folder; one outside it climbs out with `..`.
#[test]
fn metadata_paths_are_written_relative_to_keyroll_toml() {
    let repo = Repo::new();
    let key = Cert::new("adfs");
    repo.write("shared/idp/adfs.xml", &entity(ADFS, &[&key]));
    repo.write(
        "shared/idp/second.xml",
        &entity("https://sts.fabrikam.com/", &[&Cert::new("fab")]),
    );
    repo.write("apps/site/Web.config", &wif45_config(&[&key.sha1]));
    let absolute = repo.path("shared/idp/second.xml");
    let out = repo.init(
        repo.dir.path(),
        "apps",
        &["shared/idp/adfs.xml", absolute.to_str().unwrap()],
        &[],
    );
    assert_ok(&out);
    let settings = repo.read("apps/keyroll.toml");
    assert!(
        settings.contains("metadata = [\"../shared/idp/adfs.xml\"]"),
        "{settings}"
    );
    assert!(
        settings.contains("metadata = [\"../shared/idp/second.xml\"]"),
        "{settings}"
    );
    assert!(
        settings.contains("name = \"sts-fabrikam-com\""),
        "{settings}"
    );
    assert!(
        settings.contains("files = [\"site/Web.config\"]"),
        "{settings}"
    );
    assert!(
        !settings.contains(repo.dir.path().to_str().unwrap()),
        "{settings}"
    );
}

/// An aggregate: a trusted entity becomes an issuer with its entity_id; an aggregate none
/// of whose entities is trusted gets a commented [[issuer]] to pick from, and a line.
#[test]
fn aggregates_name_the_trusted_entity_or_ask_for_one() {
    let repo = Repo::new();
    let a = Cert::new("a");
    let b = Cert::new("b");
    let c = Cert::new("c");
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
            entity("https://idp.d.example/", &[&Cert::new("d")]),
        ]),
    );
    repo.write("Web.config", &wif45_config(&[&b.sha1]));
    let out = repo.init(
        repo.dir.path(),
        ".",
        &["fed/trusted.xml", "fed/untrusted.xml"],
        &[],
    );
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(": 1 issuer, 1 trusted thumbprint matched\n"),
        "{text}"
    );
    assert!(
        text.contains("  skipped   fed/untrusted.xml: it lists 2 entities and no config trusts a key of any; pick one in the commented [[issuer]] in keyroll.toml\n"),
        "{text}"
    );
    let settings = repo.read("keyroll.toml");
    assert!(
        settings.contains("[[issuer]]\nname = \"idp-b-example\"\nmetadata = [\"fed/trusted.xml\"]\nentity_id = \"https://idp.b.example/\"\n"),
        "{settings}"
    );
    assert!(
        settings.contains("# [[issuer]]\n# name = \"idp-c-example\"\n# metadata = [\"fed/untrusted.xml\"]\n# entity_id = \"https://idp.c.example/\"\n"),
        "{settings}"
    );
    keyroll::settings::Settings::parse(&repo.path("keyroll.toml"), &settings).unwrap();
}

/// An OpenID configuration by URL: named from its issuer's host, entity_id set, the URL kept.
#[tokio::test(flavor = "multi_thread")]
async fn an_openid_source_is_named_from_its_host() {
    let server = MockServer::start().await;
    let key = Cert::new("entra");
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
    let repo = Repo::new();
    repo.write("Web.config", &wif45_config(&[&key.sha1]));
    let out = tokio::task::spawn_blocking(move || {
        let out = repo.init(repo.dir.path(), ".", &[&source], &["--allow-http"]);
        (out, repo.read("keyroll.toml"), source)
    })
    .await
    .unwrap();
    let (out, settings, source) = out;
    assert_ok(&out);
    assert!(
        settings.contains(&format!("[[issuer]]\nname = \"login-contoso-com\"\nmetadata = [\"{source}\"]\nentity_id = \"{issuer}\"\n")),
        "{settings}"
    );
    assert!(
        settings.contains("issuers = [\"login-contoso-com\"]"),
        "{settings}"
    );
}
