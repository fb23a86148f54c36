//! Scanning and byte-preserving edits on the corpus configs (tests/data/configs, copied
//! byte-exact from shared/corpus; provenance in tests/data/SOURCES.md).

use std::path::{Path, PathBuf};

use keyroll::decide::patch::{self, Change};
use keyroll::load::scan::{self, ConfigFile, EntryKind, KnownCertificates};
use keyroll::model::rules::RuleSet;
use keyroll::model::thumbprint::Thumbprint;

const CONFIGS: &str = "tests/data/configs";
const NEW_KEY: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

fn all_configs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(CONFIGS)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "config") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn load(path: &Path) -> ConfigFile {
    load_bytes(path, std::fs::read(path).unwrap())
}

fn load_bytes(path: &Path, bytes: Vec<u8>) -> ConfigFile {
    scan::parse_config(
        path,
        bytes,
        &RuleSet::builtin(),
        &KnownCertificates::default(),
    )
}

fn new_key() -> Thumbprint {
    NEW_KEY.parse().unwrap()
}

#[test]
fn empty_change_set_rewrites_every_corpus_config_byte_for_byte() {
    let configs = all_configs();
    assert!(configs.len() >= 18, "{}", configs.len());
    for path in configs {
        let file = load(&path);
        assert!(
            file.problems.is_empty(),
            "{}: {:?}",
            path.display(),
            file.problems
        );
        let out = patch::apply(&file, &[], &RuleSet::builtin()).unwrap();
        assert_eq!(out, file.bytes, "{}", path.display());
    }
}

/// THUMBPRINTS.tsv: every rewrite target found at its line and byte offset; every
/// serviceCertificate `findValue` decoy left out.
#[test]
fn corpus_thumbprints_are_found_at_their_lines_and_decoys_ignored() {
    let tsv = std::fs::read_to_string(format!("{CONFIGS}/THUMBPRINTS.tsv")).unwrap();
    let mut targets = 0;
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, line_no, offset, value, role) = (
            cols[0],
            cols[1].parse::<u32>().unwrap(),
            cols[2].parse::<usize>().unwrap(),
            cols[5],
            cols[9],
        );
        let config = load(&Path::new(CONFIGS).join(file));
        let at_line: Vec<_> = config
            .entries
            .iter()
            .filter(|e| e.line == line_no)
            .collect();
        if role.starts_with("NOT") {
            assert!(
                at_line.is_empty(),
                "{file}:{line_no} decoy was taken as an entry"
            );
            continue;
        }
        targets += 1;
        assert_eq!(at_line.len(), 1, "{file}:{line_no}");
        let entry = at_line[0];
        assert_eq!(entry.raw, value, "{file}:{line_no}");
        assert_eq!(
            entry.value.start - "thumbprint=\"".len(),
            offset,
            "{file}:{line_no} byte offset"
        );
        let expected_dialect = if role.starts_with("VINR") {
            "vinr"
        } else if cols[3].starts_with("configuration/microsoft.identityModel") {
            "wif35"
        } else {
            "wif45"
        };
        assert_eq!(entry.dialect, expected_dialect, "{file}:{line_no}");
        if !cols[7].is_empty() && expected_dialect != "vinr" {
            assert_eq!(
                entry.issuer_name.as_deref(),
                Some(cols[7]),
                "{file}:{line_no}"
            );
        }
    }
    assert_eq!(targets, 14);
}

fn add_to_every_registry(path: &Path) -> (ConfigFile, Vec<u8>) {
    let file = load(path);
    let changes: Vec<Change> = file
        .registries
        .iter()
        .filter(|r| r.rule.spec.entry.template.is_some())
        .map(|r| Change::Add {
            registry: r.index,
            thumbprint: new_key(),
            name: Some("https://sts.example.com/".into()),
        })
        .collect();
    let out = patch::apply(&file, &changes, &RuleSet::builtin()).unwrap();
    (file, out)
}

/// The change is one insertion right after the last child element of the last registry
/// (where WIF applies it after any `<clear/>`/`<remove>`): everything before and after it
/// is the original bytes. Returns what was inserted.
fn single_insertion(file: &ConfigFile, after: &[u8]) -> String {
    let at = file
        .registries
        .iter()
        .filter_map(|r| r.last_child.as_ref())
        .map(|c| c.end)
        .max()
        .expect("file has entries");
    let before = &file.bytes;
    let inserted_len = after.len() - before.len();
    assert_eq!(&after[..at], &before[..at], "bytes before the insertion");
    assert_eq!(
        &after[at + inserted_len..],
        &before[at..],
        "bytes after the insertion"
    );
    String::from_utf8(after[at..at + inserted_len].to_vec()).unwrap()
}

#[test]
fn addition_is_the_template_in_the_registrys_own_style() {
    // WIF 3.5, tabs, lowercase: the template (thumbprint, then name), the file's case.
    let (file, out) = add_to_every_registry(Path::new(
        "tests/data/configs/cbib-a-order-claimsaware.config",
    ));
    let inserted = single_insertion(&file, &out);
    assert_eq!(
        inserted,
        "\n\t\t\t\t\t<add thumbprint=\"0123456789abcdef0123456789abcdef01234567\" name=\"https://sts.example.com/\" />"
    );
    assert!(out.starts_with(b"\xEF\xBB\xBF"), "BOM kept");

    // A sibling written name-then-thumbprint is not copied: only the template's two
    // attributes, so an extra attribute on a sibling can never become a third one here.
    let (file, out) =
        add_to_every_registry(Path::new("tests/data/configs/nordvall-mvc5-http.config"));
    let inserted = single_insertion(&file, &out);
    assert!(
        inserted.contains("<add thumbprint=\"0123456789abcdef0123456789abcdef01234567\" name=\"https://sts.example.com/\" />"),
        "{inserted:?}"
    );

    // Uppercase file: uppercase, one line, indented like the last child.
    let (file, out) = add_to_every_registry(Path::new(
        "tests/data/configs/idsrv2-mvc-wcf-rp/identity.config",
    ));
    let inserted = single_insertion(&file, &out);
    assert!(inserted.contains(NEW_KEY), "{inserted:?}");
    assert_eq!(inserted.matches('\n').count(), 1, "{inserted:?}");

    // Mixed-case file (two lowercase, one uppercase): undecided, so uppercase.
    let (file, out) = add_to_every_registry(Path::new(
        "tests/data/configs/cbib-adatum-federationprovider6.config",
    ));
    assert!(single_insertion(&file, &out).contains(NEW_KEY));
}

#[test]
fn addition_to_vinr_authority_writes_only_a_thumbprint() {
    let path = Path::new("tests/data/configs/idsrv2-mvc-webapi-jwt/identityModel.config");
    let (file, out) = add_to_every_registry(path);
    let inserted = single_insertion(&file, &out);
    assert!(
        inserted.ends_with("<add thumbprint=\"0123456789abcdef0123456789abcdef01234567\" />"),
        "{inserted:?}"
    );
    assert!(!inserted.contains("name="));
    let again = load_bytes(path, out);
    let keys: Vec<_> = again
        .entries
        .iter()
        .filter(|e| e.dialect == "vinr")
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(
            |k| k.scope.as_deref() == Some("http://identityserver.v2.thinktecture.com/samples")
        )
    );
}

#[test]
fn empty_self_closing_trusted_issuers_is_opened_with_the_template() {
    let path = Path::new("tests/data/configs/cbib-mycustomtokenhandlerwebsite.config");
    let file = load(path);
    assert_eq!(file.registries.len(), 1);
    assert!(file.entries.is_empty());
    let out = patch::apply(
        &file,
        &[Change::Add {
            registry: 0,
            thumbprint: new_key(),
            name: Some("MyIssuer".into()),
        }],
        &RuleSet::builtin(),
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!(
            "<trustedIssuers>\n\t\t\t\t\t<add thumbprint=\"{NEW_KEY}\" name=\"MyIssuer\" />\n\t\t\t\t</trustedIssuers>"
        )),
        "{text}"
    );
}

#[test]
fn pasted_left_to_right_mark_is_flagged_and_normalized_in_place() {
    let path = Path::new("tests/data/configs/nordvall-mvc5-http.config");
    let original = std::fs::read_to_string(path).unwrap();
    let pasted = original.replace(
        "thumbprint=\"18145fb6b5d96b3cc34ec7599f12172bb93c68ef\"",
        "thumbprint=\"\u{200E}18 14 5f b6 b5 d9 6b 3c c3 4e c7 59 9f 12 17 2b b9 3c 68 ef\"",
    );
    assert_ne!(pasted, original);
    let file = load_bytes(path, pasted.clone().into_bytes());
    let entry = &file.entries[0];
    let dirty = entry
        .findings
        .iter()
        .find(|f| f.code.as_str() == "dirty")
        .unwrap();
    assert!(
        dirty
            .message
            .contains("U+200E LEFT-TO-RIGHT MARK at position 1"),
        "{}",
        dirty.message
    );
    assert!(entry.findings.iter().any(|f| f.code.as_str() == "spaced"));

    let out = patch::apply(
        &file,
        &[Change::Normalize { entry: 0 }],
        &RuleSet::builtin(),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        original,
        "back to the clean lowercase original"
    );
}

#[test]
fn duplicate_entries_are_flagged_and_can_be_dropped() {
    let path = Path::new("tests/data/configs/cbib-fabrikam-federationprovider3.config");
    let original = std::fs::read_to_string(path).unwrap();
    let line = "<add thumbprint=\"2f8206711633599286e10db94a5cfb0c5ec0a235\" name=\"litware\" />";
    assert!(original.contains(line));
    // A second copy, in uppercase and spaced: still the same key to WIF.
    let duplicate = "<add thumbprint=\"2F82 0671 1633 5992 86E1 0DB9 4A5C FB0C 5EC0 A235\" name=\"litware-again\" />";
    let with_dup = original.replacen(line, &format!("{line}\n        {duplicate}"), 1);
    let file = load_bytes(path, with_dup.into_bytes());
    let dup_index = file
        .entries
        .iter()
        .position(|e| e.findings.iter().any(|f| f.code.as_str() == "duplicate"))
        .expect("duplicate flagged");
    let finding = file.entries[dup_index]
        .findings
        .iter()
        .find(|f| f.code.as_str() == "duplicate")
        .unwrap();
    assert_eq!(
        finding.message.split(':').next().unwrap(),
        "duplicate of line 52"
    );

    let out = patch::apply(
        &file,
        &[Change::Remove { entry: dup_index }],
        &RuleSet::builtin(),
    )
    .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), original);
}

#[test]
fn removing_the_only_entry_and_adding_another_keeps_the_layout() {
    let path = Path::new("tests/data/configs/saml2wif-samlpoc/identity.config");
    let file = load(path);
    let out = patch::apply(
        &file,
        &[
            Change::Remove { entry: 0 },
            Change::Add {
                registry: 0,
                thumbprint: new_key(),
                name: None,
            },
        ],
        &RuleSet::builtin(),
    )
    .unwrap();
    let before = String::from_utf8(file.bytes.clone()).unwrap();
    let after = String::from_utf8(out).unwrap();
    assert_eq!(
        after,
        before.replace(
            "8ba946937159cf145c51bd82de7110eecc872656",
            "0123456789abcdef0123456789abcdef01234567"
        )
    );
}

#[test]
fn placeholders_are_reported_and_never_edited() {
    let path = Path::new("tests/data/configs/nordvall-mvc5-http.config");
    let original = std::fs::read_to_string(path).unwrap();
    let with_placeholder = original.replace(
        "18145fb6b5d96b3cc34ec7599f12172bb93c68ef",
        "#{IssuerThumbprint}",
    );
    let file = load_bytes(path, with_placeholder.into_bytes());
    let entry = &file.entries[0];
    assert!(entry.placeholder);
    assert_eq!(entry.findings.len(), 1);
    assert_eq!(entry.findings[0].code.as_str(), "placeholder");
    let err = patch::apply(
        &file,
        &[Change::Normalize { entry: 0 }],
        &RuleSet::builtin(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("placeholder"), "{err}");
}

#[test]
fn remove_and_clear_are_applied_in_document_order() {
    let text = "<configuration><system.identityModel><identityConfiguration><issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\"><trustedIssuers>\n  <add thumbprint=\"1111111111111111111111111111111111111111\" name=\"a\"/>\n  <clear/>\n  <add thumbprint=\"2222222222222222222222222222222222222222\" name=\"b\"/>\n  <add thumbprint=\"3333333333333333333333333333333333333333\" name=\"c\"/>\n  <remove thumbprint=\"3333333333333333333333333333333333333333\"/>\n</trustedIssuers></issuerNameRegistry></identityConfiguration></system.identityModel></configuration>";
    let file = load_bytes(Path::new("web.config"), text.as_bytes().to_vec());
    let effective: Vec<_> = file
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Add && e.effective)
        .map(|e| e.issuer_name.clone().unwrap())
        .collect();
    assert_eq!(effective, ["b"]);
    assert_eq!(
        file.entries
            .iter()
            .filter(|e| e.kind == EntryKind::Remove)
            .count(),
        1
    );
}

#[test]
fn missing_trusted_issuers_is_created_where_the_rule_allows() {
    let text = "<configuration>\r\n  <system.identityModel>\r\n    <identityConfiguration>\r\n      <issuerNameRegistry type=\"System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel\" />\r\n    </identityConfiguration>\r\n  </system.identityModel>\r\n</configuration>\r\n";
    let file = load_bytes(Path::new("web.config"), text.as_bytes().to_vec());
    assert_eq!(file.registries.len(), 1);
    assert!(file.registries[0].container.is_none());
    let out = patch::apply(
        &file,
        &[Change::Add {
            registry: 0,
            thumbprint: new_key(),
            name: Some("https://sts.example.com/".into()),
        }],
        &RuleSet::builtin(),
    )
    .unwrap();
    let expected = text.replace(
        "ConfigurationBasedIssuerNameRegistry, System.IdentityModel\" />",
        &format!("ConfigurationBasedIssuerNameRegistry, System.IdentityModel\">\r\n        <trustedIssuers>\r\n          <add thumbprint=\"{NEW_KEY}\" name=\"https://sts.example.com/\" />\r\n        </trustedIssuers>\r\n      </issuerNameRegistry>"),
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);

    // A registry of another type (a custom or metadata-based one) is left alone.
    let other = text.replace(
        "ConfigurationBasedIssuerNameRegistry",
        "MetadataBasedIssuerNameRegistry",
    );
    let file = load_bytes(Path::new("web.config"), other.into_bytes());
    assert!(file.registries.is_empty());
}

#[test]
fn utf16_is_read_as_text_and_ansi_is_refused_not_corrupted() {
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<configuration/>"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        )
        .collect();
    let file = load_bytes(Path::new("utf16.config"), utf16.clone());
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    assert_eq!(file.encoding, scan::TextEncoding::Utf16Le);
    assert_eq!(file.bytes, b"<configuration/>");
    assert_eq!(file.encoding.encode(&file.bytes), utf16, "round trip");
    // A byte-order mark over bytes that are not UTF-16 is refused.
    let file = load_bytes(Path::new("odd.config"), vec![0xFF, 0xFE, 0x3C]);
    assert_eq!(
        file.problems[0].finding.code.as_str(),
        "unsupported-encoding"
    );

    let ansi = b"<configuration>\n<!-- caf\xE9 -->\n</configuration>".to_vec();
    let file = load_bytes(Path::new("ansi.config"), ansi);
    assert_eq!(
        file.problems[0].finding.code.as_str(),
        "unsupported-encoding"
    );
    assert_eq!(file.problems[0].line, 2);
}
