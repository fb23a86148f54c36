//! Fuzzing harnesses, shared by the `cargo fuzz` targets (`fuzz/`, nightly) and the stable
//! test that replays every input they ever found (`tests/fuzz_regressions.rs`). Each one
//! panics only when an invariant breaks.

#![doc(hidden)]

use std::path::Path;

use crate::decide::patch::{self, Change};
use crate::load::scan::{self, KnownCertificates};
use crate::model::rules::RuleSet;
use crate::model::thumbprint::{self, Thumbprint};

/// The built-in rules, loaded once: reloading them for every input held the config
/// targets to ~160 executions a second (about 60 times fewer than with this).
fn rules() -> &'static RuleSet {
    static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(RuleSet::builtin)
}

/// `thumbprint --check`: never panics; a result re-checks to itself.
pub fn thumbprint_check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let report = thumbprint::check(text);
    if let Ok(t) = report.result {
        let again = thumbprint::check(&t.to_upper_hex());
        assert_eq!(again.result.ok(), Some(t));
        assert!(again.removed.is_empty());
        assert_eq!(Thumbprint::from_x5t(&t.to_x5t()), Some(t));
        // Every removed character was really in the input, at its position.
        for note in &report.removed {
            assert_eq!(text.chars().nth(note.position - 1), Some(note.ch));
        }
    }
}

/// Metadata parsing (XML and JSON): an error or a document, never a panic.
pub fn metadata_parse(data: &[u8]) {
    if let Ok(doc) = crate::load::metadata::parse("fuzz", data, time::OffsetDateTime::UNIX_EPOCH) {
        assert!(!doc.keys.is_empty());
        for key in &doc.keys {
            assert!(!key.uses.is_empty());
        }
    }
}

/// Signature verification and key reading, on both readers: whatever the tree reader makes
/// of a document, the stream (when it does not leave the document to the tree) makes the
/// same: the same keys with their bounds, the same signature verdict, the same freshness, or
/// the same error. A document it reads has a key, never one inside a `ds:Signature`.
pub fn signature_verify(data: &[u8]) {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let tree = crate::load::metadata::parse_tree("fuzz", data, now);
    if let Ok(doc) = &tree {
        assert!(!doc.keys.is_empty());
    }
    let Ok(streamed) = crate::load::metadata::parse_streamed("fuzz", data, now) else {
        return;
    };
    assert_eq!(reading(&streamed), reading(&tree));
}

/// What a reader made of a document, as comparable text.
fn reading(
    doc: &Result<crate::load::metadata::MetadataDocument, crate::load::metadata::MetadataError>,
) -> String {
    match doc {
        Err(e) => format!("error {e}"),
        Ok(doc) => {
            let mut out = format!(
                "{} {} {:?} {:?} {:?}\n",
                doc.sha256,
                doc.weak_signature,
                doc.freshness,
                doc.signature_report.as_ref().map(|r| r.summary()),
                doc.signature.as_ref().map(|s| (s.verified, s.signer_sha1)),
            );
            for k in &doc.keys {
                out.push_str(&format!(
                    "{:?} {:?} {:?} {} {} {:?}\n",
                    k.entity_id, k.roles, k.uses, k.location, k.certificate.sha1, k.bounds
                ));
            }
            out
        }
    }
}

/// Config scanning over every built-in dialect: spans lie inside the file and say what the
/// entry says.
pub fn config_scan(data: &[u8]) {
    let file = scan::parse_config(
        Path::new("fuzz.config"),
        data.to_vec(),
        rules(),
        &KnownCertificates::default(),
    );
    if !file.problems.is_empty() && file.entries.is_empty() {
        return;
    }
    let text = std::str::from_utf8(&file.bytes).expect("a scanned file is UTF-8");
    for entry in &file.entries {
        assert!(entry.element.start <= entry.value.start && entry.value.end <= entry.element.end);
        assert_eq!(&text[entry.value.clone()], entry.raw);
        assert!(entry.registry < file.registries.len());
    }
}

/// The edit engine: a config from the input, edits chosen by the input's last bytes. When
/// the engine accepts, only the edited spans changed and the result scans clean.
pub fn edit_engine(data: &[u8]) {
    let split = data.len().saturating_sub(8);
    let (config, choice) = data.split_at(split);
    let rules = rules();
    let file = scan::parse_config(
        Path::new("fuzz.config"),
        config.to_vec(),
        rules,
        &KnownCertificates::default(),
    );
    if !file.problems.is_empty() {
        return;
    }
    let mut changes = Vec::new();
    for (i, byte) in choice.iter().enumerate() {
        match byte % 4 {
            0 if !file.entries.is_empty() => changes.push(Change::Remove {
                entry: (*byte as usize / 4) % file.entries.len(),
            }),
            1 if !file.entries.is_empty() => changes.push(Change::Normalize {
                entry: (*byte as usize / 4) % file.entries.len(),
            }),
            2 if !file.registries.is_empty() => changes.push(Change::Add {
                registry: (*byte as usize / 4) % file.registries.len(),
                thumbprint: Thumbprint::from_bytes([i as u8 ^ byte; 20]),
                name: (byte & 0x80 != 0).then(|| format!("issuer-{byte}")),
            }),
            _ => {}
        }
    }
    let Ok(edits) = patch::edits_for(&file, &changes) else {
        return;
    };
    let Ok(after) = patch::apply(&file, &changes, rules) else {
        return;
    };
    assert_eq!(after, patch::splice(&file.bytes, &edits));
    // Bytes between edits are the original bytes.
    let (mut old, mut new) = (0, 0);
    for edit in &edits {
        let kept = &file.bytes[old..edit.range.start];
        assert_eq!(&after[new..new + kept.len()], kept);
        new += kept.len() + edit.text.len();
        old = edit.range.end;
    }
    assert_eq!(&after[new..], &file.bytes[old..]);
    let again = scan::parse_config(
        Path::new("fuzz.config"),
        after,
        rules,
        &KnownCertificates::default(),
    );
    assert!(again.problems.is_empty(), "{:?}", again.problems);
}
