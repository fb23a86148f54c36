//! Certificates made here (rcgen) and the SAML metadata that publishes them, for every test
//! that needs a key; and a kit for testing the decision core without the binary, the
//! network or the disk: issuers and target files built in memory, `decide` called directly.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use keyroll::decide::plan::Plan;
use keyroll::load::scan::{self, KnownCertificates};
use keyroll::load::{Inputs, IssuerKeys, LoadedIssuer, TargetFile};
use keyroll::model::cert::Certificate;
use keyroll::model::lock::Lock;
use keyroll::model::rules::RuleSet;
use keyroll::model::settings::Settings;
use keyroll::model::thumbprint::Thumbprint;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct Key {
    pub cert: Arc<Certificate>,
    pub t: Thumbprint,
}

impl Key {
    /// A self-signed certificate (rcgen) with common name `cn`, valid between the dates.
    pub fn new(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Key {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.not_before = not_before;
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        Key::from_der(params.self_signed(&key).unwrap().der().to_vec())
    }

    /// [`Key::new`] valid from 2025-01-01 to 2027-01-01: current on the 2026 dates the
    /// binary-driving tests run keyroll at.
    pub fn current(cn: &str) -> Key {
        Key::new(
            cn,
            time::macros::datetime!(2025-01-01 0:00 UTC),
            time::macros::datetime!(2027-01-01 0:00 UTC),
        )
    }

    pub fn from_der(der: Vec<u8>) -> Key {
        let cert = Certificate::from_der(der).unwrap();
        Key {
            t: cert.sha1,
            cert: Arc::new(cert),
        }
    }

    pub fn hex(&self) -> String {
        self.t.to_upper_hex()
    }

    pub fn lower(&self) -> String {
        self.t.to_lower_hex()
    }

    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.cert.der)
    }

    /// A SAML `KeyDescriptor` (`use` = `key_use`) holding this certificate.
    pub fn key_descriptor(&self, key_use: &str) -> String {
        format!(
            "<KeyDescriptor use=\"{key_use}\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>",
            self.base64()
        )
    }
}

/// An issuer whose metadata publishes `keys`, entityID `urn:<name>`.
pub fn issuer(name: &str, keys: &[&Key]) -> LoadedIssuer {
    LoadedIssuer {
        name: name.to_string(),
        keys: Ok(IssuerKeys {
            sources: Vec::new(),
            published: keys.iter().map(|k| (k.t, k.cert.clone())).collect(),
            entity_ids: BTreeSet::from([format!("urn:{name}")]),
        }),
    }
}

pub fn settings(toml: &str) -> Settings {
    Settings::parse(Path::new("repo/keyroll.toml"), toml).unwrap()
}

/// keyroll.toml with the named issuers and one target over `**/*.config` naming them all.
pub fn settings_for(issuers: &[&str], policy: &str) -> Settings {
    let mut toml = String::new();
    for name in issuers {
        toml.push_str(&format!(
            "[[issuer]]\nname = \"{name}\"\nmetadata = [\"{name}.xml\"]\n\n"
        ));
    }
    toml.push_str(&format!(
        "[[target]]\nfiles = [\"**/*.config\"]\nissuers = [{}]\n\n[policy]\n{policy}\n",
        issuers
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    settings(&toml)
}

pub fn target(display: &str, text: &str, targets: Vec<usize>) -> TargetFile {
    target_bytes(display, text.as_bytes().to_vec(), targets)
}

pub fn target_bytes(display: &str, bytes: Vec<u8>, targets: Vec<usize>) -> TargetFile {
    TargetFile {
        file: scan::parse_config(
            Path::new(display),
            bytes,
            &RuleSet::builtin(),
            &KnownCertificates::default(),
        ),
        targets,
        display: display.to_string(),
        path: Path::new("repo").join(display),
        refused: None,
    }
}

pub fn inputs(
    settings: Settings,
    issuers: Vec<LoadedIssuer>,
    targets: Vec<TargetFile>,
    lock: Lock,
) -> Inputs {
    Inputs {
        settings,
        lock,
        issuers,
        targets,
        warnings: Vec::new(),
        accept_identity_change: BTreeSet::new(),
        databases: Default::default(),
    }
}

pub fn decide(inputs: &Inputs, now: OffsetDateTime) -> Plan {
    keyroll::decide::decide(inputs, &RuleSet::builtin(), now)
}

/// A WIF 4.5 web.config whose one registry holds `entries` (raw XML lines).
pub fn wif45(entries: &[String]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel\" />\n  </configSections>\n  <system.identityModel>\n    <identityConfiguration>\n      <issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">\n        <trustedIssuers>\n",
    );
    for e in entries {
        out.push_str(&format!("          {e}\n"));
    }
    out.push_str("        </trustedIssuers>\n      </issuerNameRegistry>\n    </identityConfiguration>\n  </system.identityModel>\n</configuration>\n");
    out
}

pub fn add(t: &Key, name: &str) -> String {
    format!("<add thumbprint=\"{}\" name=\"{name}\" />", t.hex())
}

/// The file a set of plan changes produces, re-read as the next run would (bytes after the
/// plan as the new base; the lock after the plan as the new lock).
pub fn next_run(inputs: &Inputs, plan: &Plan) -> Inputs {
    let mut next = inputs.clone();
    let written: BTreeMap<&str, &Vec<u8>> = plan
        .files
        .iter()
        .map(|f| (f.display.as_str(), &f.after))
        .collect();
    next.targets = inputs
        .targets
        .iter()
        .map(|t| match written.get(t.display.as_str()) {
            Some(bytes) => target_bytes(&t.display, (*bytes).clone(), t.targets.clone()),
            None => t.clone(),
        })
        .collect();
    next.lock = plan.lock_after.clone();
    next
}

/// What WIF trusts in a file's registries: per registry, in document order, the keys that
/// load and match after WIF's own rules (`<add>`/`<remove>`/`<clear/>` in order, only
/// U+0020 stripped, case-insensitive). Also says whether WIF would refuse to load it.
pub fn wif_trusts(text: &str) -> Result<Vec<BTreeSet<String>>, String> {
    let doc = roxmltree::Document::parse(text.trim_start_matches('\u{feff}'))
        .map_err(|e| e.to_string())?;
    let mut registries = Vec::new();
    for registry in doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "trustedIssuers")
    {
        let mut set: BTreeSet<String> = BTreeSet::new();
        let mut added: BTreeSet<String> = BTreeSet::new();
        for child in registry.children() {
            if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
                return Err("text inside trustedIssuers".into());
            }
            if !child.is_element() {
                continue;
            }
            let key = |n: roxmltree::Node<'_, '_>| {
                n.attribute("thumbprint")
                    .map(|t| t.replace(' ', "").to_ascii_uppercase())
            };
            match child.tag_name().name() {
                "add" => {
                    if child.attributes().count() > 2 {
                        return Err("an <add> with more than two attributes (ID7010)".into());
                    }
                    let k = key(child).ok_or("an <add> without thumbprint (ID7010)")?;
                    // WIF fails at the second equal <add>, before any later <remove>.
                    if !added.insert(k.clone()) {
                        return Err(format!("duplicate key {k}"));
                    }
                    set.insert(k);
                }
                "remove" => {
                    if let Some(k) = key(child) {
                        set.remove(&k);
                        added.remove(&k);
                    }
                }
                "clear" => {
                    set.clear();
                    added.clear();
                }
                other => return Err(format!("unknown element <{other}> (ID7002)")),
            }
        }
        registries.push(set);
    }
    Ok(registries)
}

/// SAML metadata publishing `keys` as signing keys of `entity_id`.
pub fn metadata(entity_id: &str, keys: &[&Key]) -> String {
    idp_entity(" ID=\"_1\"", entity_id, keys)
}

/// [`metadata`] with no `ID`: an entity of an aggregate (`EntitiesDescriptor`), whose
/// entities' IDs would otherwise repeat.
pub fn entity(entity_id: &str, keys: &[&Key]) -> String {
    idp_entity("", entity_id, keys)
}

fn idp_entity(id_attribute: &str, entity_id: &str, keys: &[&Key]) -> String {
    let descriptors: String = keys.iter().map(|k| k.key_descriptor("signing")).collect();
    format!(
        "<EntityDescriptor{id_attribute} entityID=\"{entity_id}\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{descriptors}</IDPSSODescriptor></EntityDescriptor>"
    )
}
