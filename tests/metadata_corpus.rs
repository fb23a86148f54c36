//! Every metadata file of the corpus (tests/data/metadata, copied byte-exact from
//! shared/corpus; provenance in tests/data/SOURCES.md) against its rows of EXPECTED.tsv.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use keyroll::load::metadata::{self, KeyUse};
use keyroll::model::cert::rfc3339;

struct Row {
    entity_id: String,
    key_use: String,
    sha1: String,
    not_before: String,
    not_after: String,
    subject: String,
}

fn expected() -> BTreeMap<String, Vec<Row>> {
    let text = std::fs::read_to_string("tests/data/metadata/EXPECTED.tsv").unwrap();
    let mut by_file: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        by_file.entry(cols[0].to_string()).or_default().push(Row {
            entity_id: cols[1].into(),
            key_use: cols[2].into(),
            sha1: cols[3].into(),
            not_before: cols[4].into(),
            not_after: cols[5].into(),
            subject: cols[6].into(),
        });
    }
    by_file
}

fn parse(file: &str) -> Result<metadata::MetadataDocument, metadata::MetadataError> {
    let path = Path::new("tests/data/metadata").join(file);
    let bytes = std::fs::read(&path).unwrap();
    metadata::parse(file, &bytes, time::OffsetDateTime::UNIX_EPOCH)
}

#[test]
fn every_corpus_file_matches_expected_tsv() {
    let expected = expected();
    let on_disk: BTreeSet<String> = std::fs::read_dir("tests/data/metadata")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml") || n.ends_with(".json"))
        .collect();
    assert_eq!(
        on_disk,
        expected.keys().cloned().collect(),
        "every corpus file has rows"
    );

    let mut checked_rows = 0;
    for (file, rows) in &expected {
        if rows.iter().any(|r| r.not_before.is_empty()) {
            // The ground truth marks a certificate that does not parse: refuse the document.
            continue;
        }
        let doc = parse(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for row in rows {
            checked_rows += 1;
            if row.key_use == "n/a" {
                let signer = doc
                    .signature
                    .as_ref()
                    .and_then(|s| s.signer_sha1)
                    .unwrap_or_else(|| panic!("{file}: signature certificate missing"));
                assert_eq!(signer.to_string(), row.sha1, "{file}: signer");
                continue;
            }
            wanted.insert((row.entity_id.clone(), row.sha1.clone()));
            let key = doc
                .keys
                .iter()
                .find(|k| {
                    k.entity_id.as_deref().unwrap_or("") == row.entity_id
                        && k.thumbprint().to_string() == row.sha1
                })
                .unwrap_or_else(|| panic!("{file}: no key {} for {}", row.sha1, row.entity_id));
            let want_use = match row.key_use.as_str() {
                "signing" => KeyUse::Signing,
                "encryption" => KeyUse::Encryption,
                "unspecified" => KeyUse::Unspecified,
                other => panic!("{file}: unexpected use {other}"),
            };
            assert!(key.uses.contains(&want_use), "{file}: {} use", row.sha1);
            assert_eq!(
                rfc3339(key.certificate.not_before),
                row.not_before,
                "{file}"
            );
            assert_eq!(rfc3339(key.certificate.not_after), row.not_after, "{file}");
            assert_eq!(key.certificate.subject, row.subject, "{file}");
        }
        let got: BTreeSet<(String, String)> = doc
            .keys
            .iter()
            .map(|k| {
                (
                    k.entity_id.clone().unwrap_or_default(),
                    k.thumbprint().to_string(),
                )
            })
            .collect();
        assert_eq!(got, wanted, "{file}: exactly the expected keys, no extras");
    }
    assert!(checked_rows > 140, "checked {checked_rows} rows");
}

#[test]
fn pem_text_inside_base64_is_refused_with_its_position() {
    let err = parse("py3saml-idp_multiple_descriptors.xml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("PEM text"), "{err}");
    assert!(
        err.starts_with("py3saml-idp_multiple_descriptors.xml:"),
        "{err}"
    );
}

#[test]
fn corrupt_x5c_is_refused_naming_the_key() {
    let err = parse("wilson-jsonwebkeyset-bad-x509.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("keys[0] (kid NGTFvdK-fythEuLwjpwAJOM9n-A)"),
        "{err}"
    );
    assert!(err.contains("not a DER certificate"), "{err}");
}

#[test]
fn same_certificate_under_several_roles_is_one_row_listing_them() {
    let doc = parse("adfs-v2-metadata.xml").unwrap();
    assert_eq!(doc.keys.len(), 2);
    let signing = doc
        .keys
        .iter()
        .find(|k| k.thumbprint().to_string() == "28D1BE71EBAB715A8F53CB9FD9D84C4373CD3708")
        .unwrap();
    assert_eq!(
        signing.roles,
        [
            "SecurityTokenServiceType",
            "SPSSODescriptor",
            "IDPSSODescriptor"
        ]
    );
    // AD FS signs its metadata with the current signing key: verified (as xmlsec1 agrees,
    // SIGNATURES.tsv), the signer named.
    let signature = doc.signature.as_ref().unwrap();
    assert!(signature.verified);
    assert_eq!(
        signature.signer_sha1.unwrap().to_string(),
        "28D1BE71EBAB715A8F53CB9FD9D84C4373CD3708"
    );
}

#[test]
fn aggregate_lists_every_entity() {
    let doc = parse("pysaml2-swamid-test-1.0-metadata.xml").unwrap();
    assert!(doc.entity_ids().len() > 40, "{}", doc.entity_ids().len());
    assert!(doc.signature.is_none());
}
