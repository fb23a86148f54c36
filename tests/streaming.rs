//! The streaming aggregate reader against the tree reader: the same rows, notes, signature
//! verdicts and errors (with positions) on every corpus document, on nested and re-namespaced
//! aggregates, on signed ones, and on truncated, malformed and DTD-bearing input.

mod sigkit;

use std::path::Path;

use keyroll::load::metadata::{self, Fallback, MetadataDocument, MetadataError};
use sigkit::{MD, Shape, keys, signature_template, xmlsec_sign};
use time::OffsetDateTime;

/// Everything a reader reports about a document, as text, so two readings compare whole.
fn render(doc: &Result<MetadataDocument, MetadataError>) -> String {
    match doc {
        Err(e) => format!("error: {e}"),
        Ok(doc) => {
            let keys: Vec<String> = doc
                .keys
                .iter()
                .map(|k| {
                    format!(
                        "{:?} {:?} {:?} {:?} {} {} {} {} {:?}",
                        k.entity_id,
                        k.roles,
                        k.uses,
                        k.kid,
                        k.location,
                        k.certificate.sha1,
                        k.certificate.subject,
                        k.certificate.not_after,
                        k.bounds
                    )
                })
                .collect();
            format!(
                "kind {:?}\nbytes {}\nencoding {}\nsha256 {}\nsignature {}\nreport {}\nweak {}\nfreshness {:?}\nnotes {:#?}\nkeys\n{}",
                doc.kind,
                doc.bytes,
                doc.encoding,
                doc.sha256,
                serde_json::to_string(&doc.signature).unwrap(),
                serde_json::to_string(&doc.signature_report).unwrap(),
                doc.weak_signature,
                doc.freshness,
                doc.notes,
                keys.join("\n")
            )
        }
    }
}

fn tree(name: &str, bytes: &[u8]) -> String {
    render(&metadata::parse_tree(
        name,
        bytes,
        OffsetDateTime::UNIX_EPOCH,
    ))
}

/// The stream's reading, which must not have fallen back to the tree.
fn streamed(name: &str, bytes: &[u8]) -> String {
    match metadata::parse_streamed(name, bytes, OffsetDateTime::UNIX_EPOCH) {
        Ok(doc) => render(&doc),
        Err(fallback) => panic!("{name}: the stream fell back ({fallback:?})"),
    }
}

/// What every caller gets: `parse` on bytes and `load` on a file.
fn public(name: &str, bytes: &[u8]) -> (String, String) {
    let parsed = render(&metadata::parse(name, bytes, OffsetDateTime::UNIX_EPOCH));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.xml");
    std::fs::write(&path, bytes).unwrap();
    let fetcher = keyroll::load::fetch::Fetcher::new(Default::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = path.to_str().unwrap();
    let loaded = runtime.block_on(metadata::load(source, &fetcher, OffsetDateTime::UNIX_EPOCH));
    // The file's name is its path; compare as if it were `name`.
    let loaded = render(&loaded).replace(source, name);
    (parsed, loaded)
}

fn assert_same(name: &str, bytes: &[u8]) {
    let expected = tree(name, bytes);
    assert_eq!(streamed(name, bytes), expected, "{name}: stream vs tree");
    let (parsed, loaded) = public(name, bytes);
    assert_eq!(parsed, expected, "{name}: parse vs tree");
    assert_eq!(loaded, expected, "{name}: load vs tree");
}

fn root_is_aggregate(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let doc = roxmltree::Document::parse(&text);
    doc.is_ok_and(|d| d.root_element().tag_name().name() == "EntitiesDescriptor")
}

#[test]
fn every_corpus_document_reads_the_same() {
    let mut aggregates = 0;
    let mut documents = 0;
    for dir in [
        "tests/data/metadata",
        "tests/data/encodings",
        "tests/data/signature/corpus",
    ] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let bytes = std::fs::read(&path).unwrap();
            documents += 1;
            if root_is_aggregate(&bytes) {
                aggregates += 1;
                if tree(&name, &bytes).starts_with("error: ") {
                    // An error is the tree reader's to name (a PEM block inside base64 here).
                    assert_eq!(
                        metadata::parse_streamed(&name, &bytes, OffsetDateTime::UNIX_EPOCH).err(),
                        Some(Fallback::Invalid)
                    );
                    assert_same_error(&name, &bytes);
                } else {
                    assert_same(&name, &bytes);
                }
            } else {
                // A single entity (or another encoding) is read as one tree.
                let fallback = metadata::parse_streamed(&name, &bytes, OffsetDateTime::UNIX_EPOCH);
                assert!(fallback.is_err(), "{name}: not an aggregate, yet streamed");
                let (parsed, loaded) = public(&name, &bytes);
                let expected = tree(&name, &bytes);
                assert_eq!(parsed, expected, "{name}");
                assert_eq!(loaded, expected, "{name}");
            }
        }
    }
    assert!(documents >= 35, "{documents} documents");
    assert_eq!(aggregates, 4, "the corpus holds four aggregates");
}

/// Certificates from the corpus, as base64 (no line breaks).
fn corpus_certificates() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new("tests/data/metadata/adfs-v3-metadata.xml"))
        .unwrap()
        + &std::fs::read_to_string("tests/data/metadata/py3saml-idp_metadata_multi_certs.xml")
            .unwrap();
    let mut found: Vec<String> = Vec::new();
    for part in text.split("X509Certificate>").skip(1).step_by(2) {
        let cert: String = part
            .split('<')
            .next()
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !cert.is_empty() && !found.contains(&cert) {
            found.push(cert);
        }
    }
    assert!(found.len() >= 3, "{} certificates", found.len());
    found
}

/// An aggregate with what a stream must carry across pieces: namespaces declared on the
/// root, re-declared and defaulted in a nested group, prefixes declared inside an entity,
/// CRLF line ends, comments between entities, a chain beside a key, the same entity twice,
/// Extensions, an empty nested group, and multi-byte characters before keys on a line.
fn tricky_aggregate(line_end: &str) -> String {
    let c = corpus_certificates();
    let kd = |prefix: &str, use_: &str, cert: &str| {
        format!(
            r#"<{prefix}KeyDescriptor use="{use_}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></{prefix}KeyDescriptor>"#
        )
    };
    let n = line_end;
    let mut s = String::new();
    s.push_str(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>{n}<!-- prolog comment -->{n}"#
    ));
    s.push_str(&format!(
        r#"<md:EntitiesDescriptor xmlns:md="{MD}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" Name="urn:test">{n}"#
    ));
    s.push_str(&format!(
        r#"  <md:Extensions><x:Info xmlns:x="urn:x">ünïcödé</x:Info></md:Extensions>{n}"#
    ));
    s.push_str(&format!(
        r#"  <md:EntityDescriptor entityID="https://one.example/é"><md:IDPSSODescriptor protocolSupportEnumeration="p">{}{}</md:IDPSSODescriptor></md:EntityDescriptor>{n}"#,
        kd("md:", "signing", &c[0]),
        kd("md:", "encryption", &c[1])
    ));
    s.push_str(&format!("  <!-- between -->{n}"));
    s.push_str(&format!(
        r#"  <EntitiesDescriptor xmlns="{MD}" Name="nested">{n}    <EntityDescriptor entityID="https://two.example"><RoleDescriptor xsi:type="fed:SecurityTokenServiceType" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">{}</RoleDescriptor><SPSSODescriptor protocolSupportEnumeration="p">{}</SPSSODescriptor></EntityDescriptor>{n}    <EntitiesDescriptor Name="empty"/>{n}  </EntitiesDescriptor>{n}"#,
        kd("", "signing", &c[2]),
        kd("", "signing", &c[2]),
    ));
    s.push_str(&format!(
        r#"  <m:EntityDescriptor xmlns:m="{MD}" entityID="https://one.example/é"><m:IDPSSODescriptor protocolSupportEnumeration="p">{}</m:IDPSSODescriptor></m:EntityDescriptor>{n}"#,
        kd("m:", "signing", &c[0])
    ));
    s.push_str(&format!(
        r#"  <md:EntityDescriptor entityID="https://three.example"><md:SPSSODescriptor protocolSupportEnumeration="p"><md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:SPSSODescriptor></md:EntityDescriptor>{n}"#,
        sigkit::wrapped(&c[1]).replace('\n', n)
    ));
    s.push_str(&format!("</md:EntitiesDescriptor>{n}<!-- epilog -->{n}"));
    s
}

#[test]
fn nested_and_renamespaced_aggregates_read_the_same() {
    for line_end in ["\n", "\r\n"] {
        let doc = tricky_aggregate(line_end);
        assert_same("tricky.xml", doc.as_bytes());
        // With a byte-order mark.
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend(doc.as_bytes());
        assert_same("tricky-bom.xml", &with_bom);
    }
    // On one line, as AD FS writes: positions are columns on line 1.
    let one_line = tricky_aggregate("");
    assert_same("one-line.xml", one_line.as_bytes());
    let doc = metadata::parse(
        "one-line.xml",
        one_line.as_bytes(),
        OffsetDateTime::UNIX_EPOCH,
    )
    .unwrap();
    assert_eq!(
        doc.keys.len(),
        4,
        "one.example (signing, encryption), two, three"
    );
    assert!(
        doc.keys
            .iter()
            .all(|k| k.location.starts_with("line 1, column "))
    );
}

/// The stream's workers cut certificates' base64 out of a piece before parsing it, where
/// that cannot change what is read: each entity here holds a case on one side of that line.
/// Rows, locations (keys after wrapped, CRLF certificates) and errors match the tree's.
#[test]
fn certificates_cut_before_parsing_read_the_same() {
    let c = corpus_certificates();
    let kd = |inner: &str| {
        format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>{inner}</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
        )
    };
    let cert = |body: &str| format!("<ds:X509Certificate>{body}</ds:X509Certificate>");
    let entity = |i: usize, keys: &[String]| {
        format!(
            "\r\n <md:EntityDescriptor entityID=\"https://e{i}.example\"><md:IDPSSODescriptor protocolSupportEnumeration=\"p\">{}</md:IDPSSODescriptor></md:EntityDescriptor>",
            keys.concat()
        )
    };
    let crlf = |b64: &str| format!("\r\n{}\r\n", sigkit::wrapped(b64).replace('\n', "\r\n"));
    let (first, rest) = c[0].split_at(40);
    let entities = [
        // Cut: one line; wrapped with CRLF, then more keys whose positions come after it.
        vec![kd(&cert(&c[0]))],
        vec![
            kd(&cert(&crlf(&c[1]))),
            kd(&cert(&crlf(&c[2]))),
            kd(&cert(&c[0])),
        ],
        // Cut: no prefix (default namespace); an end tag with a space before its `>`.
        vec![kd(&format!(
            r#"<X509Certificate xmlns="http://www.w3.org/2000/09/xmldsig#">{}</X509Certificate >"#,
            c[1]
        ))],
        // Not cut: a character reference, CDATA, a comment, attributes, a child element.
        vec![kd(&cert(&format!("{first}&#10;{rest}")))],
        vec![kd(&cert(&format!("<![CDATA[{}]]>", c[1])))],
        vec![kd(&format!("<!-- a comment -->{}", cert(&c[2])))],
        vec![
            kd(&format!(
                r#"<ds:X509Certificate Id="x">{}</ds:X509Certificate>"#,
                c[0]
            )),
            kd(&cert(&c[1])),
        ],
        vec![kd(&format!(
            "<ds:X509Certificate>{first}<x:y xmlns:x=\"urn:x\"/>{rest}</ds:X509Certificate>"
        ))],
        // One inside another: the outer one's text is the inner one's.
        vec![kd(&cert(&cert(&c[2])))],
        // A look-alike name is not a certificate; the real one after it is cut.
        vec![kd(&format!(
            "<ds:MyX509Certificate>{}</ds:MyX509Certificate>{}",
            c[1],
            cert(&c[2])
        ))],
        // Self-closing with attributes leaves the rest of its piece uncut.
        vec![kd(&format!(
            r#"<ds:X509Certificate Id="e"/>{}"#,
            cert(&c[0])
        ))],
    ];
    let mut doc = format!(
        r#"<md:EntitiesDescriptor xmlns:md="{MD}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#
    );
    for (i, keys) in entities.iter().enumerate() {
        doc.push_str(&entity(i, keys));
    }
    doc.push_str("\r\n</md:EntitiesDescriptor>\r\n");
    let read = metadata::parse("cut.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH);
    assert!(
        read.is_err(),
        "the empty self-closing certificate is an error"
    );
    assert_same_error("cut.xml", doc.as_bytes());
    // Without that entity the document reads, and every key's row matches the tree's.
    let last = entity(entities.len() - 1, &entities[entities.len() - 1]);
    let doc = doc.replace(&last, "");
    assert_same("cut.xml", doc.as_bytes());
    assert!(
        metadata::parse("cut.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH)
            .unwrap()
            .keys
            .len()
            >= 10
    );
    // On one line, as AD FS writes it.
    let one_line = doc.replace("\r\n", "");
    assert_same("cut-one-line.xml", one_line.as_bytes());
    // A cut certificate that is not base64 (and one with `]]>`, never cut) fails as the
    // tree reader fails, at the same line and column.
    for bad in [format!("{first}!{rest}"), format!("{first}]]>{rest}")] {
        let bad_doc = doc.replacen(&c[1], &bad, 1);
        assert_ne!(bad_doc, doc);
        assert_same_error("cut-bad.xml", bad_doc.as_bytes());
    }
}

#[test]
fn large_aggregates_read_the_same_across_batches() {
    // Several megabytes: more than one batch, so pieces are read on several threads and
    // merged in order.
    let c = corpus_certificates();
    let mut s = format!(r#"<EntitiesDescriptor xmlns="{MD}">"#);
    for i in 0..6000 {
        s.push_str(&format!(
            "\n <EntityDescriptor entityID=\"https://e{i}.example\"><IDPSSODescriptor protocolSupportEnumeration=\"p\"><KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>",
            sigkit::wrapped(&c[i % c.len()])
        ));
    }
    s.push_str("\n</EntitiesDescriptor>\n");
    assert!(s.len() > 8_000_000, "{} bytes", s.len());
    assert_same("large.xml", s.as_bytes());
}

/// A signed aggregate of `shape`, signed by xmlsec1, with a signed entity inside.
fn signed_aggregate(shape: &Shape<'_>, uri: &str) -> String {
    let k = keys();
    let inner = sigkit::signed_entity(&Shape::default(), &k.next);
    let inner = inner.trim_start_matches(|c| c != '<').to_string();
    let inner = inner
        .split_once("?>")
        .map_or(inner.clone(), |(_, rest)| rest.trim_start().to_string());
    let template = format!(
        "<?xml version=\"1.0\"?>\n<md:EntitiesDescriptor xmlns:md=\"{MD}\" xmlns:unused=\"urn:unused\" ID=\"_fed\" Name=\"urn:test\" validUntil=\"2031-01-01T00:00:00Z\">\n  {}\n  <md:Extensions><e:x xmlns:e=\"urn:e\" b=\"2\" a=\"1\">t &amp; &#x9;</e:x></md:Extensions>\n  <EntitiesDescriptor xmlns=\"{MD}\" Name=\"group\">\n    {inner}\n  </EntitiesDescriptor>\n  {}\n</md:EntitiesDescriptor>\n",
        signature_template(shape, uri),
        sigkit::entity(
            "_e2",
            "https://other.example",
            "",
            &k.current.base64(),
            &k.attacker.base64()
        )
        .replace("<EntityDescriptor ", "<md:EntityDescriptor ")
        .replace("</EntityDescriptor>", "</md:EntityDescriptor>")
    );
    xmlsec_sign(&template, &k.current)
}

#[test]
fn signed_aggregates_verify_the_same_on_the_stream() {
    let shapes = [
        (Shape::default(), "#_fed"),
        (
            Shape::canonicalized(keyroll::load::signature::C14N),
            "#_fed",
        ),
        (Shape::canonicalized(keyroll::load::signature::EXC_C14N), ""),
        (
            Shape::hashed(
                keyroll::load::signature::RSA_SHA1,
                keyroll::load::signature::SHA1,
            ),
            "#_fed",
        ),
    ];
    for (shape, uri) in &shapes {
        let signed = signed_aggregate(shape, uri);
        assert!(sigkit::xmlsec_verifies(&signed), "xmlsec1 verifies it");
        let name = format!("signed-{}-{uri}.xml", shape.c14n);
        assert_same(&name, signed.as_bytes());
        let doc = metadata::parse(&name, signed.as_bytes(), OffsetDateTime::UNIX_EPOCH).unwrap();
        let report = doc.signature_report.as_ref().unwrap();
        assert!(report.is_valid(), "{name}: {}", report.summary());
        assert_eq!(report.nested_signatures.len(), 1, "the inner entity's");

        // Tampered inside an entity: the same digest mismatch, values and all.
        let tampered = signed.replacen("https://other.example", "https://evil.example", 1);
        assert_same(&format!("tampered-{name}"), tampered.as_bytes());
        let doc = metadata::parse(&name, tampered.as_bytes(), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert!(!doc.signature_report.as_ref().unwrap().is_valid());
    }
}

#[test]
fn signature_attacks_are_refused_the_same_on_the_stream() {
    let signed = signed_aggregate(&Shape::default(), "#_fed");
    // The root's ID also carried inside an entity: ambiguous reference.
    let duplicate = signed.replacen("ID=\"_e2\"", "ID=\"_fed\"", 1);
    assert_same("duplicate-id.xml", duplicate.as_bytes());
    let doc = metadata::parse("d.xml", duplicate.as_bytes(), OffsetDateTime::UNIX_EPOCH).unwrap();
    let summary = doc.signature_report.as_ref().unwrap().summary();
    assert!(
        !doc.signature_report.as_ref().unwrap().is_valid(),
        "{summary}"
    );
    // A second signature on the root, or one after the entities: the tree reader decides
    // (the stream leaves it), with the same result through `parse`.
    let sig_start = signed.find("<ds:Signature").unwrap();
    let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &signed[sig_start..sig_end];
    let moved = format!(
        "{}{}",
        signed[..sig_start].to_string() + &signed[sig_end..],
        ""
    )
    .replacen(
        "</md:EntitiesDescriptor>\n",
        &format!("{signature}</md:EntitiesDescriptor>\n"),
        1,
    );
    assert!(
        metadata::parse_streamed("moved.xml", moved.as_bytes(), OffsetDateTime::UNIX_EPOCH)
            .is_err()
    );
    let (parsed, _) = public("moved.xml", moved.as_bytes());
    assert_eq!(parsed, tree("moved.xml", moved.as_bytes()));
}

/// Errors through `parse` and `load` are the tree reader's, position and all.
fn assert_same_error(name: &str, bytes: &[u8]) {
    let expected = tree(name, bytes);
    assert!(expected.starts_with("error: "), "{name}: {expected}");
    let (parsed, loaded) = public(name, bytes);
    assert_eq!(parsed, expected, "{name}: parse");
    assert_eq!(loaded, expected, "{name}: load");
}

#[test]
fn truncated_malformed_and_dtd_input_gives_the_same_errors() {
    let doc = tricky_aggregate("\n");
    // Truncated anywhere: inside the root's tag, an entity, a nested group, the epilog.
    for cut in (40..doc.len()).step_by(97) {
        if !doc.is_char_boundary(cut) {
            continue;
        }
        let truncated = &doc.as_bytes()[..cut];
        let expected = tree("t.xml", truncated);
        let (parsed, loaded) = public("t.xml", truncated);
        assert_eq!(parsed, expected, "cut at {cut}");
        assert_eq!(loaded, expected, "cut at {cut}");
    }
    let malformed = [
        // In an entity: an unclosed attribute, a mismatched end tag.
        doc.replacen(
            "entityID=\"https://three.example\"",
            "entityID=\"https://three.example",
            1,
        ),
        doc.replacen("</md:SPSSODescriptor>", "</md:SPSSODescriptr>", 1),
        // In a nested group's start tag, and the root's.
        doc.replacen("Name=\"nested\"", "Name=\"nested\" Name=\"twice\"", 1),
        doc.replacen("Name=\"urn:test\"", "Name=urn:test", 1),
        // An undeclared prefix in an entity; a bad certificate; a bad KeyDescriptor use.
        doc.replacen("<md:Extensions>", "<md:Extensions><q:x/>", 1),
        doc.replacen("<ds:X509Certificate>M", "<ds:X509Certificate>!M", 1),
        doc.replacen("use=\"encryption\"", "use=\"both\"", 1),
        // A second root; text after the root.
        doc.replacen("<!-- epilog -->", "<md:EntitiesDescriptor/>", 1),
        doc.replacen("<!-- epilog -->", "text", 1),
        // A DTD, with and without an entity declaration.
        doc.replacen(
            "<!-- prolog comment -->",
            "<!DOCTYPE md:EntitiesDescriptor>",
            1,
        ),
        doc.replacen(
            "<!-- prolog comment -->",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
            1,
        ),
    ];
    for (i, bad) in malformed.iter().enumerate() {
        assert_same_error(&format!("malformed-{i}.xml"), bad.as_bytes());
    }
    // Not valid UTF-8 inside an entity, and inside a comment between entities.
    for marker in ["https://two.example", "between"] {
        let mut bytes = doc.as_bytes().to_vec();
        let at = doc.find(marker).unwrap();
        bytes[at + 3] = 0xFF;
        assert_same_error("utf8.xml", &bytes);
    }
    // A PI or text between entities is valid XML the stream leaves to the tree reader:
    // the same result.
    for (unusual, why) in [
        ("<?pi x?>", "a processing instruction"),
        ("text", "text between elements"),
        ("&amp;", "text between elements"),
    ] {
        let doc = doc.replacen("<!-- between -->", unusual, 1);
        assert_unusual_reads_the_same(&doc, Some(Fallback::Unusual(why)));
    }
    // An end tag of the entity's name inside a comment or CDATA section in it: the stream
    // cuts the piece there, the piece does not parse, and the tree reader reads it all.
    for inside in [
        "<!-- </md:EntityDescriptor> -->",
        "<md:Extensions><x:y xmlns:x=\"urn:x\"><![CDATA[</md:EntityDescriptor>]]></x:y></md:Extensions>",
    ] {
        let doc = doc.replacen(
            "<md:IDPSSODescriptor protocolSupportEnumeration=\"p\">",
            &format!("{inside}<md:IDPSSODescriptor protocolSupportEnumeration=\"p\">"),
            1,
        );
        // Found wrong either as text after the cut or as a piece that does not parse.
        assert_unusual_reads_the_same(&doc, None);
    }
}

/// Valid XML the stream leaves to the tree reader: `parse` and `load` give the tree's result.
fn assert_unusual_reads_the_same(doc: &str, fallback: Option<Fallback>) {
    {
        let (parsed, loaded) = public("unusual.xml", doc.as_bytes());
        let expected = tree("unusual.xml", doc.as_bytes());
        assert!(!expected.starts_with("error"), "{expected}");
        assert_eq!(parsed, expected);
        assert_eq!(loaded, expected);
        let streamed =
            metadata::parse_streamed("unusual.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH);
        assert!(streamed.is_err(), "the stream leaves it to the tree reader");
        if let Some(fallback) = fallback {
            assert_eq!(streamed.err(), Some(fallback));
        }
    }
}

/// `inspect` writes rows as it makes them; a reader that stops early (`| head`) is not an
/// error.
#[test]
fn inspect_json_into_a_closed_pipe_exits_0() {
    use std::io::Read as _;
    let c = corpus_certificates();
    let mut s = format!(r#"<EntitiesDescriptor xmlns="{MD}">"#);
    for i in 0..3000 {
        s.push_str(&format!(
            "<EntityDescriptor entityID=\"https://e{i}.example\"><IDPSSODescriptor protocolSupportEnumeration=\"p\"><KeyDescriptor><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor></IDPSSODescriptor></EntityDescriptor>",
            c[i % c.len()]
        ));
    }
    s.push_str("</EntitiesDescriptor>");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aggregate.xml");
    std::fs::write(&path, s).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyroll"))
        .args(["inspect", "--format", "json", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"{"));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no error for a closed pipe"
    );
    assert!(out.status.success());
}

/// Whatever the bytes, `parse` (the stream, falling back to the tree) says exactly what the
/// tree reader says: the tricky aggregate with 1,200 small corruptions (a markup
/// character inserted, a byte deleted or duplicated), at positions from a fixed seed.
#[test]
fn corrupted_aggregates_read_as_the_tree_reads_them() {
    let doc = tricky_aggregate("\n").into_bytes();
    assert_corruptions_read_the_same(&doc, 1200, 120);
}

/// The same for a signed aggregate: each corruption gives the tree's signature verdict too
/// (digest mismatch, structure, malformed...), read on the stream where it can be.
#[test]
fn corrupted_signed_aggregates_verify_as_the_tree_verifies_them() {
    let doc = signed_aggregate(&Shape::default(), "#_fed").into_bytes();
    assert_corruptions_read_the_same(&doc, 400, 40);
}

fn assert_corruptions_read_the_same(doc: &[u8], rounds: usize, streamed_at_least: usize) {
    let inserts: &[&[u8]] = &[
        b"<", b">", b"\"", b"/", b"&", b"<!--", b"-->", b"]]>", b"<?x?>", b"\xC3", b" ", b"'",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let mut streamed_ok = 0;
    for round in 0..rounds {
        let mut bytes = doc.to_vec();
        let at = next(bytes.len());
        match round % 3 {
            0 => {
                let insert = inserts[next(inserts.len())];
                bytes.splice(at..at, insert.iter().copied());
            }
            1 => {
                bytes.remove(at);
            }
            _ => {
                let b = bytes[at];
                bytes.insert(at, b);
            }
        }
        let expected = tree("c.xml", &bytes);
        let parsed = render(&metadata::parse(
            "c.xml",
            &bytes,
            OffsetDateTime::UNIX_EPOCH,
        ));
        assert_eq!(parsed, expected, "round {round}: change at byte {at}");
        if metadata::parse_streamed("c.xml", &bytes, OffsetDateTime::UNIX_EPOCH).is_ok() {
            streamed_ok += 1;
        }
    }
    // Most corruptions inside an entity's text leave it valid: the stream read those itself.
    assert!(
        streamed_ok > streamed_at_least,
        "{streamed_ok} read by the stream"
    );
}

/// The signed aggregate the placement property plants keys into (xmlsec1 runs once).
fn placement_base() -> &'static str {
    static BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BASE.get_or_init(|| signed_aggregate(&Shape::default(), "#_fed"))
}

/// Where a planted KeyDescriptor goes: (anchor text it is put before, which occurrence,
/// whether that place is inside a `ds:Signature`).
const PLACES: [(&str, usize, bool); 7] = [
    ("</ds:SignatureValue>", 0, true),
    ("</ds:KeyInfo>", 0, true),
    ("</ds:Signature>", 0, true),
    ("</ds:SignedInfo>", 0, true),
    // The signed entity's own signature, nested in the aggregate.
    ("</ds:Signature>", 1, true),
    ("</md:Extensions>", 0, false),
    ("</IDPSSODescriptor>", 1, false),
];

fn plant(base: &str, chosen: &[bool], wrap_object: bool, default_ns: bool, lead: &str) -> String {
    let k = keys();
    let key = if default_ns {
        format!(
            "<KeyDescriptor xmlns=\"{MD}\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>",
            k.attacker.base64()
        )
    } else {
        format!(
            "<md:KeyDescriptor xmlns:md=\"{MD}\" use=\"signing\"><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
            k.attacker.base64()
        )
    };
    // Offsets of every chosen place in the unplanted text, planted from the end backwards.
    let mut at: Vec<(usize, bool)> = Vec::new();
    for (&(anchor, nth, inside), _) in PLACES.iter().zip(chosen).filter(|(_, c)| **c) {
        let offset = base.match_indices(anchor).nth(nth).map(|(i, _)| i).unwrap();
        at.push((offset, inside));
    }
    at.sort();
    let mut doc = base.to_string();
    for &(offset, inside) in at.iter().rev() {
        let text = if inside && wrap_object {
            format!("<ds:Object xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">{key}</ds:Object>")
        } else {
            key.clone()
        };
        doc.insert_str(offset, &text);
    }
    doc.replacen("?>\n", &format!("?>\n{lead}"), 1)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 96,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Tree and stream give the same keys and verdict (or the same error) whatever is
    /// planted where; a key inside any signature refuses the document as tampered, and no
    /// key keyroll reads lies inside a signature.
    #[test]
    fn keys_planted_inside_or_outside_signatures_read_the_same_on_both_readers(
        chosen in proptest::collection::vec(proptest::bool::weighted(0.25), PLACES.len()),
        wrap_object: bool,
        default_ns: bool,
        lead in proptest::sample::select(vec!["", "<?keyroll pi?>\n", "<!-- c -->\n", "<?a?><!-- b -->\n"]),
    ) {
        let doc = plant(placement_base(), &chosen, wrap_object, default_ns, lead);
        let parsed = metadata::parse("p.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH);
        let whole = metadata::parse_tree("p.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH);
        proptest::prop_assert_eq!(render(&parsed), render(&whole));
        let inside = PLACES.iter().zip(&chosen).any(|(p, c)| *c && p.2);
        match &whole {
            Err(MetadataError::Tampered { detail, .. }) => {
                proptest::prop_assert!(inside, "{}", detail);
                proptest::prop_assert!(detail.contains("inside the ds:Signature"));
            }
            Err(e) => proptest::prop_assert!(false, "{}", e),
            Ok(read) => {
                proptest::prop_assert!(!inside);
                let attacker = keys().attacker.certificate.sha1;
                let planted = read.keys.iter().any(|k| k.certificate.sha1 == attacker);
                let outside = chosen.iter().any(|c| *c);
                // The aggregate already lists the attacker's key once, in `_e2`.
                proptest::prop_assert!(planted);
                // Planted outside a signature: covered by the root's, which now fails.
                let valid = read.signature_report.as_ref().is_some_and(|r| r.is_valid());
                proptest::prop_assert_eq!(valid, !outside);
            }
        }
    }
}

/// One certificate listed by many entities (a hosted service's tenants), each under two
/// roles and its own validUntil: one key per entity with both roles and its entity's bound,
/// on both readers, past the point where the merge indexes keys by entity.
#[test]
fn a_certificate_shared_by_many_entities_merges_by_entity() {
    let k = keys();
    let entities: String = (0..40)
        .map(|e| {
            let key = format!(
                "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>",
                k.current.base64()
            );
            format!(
                "<EntityDescriptor entityID=\"https://t{}.example/\" validUntil=\"20{}-01-01T00:00:00Z\"><IDPSSODescriptor>{key}</IDPSSODescriptor><SPSSODescriptor>{key}</SPSSODescriptor></EntityDescriptor>",
                e % 20,
                40 + e
            )
        })
        .collect();
    let doc = format!("<EntitiesDescriptor xmlns=\"{MD}\">{entities}</EntitiesDescriptor>");
    assert_same("shared.xml", doc.as_bytes());
    let read = metadata::parse("shared.xml", doc.as_bytes(), OffsetDateTime::UNIX_EPOCH).unwrap();
    // Entities t0..t19 appear twice each (e and e + 20): one key each, the earlier bound.
    assert_eq!(read.keys.len(), 20);
    for (i, key) in read.keys.iter().enumerate() {
        assert_eq!(
            key.entity_id.as_deref(),
            Some(&*format!("https://t{i}.example/"))
        );
        assert_eq!(key.roles, ["IDPSSODescriptor", "SPSSODescriptor"]);
        let until = key.bounds.valid_until.unwrap();
        assert_eq!(until.year(), 2040 + i as i32, "{i}");
    }
}

/// A root declaring more namespaces than the stream copies into every piece (past 64, a
/// piece's wrapper declares only the prefixes the piece names): entities that use some of
/// them in element names, attribute names and QName values, an `InclusiveNamespaces` list
/// naming others, inclusive and exclusive canonicalization. The stream reads and verifies
/// exactly as the tree does, and a tampered entity fails on both.
#[test]
fn a_root_declaring_many_namespaces_reads_and_verifies_the_same() {
    let k = keys();
    let declarations: String = (0..300)
        .map(|i| format!(" xmlns:n{i}=\"urn:n:{i}\""))
        .collect();
    let uses = "<md:Extensions><n7:x n3:a=\"1\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"n5:T\"><n250:y>n299:v</n250:y></n7:x></md:Extensions>";
    let shapes = [
        (
            Shape::canonicalized(keyroll::load::signature::C14N),
            "#_fed",
        ),
        (Shape::default(), "#_fed"),
        (
            Shape {
                transforms: vec![
                    (keyroll::load::signature::ENVELOPED_SIGNATURE, None),
                    (keyroll::load::signature::EXC_C14N, Some("n9 n42 n7")),
                ],
                ..Shape::default()
            },
            "#_fed",
        ),
    ];
    for (shape, uri) in &shapes {
        let entity = |id: &str, name: &str, uses: &str| {
            sigkit::entity(id, name, "", &k.current.base64(), &k.next.base64())
                .replace("<EntityDescriptor ", "<md:EntityDescriptor ")
                .replace("</EntityDescriptor>", "</md:EntityDescriptor>")
                .replacen('>', &format!(">{uses}"), 1)
        };
        // The nested container declares one more; an entity in it redeclares n7.
        let nested_uses = uses
            .replace("<n7:x ", "<n400:x xmlns:n7=\"urn:other\" ")
            .replace("</n7:x>", "</n400:x>");
        let template = format!(
            "<?xml version=\"1.0\"?>\n<md:EntitiesDescriptor xmlns:md=\"{MD}\"{declarations} ID=\"_fed\" Name=\"urn:test\">\n  {}\n  {}\n  <md:EntitiesDescriptor Name=\"group\" xmlns:n400=\"urn:n:400\">\n    {}\n  </md:EntitiesDescriptor>\n</md:EntitiesDescriptor>\n",
            signature_template(shape, uri),
            entity("_e1", "https://one.example", uses),
            entity("_e2", "https://two.example", &nested_uses),
        );
        let signed = xmlsec_sign(&template, &k.current);
        assert!(sigkit::xmlsec_verifies(&signed), "xmlsec1 verifies it");
        let name = format!("many-namespaces-{}.xml", shape.c14n);
        assert_same(&name, signed.as_bytes());
        let doc = metadata::parse(&name, signed.as_bytes(), OffsetDateTime::UNIX_EPOCH).unwrap();
        let report = doc.signature_report.as_ref().unwrap();
        assert!(report.is_valid(), "{name}: {}", report.summary());

        let tampered = signed.replacen("n299:v", "n298:v", 1);
        assert_same(&format!("tampered-{name}"), tampered.as_bytes());
        let doc = metadata::parse(&name, tampered.as_bytes(), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert!(!doc.signature_report.as_ref().unwrap().is_valid());
    }
}

/// Past 4,096 namespace declarations in scope on one element (its own and its ancestors'),
/// a document is refused with the element's position, by the tree reader and by the stream
/// (which leaves the decision to the tree): roxmltree's time grows with their square. At
/// 4,000 both read it, the same way.
#[test]
fn an_element_with_too_many_namespaces_in_scope_is_refused_by_both_readers() {
    let k = keys();
    let declarations = |from: usize, n: usize| -> String {
        (from..from + n)
            .map(|i| format!(" xmlns:n{i}=\"urn:n:{i}\""))
            .collect()
    };
    let entity = |extra: &str| {
        sigkit::entity(
            "_e",
            "https://e.example",
            "",
            &k.current.base64(),
            &k.next.base64(),
        )
        .replacen(
            "<EntityDescriptor ",
            &format!("<EntityDescriptor{extra} "),
            1,
        )
    };
    let aggregate = |root: &str, entity: &str| {
        format!(
            "<?xml version=\"1.0\"?>\n<EntitiesDescriptor xmlns=\"{MD}\"{root}>\n{entity}\n</EntitiesDescriptor>\n"
        )
    };

    // Within the limit: read, on the stream as on the tree.
    let within = aggregate(&declarations(0, 4000), &entity(""));
    assert_same("within.xml", within.as_bytes());

    for (name, doc, line) in [
        // On the root.
        (
            "root.xml",
            aggregate(&declarations(0, 5000), &entity("")),
            2,
        ),
        // Inherited: 3,000 on the root, 2,000 more on an entity (its line is 3).
        (
            "inherited.xml",
            aggregate(&declarations(0, 3000), &entity(&declarations(3000, 2000))),
            3,
        ),
        // A single entity, read as a tree.
        ("single.xml", entity(&declarations(0, 5000)), 1),
    ] {
        if root_is_aggregate(doc.as_bytes()) {
            assert!(
                matches!(
                    metadata::parse_streamed(name, doc.as_bytes(), OffsetDateTime::UNIX_EPOCH),
                    Err(Fallback::Unusual(_))
                ),
                "{name}: the stream leaves it to the tree"
            );
        }
        for result in [
            metadata::parse(name, doc.as_bytes(), OffsetDateTime::UNIX_EPOCH),
            metadata::parse_tree(name, doc.as_bytes(), OffsetDateTime::UNIX_EPOCH),
        ] {
            match result {
                Err(MetadataError::Malformed {
                    line: at, detail, ..
                }) => {
                    assert_eq!(at, line, "{name}: {detail}");
                    assert!(
                        detail.contains("namespace declarations in scope (at most 4096)"),
                        "{detail}"
                    );
                }
                other => panic!("{name}: {:?}", other.map(|d| d.keys.len())),
            }
        }
    }
}
