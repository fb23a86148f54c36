//! Metadata as it really arrives (issue 14): in any encoding its BOM or XML declaration names,
//! cut short, and with a CA certificate beside the signing certificate in one X509Data.
//!
//! The encoded fixtures in tests/data/encodings were made from template.xml by GNU iconv
//! (make.sh there); their certificate is the one of tests/data/metadata/idp-metadata.xml.

mod common;
mod kit;

use std::path::Path;

use common::assert_ok;
use keyroll::load::metadata::{self, MetadataDocument, MetadataError};
use kit::Key;
use time::OffsetDateTime;

const FIXTURES: &str = "tests/data/encodings";
/// SHA-1 of the certificate in every fixture (tests/data/metadata/EXPECTED.tsv).
const FIXTURE_SHA1: &str = "9E34F0EE0A7EBF51A9F231372283140EF4BC4A2B";
const ALL_SCRIPTS: &str = "Universität Zürich – Łódź – Москва – 東京 – 😀";

fn parse(source: &str, bytes: &[u8]) -> Result<MetadataDocument, MetadataError> {
    metadata::parse(source, bytes, OffsetDateTime::UNIX_EPOCH)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

/// The template filled in as make.sh does, in UTF-8.
fn template(declared: &str, name: &str) -> String {
    let cert = std::fs::read_to_string(Path::new(FIXTURES).join("cert.b64")).unwrap();
    std::fs::read_to_string(Path::new(FIXTURES).join("template.xml"))
        .unwrap()
        .replace("@ENC@", declared)
        .replace("@NAME@", name)
        .replace("@CERT@\n", &cert)
}

/// Line and column (in characters) of the first `needle`, counted by hand.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, column)
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let units =
        (bom.then_some('\u{FEFF}').into_iter().map(|c| c as u16)).chain(text.encode_utf16());
    units
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

#[test]
fn every_encoding_reads_as_its_utf8_twin() {
    // (file, label in its XML declaration, the encoding read, the name it carries)
    let cases = [
        ("utf-8.xml", "utf-8", "UTF-8", ALL_SCRIPTS),
        // WHATWG: the iso-8859-1 label reads as windows-1252 (same bytes 0xA0–0xFF).
        (
            "iso-8859-1.xml",
            "iso-8859-1",
            "windows-1252",
            "Universität Zürich",
        ),
        (
            "iso-8859-2.xml",
            "ISO-8859-2",
            "ISO-8859-2",
            "Politechnika Łódzka",
        ),
        (
            "iso-8859-5.xml",
            "iso-8859-5",
            "ISO-8859-5",
            "Московский университет",
        ),
        (
            "iso-8859-7.xml",
            "iso-8859-7",
            "ISO-8859-7",
            "Πανεπιστήμιο Αθηνών",
        ),
        (
            "iso-8859-15.xml",
            "ISO_8859-15",
            "ISO-8859-15",
            "Université € Zürich",
        ),
        (
            "windows-1250.xml",
            "windows-1250",
            "windows-1250",
            "Vysoké učení technické v Brně",
        ),
        (
            "windows-1251.xml",
            "windows-1251",
            "windows-1251",
            "Московский университет",
        ),
        (
            "windows-1252.xml",
            "Windows-1252",
            "windows-1252",
            "Université “Zürich” €",
        ),
        ("shift_jis.xml", "Shift_JIS", "Shift_JIS", "東京大学"),
        ("utf-16le-bom.xml", "UTF-16", "UTF-16LE", ALL_SCRIPTS),
        ("utf-16be-bom.xml", "UTF-16", "UTF-16BE", ALL_SCRIPTS),
        // No BOM: recognised by the bytes of `<?` (XML 1.0 appendix F).
        ("utf-16le.xml", "UTF-16", "UTF-16LE", ALL_SCRIPTS),
        ("utf-16be.xml", "UTF-16", "UTF-16BE", ALL_SCRIPTS),
    ];
    for (file, declared, encoding, name) in cases {
        let bytes = fixture(file);
        let doc = parse(file, &bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.encoding, encoding, "{file}");
        assert_eq!(doc.bytes, bytes.len(), "{file}");
        assert_eq!(doc.keys.len(), 1, "{file}");
        let key = &doc.keys[0];
        assert_eq!(key.thumbprint().to_string(), FIXTURE_SHA1, "{file}");
        let entity_id = format!("https://idp.example.org/{name}");
        assert_eq!(key.entity_id.as_deref(), Some(entity_id.as_str()), "{file}");
        // The position is in characters of the decoded text: the same as in UTF-8.
        let (line, column) = position_of(&template(declared, name), "<ds:X509Certificate>");
        assert_eq!(
            key.location,
            format!("line {line}, column {column}"),
            "{file}"
        );
        // The same text stored as UTF-8 reads to the same key at the same place.
        let twin = parse("twin", template("utf-8", name).as_bytes()).unwrap();
        assert_eq!(twin.keys[0].location, key.location, "{file}");
        assert_eq!(twin.keys[0].entity_id, key.entity_id, "{file}");
    }
}

#[test]
fn a_certificate_error_in_utf16_is_at_its_line_and_column_in_characters() {
    let text = template("UTF-16", ALL_SCRIPTS).replacen("MIIFQTCC", "MIIF!TCC", 1);
    let (line, column) = position_of(&text, "<ds:X509Certificate>");
    for (big_endian, bom) in [(false, true), (true, true), (false, false), (true, false)] {
        let err = parse("md.xml", &utf16(&text, big_endian, bom))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("md.xml:{line}:{column}: certificate of https://idp.example.org/{ALL_SCRIPTS} in IDPSSODescriptor: invalid base64")),
            "{err}"
        );
    }
}

#[test]
fn bytes_invalid_in_the_declared_encoding_are_an_error_where_they_are() {
    // 0xAE has no character in ISO-8859-7: put it before the name on the OrganizationName line.
    let mut bytes = fixture("iso-8859-7.xml");
    let needle = b"<md:OrganizationName xml:lang=\"und\">";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len();
    bytes.insert(at, 0xAE);
    let text = template("iso-8859-7", "Πανεπιστήμιο Αθηνών");
    let (line, column) = position_of(&text, "Πανεπιστήμιο Αθηνών</md:OrganizationName>");
    let err = parse("greek.xml", &bytes).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("greek.xml:{line}:{column}: 1 byte is not valid ISO-8859-7")
    );

    // An unpaired surrogate in UTF-16, on the same line after the name (which has one pair).
    let text = template("UTF-16", ALL_SCRIPTS);
    let needle = format!("{ALL_SCRIPTS}</md:OrganizationName>");
    let (line, column) = position_of(&text, &needle);
    let column = column + ALL_SCRIPTS.chars().count();
    let mut units: Vec<u16> = text.encode_utf16().collect();
    let name_end = text.find(&needle).unwrap() + ALL_SCRIPTS.len();
    let unit_index = text[..name_end].encode_utf16().count();
    units.insert(unit_index, 0xD800);
    let bytes: Vec<u8> = [0xFEFFu16]
        .iter()
        .chain(&units)
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let err = parse("lone.xml", &bytes).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("lone.xml:{line}:{column}: 2 bytes are not valid UTF-16LE")
    );
}

#[test]
fn declarations_that_cannot_be_honoured_are_refused_naming_the_label() {
    let text = template("x-klingon", "Qo'noS");
    let (line, column) = position_of(&text, "x-klingon");
    let err = parse("k.xml", text.as_bytes()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "k.xml:{line}:{column}: the XML declaration names encoding \"x-klingon\", which keyroll cannot decode"
        )
    );

    let text = template("UTF-16", "plain");
    let err = parse("u.xml", text.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("names encoding \"UTF-16\", but the document has no byte-order mark"),
        "{err}"
    );

    let mut utf32 = vec![0xFF, 0xFE, 0x00, 0x00];
    utf32.extend(text.chars().flat_map(|c| (c as u32).to_le_bytes()));
    let err = parse("w.xml", &utf32).unwrap_err().to_string();
    assert!(err.contains("UTF-32 documents are not supported"), "{err}");
}

/// A document cut short is reported where it ends, not at 1:1.
#[test]
fn a_truncated_document_is_reported_where_it_ends() {
    let whole = std::fs::read("tests/data/metadata/idp-metadata.xml").unwrap();
    for cut in [3000, 5000, 7000] {
        let text = std::str::from_utf8(&whole[..cut]).unwrap();
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().unwrap().chars().count() + 1;
        let err = parse("idp.xml", text.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "idp.xml:{line}:{column}: malformed XML: the document ends here, before its root element is closed (truncated?)"
            ),
        );
    }
    // AD FS writes one line: the column is where it stops.
    let adfs = std::fs::read("tests/data/metadata/adfs-v2-metadata.xml").unwrap();
    let err = parse("adfs.xml", &adfs[..20_000]).unwrap_err().to_string();
    assert!(
        err.starts_with("adfs.xml:1:20001: malformed XML: the document ends here"),
        "{err}"
    );
    // In UTF-16 too, counted in characters.
    let text = template("UTF-16", ALL_SCRIPTS);
    let cut: String = text.chars().take(1500).collect();
    let line = cut.matches('\n').count() + 1;
    let column = cut.rsplit('\n').next().unwrap().chars().count() + 1;
    let err = parse("cut.xml", &utf16(&cut, false, true))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "cut.xml:{line}:{column}: malformed XML: the document ends here"
        )),
        "{err}"
    );
}

/// A root CA, an intermediate it issued, and a signing certificate the intermediate issued.
fn chain() -> (Key, Key, Key) {
    let params = |cn: &str, ca: bool| {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if ca {
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        p
    };
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root_params = params("Contoso Root CA", true);
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::from_params(&root_params, &root_key);
    let mid_key = rcgen::KeyPair::generate().unwrap();
    let mid_params = params("Contoso Issuing CA", true);
    let mid = mid_params.signed_by(&mid_key, &root_issuer).unwrap();
    let mid_issuer = rcgen::Issuer::from_params(&mid_params, &mid_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = params("ADFS Signing - fs.contoso.com", false)
        .signed_by(&leaf_key, &mid_issuer)
        .unwrap();
    (
        Key::from_der(root.der().to_vec()),
        Key::from_der(mid.der().to_vec()),
        Key::from_der(leaf.der().to_vec()),
    )
}

fn x509data(certs: &[&Key]) -> String {
    let inner: String = certs
        .iter()
        .map(|c| format!("<ds:X509Certificate>{}</ds:X509Certificate>", c.base64()))
        .collect();
    format!("<ds:KeyInfo><ds:X509Data>{inner}</ds:X509Data></ds:KeyInfo>")
}

fn entity(signature: &str, key_infos: &[String]) -> String {
    let keys: String = key_infos
        .iter()
        .map(|k| format!("<md:KeyDescriptor use=\"signing\">{k}</md:KeyDescriptor>"))
        .collect();
    format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ID=\"_1\" entityID=\"http://fs.contoso.com/adfs/services/trust\">{signature}<md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{keys}</md:IDPSSODescriptor></md:EntityDescriptor>"
    )
}

#[test]
fn x509data_with_its_ca_keeps_only_the_leaf_as_the_key() {
    let (root, mid, leaf) = chain();
    for order in [
        vec![&leaf, &mid],
        vec![&mid, &leaf],
        vec![&root, &leaf, &mid],
    ] {
        let doc = parse("md.xml", entity("", &[x509data(&order)]).as_bytes()).unwrap();
        let keys: Vec<String> = doc
            .keys
            .iter()
            .map(|k| k.thumbprint().to_string())
            .collect();
        assert_eq!(keys, [leaf.hex().as_str()], "order {:?}", order.len());
        assert_eq!(doc.notes.len(), 1, "{:?}", doc.notes);
        let note = &doc.notes[0];
        assert!(
            note.contains(&format!(
                "the key is the leaf {} (CN=ADFS Signing - fs.contoso.com)",
                leaf.hex()
            )),
            "{note}"
        );
        assert!(
            note.contains(&format!("{} (CN=Contoso Issuing CA)", mid.hex())),
            "{note}"
        );
        assert!(note.contains("not counted as a key"), "{note}");
        assert_eq!(note.contains(&root.hex()), order.len() == 3, "{note}");
    }
}

#[test]
fn the_same_chain_under_several_roles_is_noted_once() {
    let (_, mid, leaf) = chain();
    let key_info = x509data(&[&leaf, &mid]);
    let doc = parse(
        "md.xml",
        entity("", &[key_info.clone(), key_info]).as_bytes(),
    )
    .unwrap();
    assert_eq!(doc.keys.len(), 1);
    assert_eq!(doc.notes.len(), 1, "{:?}", doc.notes);
}

#[test]
fn unrelated_certificates_in_one_x509data_are_each_a_key() {
    let (root, _, _) = chain();
    let other = Key::from_der(
        rcgen::CertificateParams::new(vec!["other.example".to_string()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec(),
    );
    let doc = parse(
        "md.xml",
        entity("", &[x509data(&[&root, &other])]).as_bytes(),
    )
    .unwrap();
    let mut keys: Vec<String> = doc
        .keys
        .iter()
        .map(|k| k.thumbprint().to_string())
        .collect();
    keys.sort();
    let mut expected = vec![root.hex(), other.hex()];
    expected.sort();
    assert_eq!(keys, expected);
    assert!(doc.notes.is_empty(), "{:?}", doc.notes);
}

#[test]
fn the_signers_certificate_is_the_leaf_of_its_key_info() {
    let (_, mid, leaf) = chain();
    let signature = format!(
        "<ds:Signature><ds:SignedInfo><ds:Reference URI=\"#_1\"/></ds:SignedInfo>{}</ds:Signature>",
        x509data(&[&mid, &leaf])
    );
    let doc = parse(
        "md.xml",
        entity(&signature, &[x509data(&[&leaf])]).as_bytes(),
    )
    .unwrap();
    let signer = doc.signature.unwrap().signer_sha1.unwrap();
    assert_eq!(signer.to_string(), leaf.hex());
}

#[test]
fn a_jwks_x5c_chain_yields_only_its_first_certificate() {
    let (_, mid, leaf) = chain();
    let jwks = serde_json::json!({
        "keys": [{"kty": "RSA", "use": "sig", "kid": "k1", "x5c": [leaf.base64(), mid.base64()]}]
    });
    let doc = parse("jwks.json", jwks.to_string().as_bytes()).unwrap();
    let keys: Vec<String> = doc
        .keys
        .iter()
        .map(|k| k.thumbprint().to_string())
        .collect();
    assert_eq!(keys, [leaf.hex().as_str()]);
}

#[test]
fn inspect_shows_the_chain_note() {
    let (_, mid, leaf) = chain();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("md.xml");
    std::fs::write(&path, entity("", &[x509data(&[&leaf, &mid])])).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["inspect", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let certs: Vec<&str> = json["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha1"].as_str().unwrap())
        .collect();
    assert_eq!(certs, [leaf.hex().as_str()]);
    let notes = json["notes"].as_array().unwrap();
    assert!(notes[0].as_str().unwrap().contains(&mid.hex()), "{notes:?}");
}

/// AD FS writes one line; 2,000 KeyDescriptors on it still get the right columns.
#[test]
fn columns_on_a_one_line_document_with_many_key_descriptors() {
    let (_, _, leaf) = chain();
    let key = format!(
        "<md:KeyDescriptor use=\"signing\"><!-- é -->{}</md:KeyDescriptor>",
        x509data(&[&leaf])
    );
    let mut text = String::from(
        "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
    );
    let mut expected = Vec::new();
    for i in 0..2000 {
        let head = format!(
            "<md:EntityDescriptor entityID=\"https://sp{i}.example.org/\"><md:SPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">"
        );
        let at = text.len() + head.len() + key.find("<ds:X509Certificate>").unwrap();
        text.push_str(&head);
        text.push_str(&key);
        text.push_str("</md:SPSSODescriptor></md:EntityDescriptor>");
        expected.push(format!("line 1, column {}", text[..at].chars().count() + 1));
    }
    text.push_str("</md:EntitiesDescriptor>");
    let doc = parse("agg.xml", text.as_bytes()).unwrap();
    let locations: Vec<&str> = doc.keys.iter().map(|k| k.location.as_str()).collect();
    assert_eq!(locations, expected);
}
