//! keyroll's XML signature verification against an independent implementation: every
//! document here is signed by the Debian `xmlsec1` CLI (libxmlsec1 over libxml2 and OpenSSL)
//! with keys the `openssl` CLI generates for this run, and every verdict is compared with
//! `xmlsec1 --verify --insecure --enabled-key-data x509`. Both tools are installed by
//! scripts/test; a test whose tool is missing fails.
//!
//! Where keyroll is stricter than xmlsec1 (a signature that verifies but does not cover the
//! root element, from which keys are read), the test says so and asserts both verdicts.

use std::path::Path;
use std::time::Instant;

use keyroll::load::metadata;
use keyroll::load::signature::{self, Policy, Refusal, SignatureReport, Verdict};
use keyroll::model::cert::rfc3339;

mod sigkit;
use sigkit::*;

fn refusal(report: &SignatureReport) -> &Refusal {
    match &report.verdict {
        Verdict::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_valid(xml: &str, policy: Policy, signer: &Signer) -> SignatureReport {
    let report = signature::verify(xml, policy);
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary());
    assert_eq!(
        report.signature.as_ref().unwrap().signer_sha1,
        Some(signer.certificate.sha1)
    );
    assert_eq!(report.signer(), Some(&signer.certificate));
    assert!(
        report
            .signature
            .as_ref()
            .unwrap()
            .verified_with_embedded_key
    );
    report
}

/// keyroll and xmlsec1 agree that the document verifies.
fn both_accept(xml: &str, signer: &Signer) -> SignatureReport {
    assert!(xmlsec_verifies(xml), "xmlsec1 refuses:\n{xml}");
    assert_valid(xml, Policy::STRICT, signer)
}

/// keyroll and xmlsec1 agree that the document does not verify.
fn both_refuse(xml: &str) -> SignatureReport {
    assert!(!xmlsec_verifies(xml), "xmlsec1 accepts:\n{xml}");
    let report = signature::verify(xml, Policy::LEGACY);
    refusal(&report);
    report
}

fn signature_element(xml: &str) -> (usize, usize) {
    let start = xml.find("<ds:Signature ").unwrap();
    let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    (start, end)
}

fn without_declaration(xml: &str) -> &str {
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim_start(),
        None => xml,
    }
}

/// 1-based line of a byte offset.
fn line_at(xml: &str, offset: usize) -> usize {
    xml[..offset].matches('\n').count() + 1
}

fn thumbprints(xml: &str) -> Vec<String> {
    metadata::parse("doc.xml", xml.as_bytes(), time::OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .keys
        .iter()
        .map(|k| k.thumbprint().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Documents xmlsec1 signs, keyroll verifies.

#[test]
fn adfs_shaped_document_verifies_and_names_its_signer_and_signed_element() {
    let k = keys();
    let xml = adfs_like();
    let report = both_accept(xml, &k.current);
    let details = report.signature.as_ref().unwrap();
    assert_eq!(details.reference_uri.as_deref(), Some("#_a1"));
    assert_eq!(
        details.canonicalization.as_deref(),
        Some(signature::EXC_C14N)
    );
    assert_eq!(
        details.signature_method.as_deref(),
        Some(signature::RSA_SHA256)
    );
    assert_eq!(details.digest_method.as_deref(), Some(signature::SHA256));
    assert_eq!(
        details.transforms,
        [signature::ENVELOPED_SIGNATURE, signature::EXC_C14N]
    );
    assert_eq!(details.key_info_certificates, 1);
    assert_eq!(
        report.summary(),
        format!(
            "valid: signed by {} (rsa-sha256, sha256, exc-c14n)",
            k.current.certificate.sha1
        )
    );

    // The signed element is the root, byte for byte: keys are read from exactly it.
    let signed = report.signed_element.as_ref().unwrap();
    assert_eq!(signed.local_name, "EntityDescriptor");
    assert_eq!(signed.id.as_deref(), Some("_a1"));
    assert_eq!(signed.at.line, 2);
    assert!(xml[signed.range.clone()].starts_with("<EntityDescriptor"));
    assert_eq!(&xml[signed.range.end..], "\n");
    let key_at = xml.find(&k.next.base64()[..64]).unwrap();
    assert!(signed.covers(&(key_at..key_at + 64)));
    assert!(!signed.covers(&(0..5)), "the XML declaration is outside");
    assert!(report.nested_signatures.is_empty());

    // Freshness as published.
    assert_eq!(
        report.freshness.valid_until.map(rfc3339).as_deref(),
        Some("2031-01-01T00:00:00Z")
    );
    assert_eq!(report.freshness.cache_duration.as_deref(), Some("PT1H"));
    assert!(report.freshness.problems.is_empty());

    // What the report says in JSON (the contract with the plan and the Action).
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"]["status"], "valid");
    assert_eq!(
        json["signature"]["signer_sha1"],
        k.current.certificate.sha1.to_string()
    );
    assert_eq!(json["freshness"]["valid_until"], "2031-01-01T00:00:00Z");
}

#[test]
fn every_canonicalization_variant_verifies() {
    let k = keys();
    let variants: Vec<(&str, Shape<'_>)> = vec![
        (
            "exclusive with comments",
            Shape::canonicalized(signature::EXC_C14N_WITH_COMMENTS),
        ),
        ("inclusive", Shape::canonicalized(signature::C14N)),
        (
            "inclusive with comments",
            Shape::canonicalized(signature::C14N_WITH_COMMENTS),
        ),
        (
            "enveloped only (inclusive by default)",
            Shape {
                transforms: vec![(signature::ENVELOPED_SIGNATURE, None)],
                ..Shape::default()
            },
        ),
        (
            "exclusive with InclusiveNamespaces",
            Shape {
                c14n_prefixes: Some("xsi #default"),
                transforms: vec![
                    (signature::ENVELOPED_SIGNATURE, None),
                    (signature::EXC_C14N, Some("fed xsi unused #default")),
                ],
                ..Shape::default()
            },
        ),
        (
            "rsa-sha512",
            Shape::hashed(signature::RSA_SHA512, signature::SHA512),
        ),
        (
            "rsa-sha384",
            Shape::hashed(signature::RSA_SHA384, signature::SHA384),
        ),
    ];
    for (name, shape) in variants {
        let xml = signed_entity(&shape, &k.current);
        assert!(xmlsec_verifies(&xml), "{name}: xmlsec1 refuses");
        let report = signature::verify(&xml, Policy::STRICT);
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "{name}: {}",
            report.summary()
        );
        // And a changed byte in the published key breaks it, for this variant too.
        let tampered = xml.replacen("Contoso &amp; Co", "Contoso &amp; Cp", 1);
        assert!(!xmlsec_verifies(&tampered), "{name}: xmlsec1 accepts");
        assert_eq!(
            refusal(&signature::verify(&tampered, Policy::STRICT)).kind(),
            "digest-mismatch",
            "{name}"
        );
    }
}

#[test]
fn crlf_line_endings_and_a_bom_verify() {
    // A checkout that turned LF into CRLF (git on Windows): XML parsers read CRLF as LF, so
    // the signature still holds.
    let k = keys();
    let signed = adfs_like().replace('\n', "\r\n");
    both_accept(&signed, &k.current);
    // A BOM is outside the signed element.
    let with_bom = format!("\u{feff}{signed}");
    let report = both_accept(&with_bom, &k.current);
    let range = report.signed_element.unwrap().range;
    assert!(with_bom[range].starts_with("<EntityDescriptor"));
}

#[test]
fn uri_empty_signs_the_whole_document() {
    let k = keys();
    let template = format!(
        "<?xml version=\"1.0\"?>\n<?keyroll-before the root?>\n<!-- before the root -->\n{}\n<?keyroll-after the root?>",
        entity(
            "_a1",
            ENTITY_ID,
            &signature_template(&Shape::default(), ""),
            &k.current.base64(),
            &k.next.base64(),
        )
    );
    let signed = xmlsec_sign(&template, &k.current);
    let report = both_accept(&signed, &k.current);
    assert_eq!(report.signed_element.as_ref().unwrap().id, None);
    // The PIs outside the root are part of the whole document: changing one breaks it.
    let tampered = signed.replace("keyroll-after the root", "keyroll-after the rooT");
    assert_eq!(refusal(&both_refuse(&tampered)).kind(), "digest-mismatch");
}

#[test]
fn rsa_sha1_verifies_only_when_the_policy_allows_it() {
    let k = keys();
    let shape = Shape::hashed(signature::RSA_SHA1, signature::SHA1);
    let xml = signed_entity(&shape, &k.current);
    assert!(xmlsec_verifies(&xml));
    let strict = signature::verify(&xml, Policy::STRICT);
    assert_eq!(
        refusal(&strict).to_string(),
        format!(
            "SignatureMethod algorithm {} uses SHA-1, which the policy does not allow",
            signature::RSA_SHA1
        )
    );
    // The report still names who signed it.
    assert_eq!(
        strict.signature.unwrap().signer_sha1,
        Some(k.current.certificate.sha1)
    );
    let allowed = Policy {
        allow_sha1: true,
        ..Policy::STRICT
    };
    assert_valid(&xml, allowed, &k.current);

    // A SHA-1 digest under an RSA-SHA256 signature is SHA-1 all the same.
    let sha1_digest = signed_entity(
        &Shape {
            digest_method: signature::SHA1,
            ..Shape::default()
        },
        &k.current,
    );
    assert_eq!(
        refusal(&signature::verify(&sha1_digest, Policy::STRICT)).kind(),
        "sha1-not-allowed"
    );
    assert_valid(&sha1_digest, allowed, &k.current);
}

#[test]
fn a_1024_bit_key_verifies_only_when_the_policy_allows_it() {
    let k = keys();
    let xml = signed_entity(&Shape::default(), &k.weak);
    assert!(xmlsec_verifies(&xml));
    let strict = signature::verify(&xml, Policy::STRICT);
    assert_eq!(
        refusal(&strict).to_string(),
        format!(
            "the signature's certificate {} has a 1024-bit RSA key, below 2048 bits",
            k.weak.certificate.sha1
        )
    );
    assert_valid(
        &xml,
        Policy {
            allow_rsa_1024: true,
            ..Policy::STRICT
        },
        &k.weak,
    );
}

#[test]
fn a_document_resigned_by_another_key_verifies_and_names_that_key() {
    // Whether the signer is trusted is the caller's decision: the report must name the key
    // that really signed, not a key the document lists.
    let k = keys();
    let xml = signed_entity(&Shape::default(), &k.attacker);
    let report = both_accept(&xml, &k.attacker);
    assert_ne!(
        report.signature.unwrap().signer_sha1,
        Some(k.current.certificate.sha1)
    );
}

#[test]
fn a_signed_aggregate_with_signed_entities_inside_verifies() {
    let k = keys();
    let inner = signed_entity(&Shape::default(), &k.current);
    let template = format!(
        r#"<?xml version="1.0"?>
<EntitiesDescriptor ID="_fed" Name="urn:keyroll:test:federation" validUntil="2031-06-01T00:00:00.5Z" cacheDuration="P1D" xmlns="{MD}">{signature}
<EntitiesDescriptor Name="group"><!-- nested group -->
{inner}
{other}
</EntitiesDescriptor>
</EntitiesDescriptor>"#,
        signature = signature_template(&Shape::default(), "#_fed"),
        inner = without_declaration(&inner),
        other = entity(
            "_e2",
            "https://sp.example.test/",
            "",
            &k.next.base64(),
            &k.next.base64()
        ),
    );
    let signed = xmlsec_sign(&template, &k.attacker);
    let report = both_accept(&signed, &k.attacker);
    // The entity's own signature is inside the signed root: covered, counted, not verified.
    assert_eq!(report.nested_signatures.len(), 1);
    let nested = signed.match_indices("<ds:Signature ").nth(1).unwrap().0;
    assert_eq!(
        report.nested_signatures[0].line as usize,
        line_at(&signed, nested)
    );
    assert_eq!(
        report.signed_element.as_ref().unwrap().local_name,
        "EntitiesDescriptor"
    );
    assert_eq!(
        report.freshness.valid_until.map(rfc3339).as_deref(),
        Some("2031-06-01T00:00:00.5Z")
    );
    assert_eq!(report.freshness.cache_duration.as_deref(), Some("P1D"));

    // Tampering with the nested entity breaks the aggregate's signature.
    let tampered = signed.replacen("Contoso &amp; Co", "Contoso &amp; Cp", 1);
    assert_eq!(refusal(&both_refuse(&tampered)).kind(), "digest-mismatch");
}

// ---------------------------------------------------------------------------------------
// Attacks: each refused, as xmlsec1 refuses it, or (signature wrapping) refused where
// xmlsec1 accepts because keys would be read from content the signature does not cover.

#[test]
fn one_changed_byte_inside_a_key_descriptor_certificate_is_refused() {
    let k = keys();
    let xml = adfs_like();
    let cert = k.next.base64();
    let line = &wrapped(&cert)[..64];
    let at = xml.find(line).unwrap() + 40;
    let mut bytes = xml.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let report = both_refuse(&tampered);
    assert!(report.is_signed());
    assert_eq!(refusal(&report).kind(), "digest-mismatch");
    assert!(
        refusal(&report)
            .to_string()
            .starts_with("digest mismatch: the signed element changed after signing (DigestValue ")
    );
    assert!(report.signed_element.is_none());
    assert!(report.signer().is_none());
    // The signature itself is good, and the report says by whom it was made.
    let details = report.signature.unwrap();
    assert!(details.verified_with_embedded_key);
    assert_eq!(details.signer_sha1, Some(k.current.certificate.sha1));
}

#[test]
fn a_changed_signature_value_is_refused() {
    let xml = adfs_like();
    let at = xml.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len() + 10;
    let mut bytes = xml.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let report = both_refuse(&tampered);
    assert_eq!(
        refusal(&report).to_string(),
        format!(
            "signature mismatch: SignatureValue does not verify with the key of certificate {}",
            keys().current.certificate.sha1
        )
    );
    assert!(!report.signature.unwrap().verified_with_embedded_key);
}

#[test]
fn a_moved_signature_is_refused_although_xmlsec_accepts_it() {
    // Moved from the root into IDPSSODescriptor: the enveloped transform removes it wherever
    // it is, so the digest still matches and xmlsec1 accepts. keyroll refuses: a signature
    // must be a child of the element it signs.
    let xml = adfs_like();
    let (start, end) = signature_element(xml);
    let signature = &xml[start..end];
    let rest = format!("{}{}", &xml[..start], &xml[end..]);
    let anchor = rest.find("<IDPSSODescriptor").unwrap();
    let anchor = anchor + rest[anchor..].find('>').unwrap() + 1;
    let moved = format!("{}{}{}", &rest[..anchor], signature, &rest[anchor..]);
    assert!(
        xmlsec_verifies(&moved),
        "xmlsec1 accepts the moved signature"
    );
    let report = signature::verify(&moved, Policy::LEGACY);
    let line_start = moved[..anchor].rfind('\n').unwrap() + 1;
    assert_eq!(
        refusal(&report).to_string(),
        format!(
            "the document's signature (line {}, column {}) is inside <IDPSSODescriptor>, not a child of the root element: it does not cover the whole document",
            line_at(&moved, anchor),
            anchor - line_start + 1
        )
    );
    // Still described, for the report.
    assert_eq!(
        report.signature.unwrap().signer_sha1,
        Some(keys().current.certificate.sha1)
    );
}

#[test]
fn a_duplicated_signature_is_refused() {
    let xml = adfs_like();
    let (start, end) = signature_element(xml);
    let doubled = format!("{}{}{}", &xml[..end], &xml[start..end], &xml[end..]);
    let report = both_refuse(&doubled);
    assert!(report.is_signed());
    assert_eq!(
        refusal(&report).to_string(),
        format!(
            "the root element carries 2 signatures (lines {}, {}); exactly one is accepted",
            line_at(&doubled, start),
            line_at(&doubled, end)
        )
    );
}

/// An attacker's entity, with the attacker's key, around or beside the signed document.
fn evil_entity(id: &str, inside: &str) -> String {
    let attacker = keys().attacker.base64();
    format!(
        r#"<EntityDescriptor ID="{id}" entityID="{ENTITY_ID}" xmlns="{MD}">{inside}<RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706"><KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{attacker}</X509Certificate></X509Data></KeyInfo></KeyDescriptor></RoleDescriptor></EntityDescriptor>"#
    )
}

#[test]
fn a_second_entity_descriptor_wrapped_around_the_signed_one_is_refused() {
    // The signed entity, untouched, inside an attacker's root: its signature still verifies
    // (xmlsec1 accepts), but a reader of the root would find the attacker's key.
    let k = keys();
    let signed = without_declaration(adfs_like());
    let wrapped_doc = evil_entity("_evil", &format!("<Extensions>{signed}</Extensions>"));
    assert!(thumbprints(&wrapped_doc).contains(&k.attacker.certificate.sha1.to_string()));
    assert!(
        xmlsec_verifies(&wrapped_doc),
        "xmlsec1 accepts the wrapped document"
    );
    let report = signature::verify(&wrapped_doc, Policy::LEGACY);
    assert_eq!(refusal(&report).kind(), "not-on-root");
    assert!(report.signed_element.is_none());

    // The same, with the signature hoisted onto the attacker's root: its Reference still
    // names the inner entity.
    let (start, end) = signature_element(signed);
    let inner_unsigned = format!("{}{}", &signed[..start], &signed[end..]);
    let hoisted = evil_entity(
        "_evil",
        &format!(
            "{}<Extensions>{inner_unsigned}</Extensions>",
            &signed[start..end]
        ),
    );
    assert!(
        xmlsec_verifies(&hoisted),
        "xmlsec1 accepts the hoisted signature"
    );
    let report = signature::verify(&hoisted, Policy::LEGACY);
    assert_eq!(
        refusal(&report).to_string(),
        "the signature's Reference points at \"#_a1\", not the root element (\"#_evil\"): keys would be read from content it does not cover"
    );

    // And an aggregate holding the signed entity beside an attacker's one.
    let aggregate = format!(
        r#"<EntitiesDescriptor xmlns="{MD}">{signed}{}</EntitiesDescriptor>"#,
        evil_entity("_evil", "")
    );
    assert!(xmlsec_verifies(&aggregate), "xmlsec1 accepts the aggregate");
    assert_eq!(
        refusal(&signature::verify(&aggregate, Policy::LEGACY)).kind(),
        "not-on-root"
    );
}

#[test]
fn a_duplicate_id_is_refused() {
    // The attacker's root takes the signed entity's ID, with the signature hoisted onto it:
    // "#_a1" now names two elements.
    let signed = without_declaration(adfs_like());
    let (start, end) = signature_element(signed);
    let inner_unsigned = format!("{}{}", &signed[..start], &signed[end..]);
    let doc = evil_entity(
        "_a1",
        &format!(
            "{}<Extensions>{inner_unsigned}</Extensions>",
            &signed[start..end]
        ),
    );
    let report = both_refuse(&doc);
    let inner = doc.rfind("<EntityDescriptor ").unwrap();
    assert_eq!(
        refusal(&report).to_string(),
        format!(
            "ID \"_a1\" is carried by 2 elements (lines 1, {}); the signed element must be unambiguous",
            line_at(&doc, inner)
        )
    );

    // Even when the duplicate sits in an element no key is read from, and inside the
    // signed content (so xmlsec1 sees a changed digest as well).
    let xml = adfs_like();
    let duplicate = xml.replacen("<Organization>", "<Organization ID=\"_a1\">", 1);
    let report = both_refuse(&duplicate);
    assert_eq!(refusal(&report).kind(), "duplicate-id");
}

#[test]
fn a_comment_injected_into_a_certificate_changes_nothing_that_is_read() {
    // Canonicalization drops comments from a same-document Reference, so a comment put into
    // a certificate's text leaves the signature valid; xmlsec1 agrees. What matters is that
    // the key read from the document is the signed one: the metadata reader joins the text
    // on both sides of the comment.
    let k = keys();
    for shape in [
        Shape::default(),
        Shape::canonicalized(signature::EXC_C14N_WITH_COMMENTS),
    ] {
        let xml = signed_entity(&shape, &k.current);
        let cert = k.current.base64();
        let at = xml.find(&cert).unwrap() + 100;
        let injected = format!("{}<!--injected-->{}", &xml[..at], &xml[at..]);
        both_accept(&injected, &k.current);
        assert_eq!(thumbprints(&injected), thumbprints(&xml));
        assert!(thumbprints(&injected).contains(&k.current.certificate.sha1.to_string()));
    }
}

#[test]
fn a_reference_to_a_nested_element_is_refused() {
    // A signature on the root whose Reference covers only the RoleDescriptor: valid for
    // xmlsec1, but the keys of the rest of the document would be unsigned.
    let k = keys();
    let template = format!(
        "<?xml version=\"1.0\"?>\n{}",
        entity(
            "_a1",
            ENTITY_ID,
            &signature_template(&Shape::default(), "#_role"),
            &k.current.base64(),
            &k.next.base64(),
        )
        .replacen("<RoleDescriptor ", "<RoleDescriptor ID=\"_role\" ", 1)
    );
    let dir = tempfile::tempdir().unwrap();
    // xmlsec1 must know RoleDescriptor's ID attribute to sign and verify this.
    std::fs::write(dir.path().join("t.xml"), &template).unwrap();
    let key = format!(
        "{},{}",
        k.current.key.to_str().unwrap(),
        k.current.cert.to_str().unwrap()
    );
    let role_id = "urn:oasis:names:tc:SAML:2.0:metadata:RoleDescriptor";
    let out = run(
        "xmlsec1",
        &[
            "--sign",
            "--privkey-pem",
            &key,
            "--id-attr:ID",
            role_id,
            "--output",
            "s.xml",
            "t.xml",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        "xmlsec1",
        &[
            "--verify",
            "--insecure",
            "--enabled-key-data",
            "x509",
            "--id-attr:ID",
            role_id,
            "s.xml",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "xmlsec1 accepts a signature on the RoleDescriptor"
    );
    let signed = std::fs::read_to_string(dir.path().join("s.xml")).unwrap();
    let report = signature::verify(&signed, Policy::LEGACY);
    assert_eq!(
        refusal(&report).to_string(),
        "the signature's Reference points at \"#_role\", not the root element (\"#_a1\"): keys would be read from content it does not cover"
    );
}

#[test]
fn keyroll_never_accepts_a_byte_change_xmlsec_refuses() {
    // Every 5th byte of the signed element changed in turn. keyroll must not panic, and
    // whatever it still accepts as signed by the issuer's key (a changed byte in a comment,
    // say) xmlsec1 must accept too.
    //
    // Two known differences, both harmless, are left out or told apart:
    // - Bytes before the root: a "#ID" Reference does not cover them, and there roxmltree is
    //   more lenient than libxml2 (`<?xmlxversion="1.0"?>` reads as a PI), so keyroll accepts
    //   a few changes xmlsec1 refuses as malformed XML. Not mutated here.
    // - Bytes of the signature's own certificate: OpenSSL refuses to read a certificate whose
    //   DER breaks its rules (a CN that is not UTF-8, a SEQUENCE tag without its constructed
    //   bit) that x509-parser reads, and the RSA key inside is unchanged, so the signature
    //   still verifies for keyroll. keyroll then names the signer by the SHA-1 of the bytes
    //   given, which is the thumbprint of no certificate the issuer ever had: the document is
    //   signed by an unknown key, and the caller does not trust it. Asserted below.
    let xml = adfs_like();
    let issuer_key = keys().current.certificate.sha1;
    let root = xml.find("<EntityDescriptor").unwrap();
    let key_info = xml.find("<ds:KeyInfo>").unwrap()..xml.find("</ds:KeyInfo>").unwrap();
    let mut accepted = 0;
    let mut unknown_signer = 0;
    for at in (root..xml.len()).step_by(5) {
        let mut bytes = xml.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
        let Ok(mutated) = String::from_utf8(bytes) else {
            continue;
        };
        let report = signature::verify(&mutated, Policy::STRICT);
        if !report.is_valid() {
            continue;
        }
        let signer = report.signer().unwrap().sha1;
        if signer == issuer_key {
            accepted += 1;
            assert!(
                xmlsec_verifies(&mutated),
                "keyroll accepts a change at byte {at} that xmlsec1 refuses: {:?}",
                &mutated[at.saturating_sub(60)..(at + 20).min(mutated.len())]
            );
        } else {
            unknown_signer += 1;
            assert!(
                key_info.contains(&at),
                "byte {at} changed the signer's thumbprint from outside KeyInfo"
            );
        }
    }
    // The comment inside the root is there to be changed harmlessly; some certificate bytes
    // are read by x509-parser and not by OpenSSL.
    assert!(accepted > 0);
    assert!(unknown_signer > 0);
}

#[test]
fn unsupported_shapes_are_refused_with_their_reason() {
    let xml = adfs_like();
    // Two References.
    let (start, _) = signature_element(xml);
    let reference_start = xml[start..].find("<ds:Reference").unwrap() + start;
    let reference_end = xml[start..].find("</ds:Reference>").unwrap() + start + 15;
    let two = format!(
        "{}{}{}",
        &xml[..reference_end],
        &xml[reference_start..reference_end],
        &xml[reference_end..]
    );
    assert_eq!(
        refusal(&signature::verify(&two, Policy::LEGACY)).to_string(),
        "the signature has 2 References; exactly one, to the root element, is accepted"
    );
    // An XPath transform.
    let xpath = xml.replacen(
        signature::ENVELOPED_SIGNATURE,
        "http://www.w3.org/TR/1999/REC-xpath-19991116",
        1,
    );
    assert_eq!(
        refusal(&signature::verify(&xpath, Policy::LEGACY)).to_string(),
        "unsupported Transforms [http://www.w3.org/TR/1999/REC-xpath-19991116, exc-c14n]: keyroll accepts the enveloped-signature transform, optionally followed by one canonicalization"
    );
    // Canonical XML 1.1.
    let c14n11 = xml.replacen(
        &format!(
            "CanonicalizationMethod Algorithm=\"{}\"",
            signature::EXC_C14N
        ),
        "CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"",
        1,
    );
    assert_eq!(
        refusal(&signature::verify(&c14n11, Policy::LEGACY)).kind(),
        "unsupported-algorithm"
    );
    // No certificate in KeyInfo.
    let (sig_start, sig_end) = signature_element(xml);
    let signature_text = &xml[sig_start..sig_end];
    let key_info = signature_text.find("<ds:KeyInfo>").unwrap();
    let no_cert = format!(
        "{}{}</ds:Signature>{}",
        &xml[..sig_start],
        &signature_text[..key_info],
        &xml[sig_end..]
    );
    assert_eq!(
        refusal(&signature::verify(&no_cert, Policy::LEGACY)).kind(),
        "no-certificate"
    );
}

// ---------------------------------------------------------------------------------------
// The real corpus (tests/data/signature/corpus, copied from shared/corpus/metadata; see
// tests/data/signature/SOURCES.md) against SIGNATURES.tsv and xmlsec1.

const CORPUS: &str = "tests/data/signature/corpus";

struct CorpusRow {
    file: String,
    signed: bool,
    crypto_check: String,
}

fn signatures_tsv() -> Vec<CorpusRow> {
    let text = std::fs::read_to_string(format!("{CORPUS}/SIGNATURES.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, signed, check) = (
        column("file"),
        column("has_ds_Signature"),
        column("crypto_check_with_embedded_cert"),
    );
    lines
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            CorpusRow {
                file: cols[file].to_string(),
                signed: cols[signed] == "yes",
                crypto_check: cols[check].to_string(),
            }
        })
        .collect()
}

fn corpus_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(CORPUS).join(name)).unwrap()
}

#[test]
fn corpus_verdicts_match_signatures_tsv_and_xmlsec() {
    let rows = signatures_tsv();
    let copied: std::collections::BTreeSet<String> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    // Every signed document of the corpus is here, and one unsigned one.
    let mut expected: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| r.signed)
        .map(|r| r.file.clone())
        .collect();
    expected.insert("py3saml-expired_metadata_settings1.xml".into());
    assert_eq!(copied, expected);

    let mut checked = 0;
    for row in rows.iter().filter(|r| copied.contains(&r.file)) {
        let xml = corpus_file(&row.file);
        // LEGACY: the policy under which xmlsec1 runs (SHA-1, 1024-bit keys).
        let report = signature::verify(&xml, Policy::LEGACY);
        let xmlsec = xmlsec_verifies(&xml);
        let tsv_valid = row.crypto_check == "VALID";
        match row.file.as_str() {
            "py3saml-signed_metadata_settings2.xml" => {
                // Its signature sits in SPSSODescriptor with a Reference without URI:
                // xmlsec1 accepts it (as covering its parent), signxml (SIGNATURES.tsv) and
                // keyroll refuse: it does not cover the root the keys are read from.
                assert!(xmlsec, "{}: xmlsec1 accepts", row.file);
                assert!(!tsv_valid);
                assert_eq!(refusal(&report).kind(), "not-on-root", "{}", row.file);
            }
            "py3saml-expired_metadata_settings1.xml" => {
                assert_eq!(row.crypto_check, "unsigned");
                assert!(!xmlsec);
                assert_eq!(report.verdict, Verdict::Unsigned);
            }
            _ => {
                assert_eq!(
                    report.is_valid(),
                    tsv_valid,
                    "{}: {}",
                    row.file,
                    report.summary()
                );
                assert_eq!(
                    report.is_valid(),
                    xmlsec,
                    "{}: {}",
                    row.file,
                    report.summary()
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, expected.len());
}

#[test]
fn corpus_signers_reasons_and_freshness() {
    // AD FS 2.0 / 2012 R2 / 2016 and Entra ID sign with RSA-SHA256: valid under the strict
    // policy, signed by the signing certificate each document publishes.
    for (file, signer) in [
        (
            "adfs-v2-metadata.xml",
            "28D1BE71EBAB715A8F53CB9FD9D84C4373CD3708",
        ),
        (
            "adfs-v3-metadata.xml",
            "8C3B60F1C93FA3E52AFD41885E7B6C6C4A61C65A",
        ),
        (
            "adfs-v4-metadata.xml",
            "D5FE73910389B58BBB3B0EBB87FDF110FF79FEBB",
        ),
        (
            "azuread-common.xml",
            "6B740DD01652EECE2737E05DAE36C5D18FCB74C3",
        ),
    ] {
        let xml = corpus_file(file);
        let report = signature::verify(&xml, Policy::STRICT);
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "{file}: {}",
            report.summary()
        );
        let sha1 = report.signer().unwrap().sha1.to_string();
        assert_eq!(sha1, signer, "{file}");
        assert!(
            thumbprints(&xml).contains(&sha1),
            "{file} publishes its signer"
        );
    }

    // Re-indented after signing, and its Reference names another ID than its root's.
    let formatted = signature::verify(&corpus_file("azuread-common-formatted.xml"), Policy::LEGACY);
    assert_eq!(
        refusal(&formatted).to_string(),
        "the signature's Reference points at \"#_0ded55d8-a72f-4e13-ab9e-f40be80b1476\", not the root element (\"#_6c4f3672-45c2-47a6-9515-afda95224009\"): keys would be read from content it does not cover"
    );
    // Pretty-printed after signing (BOM, XML declaration): SignedInfo changed.
    let nordvall = signature::verify(
        &corpus_file("nordvall-dummysts-federationmetadata.xml"),
        Policy::LEGACY,
    );
    assert_eq!(refusal(&nordvall).kind(), "signature-mismatch");
    assert_eq!(
        nordvall.signature.unwrap().signer_sha1.unwrap().to_string(),
        "732F853F8B4E007CD1C57CF3DD3C8326829DB23E"
    );

    // RSA-SHA1 (Microsoft Online; python3-saml with a 1024-bit key): refused by default,
    // valid when the policy allows it.
    let windows = corpus_file("windows-ad-metadata.xml");
    assert_eq!(
        refusal(&signature::verify(&windows, Policy::STRICT)).kind(),
        "sha1-not-allowed"
    );
    let settings1 = corpus_file("py3saml-signed_metadata_settings1.xml");
    let sha1_only = Policy {
        allow_sha1: true,
        ..Policy::STRICT
    };
    assert_eq!(
        refusal(&signature::verify(&settings1, sha1_only)).kind(),
        "weak-key"
    );
    let report = signature::verify(&settings1, Policy::LEGACY);
    assert!(report.is_valid());
    assert_eq!(
        report.freshness.valid_until.map(rfc3339).as_deref(),
        Some("2015-01-17T11:39:11Z")
    );
    assert_eq!(
        report.freshness.cache_duration.as_deref(),
        Some("PT1421926751S")
    );

    let expired = signature::verify(
        &corpus_file("py3saml-expired_metadata_settings1.xml"),
        Policy::STRICT,
    );
    assert_eq!(expired.verdict, Verdict::Unsigned);
    assert_eq!(
        expired.freshness.valid_until.map(rfc3339).as_deref(),
        Some("2014-02-22T00:39:43Z")
    );
    assert_eq!(
        expired.freshness.cache_duration.as_deref(),
        Some("PT1393462294S")
    );
}

// ---------------------------------------------------------------------------------------
// A large signed aggregate: correct, and how long it takes (both tools, same input).
// KEYROLL_SIGNATURE_AGGREGATE_MB sets the size (default 4); the figures in the report were
// taken with a release build at 60.

#[test]
fn a_large_signed_aggregate_verifies() {
    let k = keys();
    let megabytes: usize = std::env::var("KEYROLL_SIGNATURE_AGGREGATE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let current = k.current.base64();
    let next = k.next.base64();
    let mut body = String::new();
    let mut entities = 0;
    while body.len() < megabytes * 1024 * 1024 {
        if entities % 100 == 0 {
            if entities > 0 {
                body.push_str("</EntitiesDescriptor>\n");
            }
            body.push_str(&format!(
                "<EntitiesDescriptor Name=\"group-{}\">\n",
                entities / 100
            ));
        }
        body.push_str(&entity(
            &format!("_e{entities}"),
            &format!("https://idp{entities}.example.test/idp/shibboleth"),
            "",
            &current,
            &next,
        ));
        body.push('\n');
        entities += 1;
    }
    body.push_str("</EntitiesDescriptor>\n");
    let template = format!(
        "<?xml version=\"1.0\"?>\n<EntitiesDescriptor ID=\"_fed\" Name=\"urn:keyroll:test:large\" xmlns=\"{MD}\">{}\n{body}</EntitiesDescriptor>\n",
        signature_template(&Shape::default(), "#_fed")
    );

    let started = Instant::now();
    let signed = xmlsec_sign(&template, &k.current);
    let xmlsec_sign_time = started.elapsed();
    let started = Instant::now();
    assert!(xmlsec_verifies(&signed));
    let xmlsec_verify_time = started.elapsed();
    let started = Instant::now();
    let doc = roxmltree::Document::parse_with_options(&signed, metadata::xml_options()).unwrap();
    let parse_time = started.elapsed();
    let started = Instant::now();
    let report = signature::verify_document(&doc, Policy::STRICT);
    let verify_time = started.elapsed();
    assert_eq!(report.verdict, Verdict::Valid, "{}", report.summary());
    eprintln!(
        "large aggregate: {:.1} MB, {entities} entities; xmlsec1 --sign {:.2} s, xmlsec1 --verify {:.2} s (a process: file read and parse included); keyroll: parse {:.2} s + verify {:.2} s (in memory)",
        signed.len() as f64 / 1e6,
        xmlsec_sign_time.as_secs_f64(),
        xmlsec_verify_time.as_secs_f64(),
        parse_time.as_secs_f64(),
        verify_time.as_secs_f64(),
    );

    // One changed byte in the last entity.
    let last = signed.rfind("Contoso &amp; Co").unwrap();
    let tampered = format!(
        "{}Contoso &amp; Cp{}",
        &signed[..last],
        &signed[last + "Contoso &amp; Co".len()..]
    );
    assert_eq!(refusal(&both_refuse(&tampered)).kind(), "digest-mismatch");
}
