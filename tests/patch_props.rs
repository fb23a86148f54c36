//! Property test: generated configs (line endings, BOM, indentation, quoting, comments,
//! sibling forms) and random edit sequences. Bytes outside the edited spans never change,
//! the result parses, and a fresh scan gives exactly the intended set.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use keyroll::decide::patch::{self, Change, Edit};
use keyroll::load::scan::{self, EntryKind, KnownCertificates};
use keyroll::model::rules::RuleSet;
use keyroll::model::thumbprint::Thumbprint;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Style {
    crlf: bool,
    bom: bool,
    unit: &'static str,
    quote: char,
    slash: &'static str,
    name_first: bool,
    comments: bool,
    self_closing_when_empty: bool,
    final_newline: bool,
    /// Blanks after each entry, before its line break (a removal takes them with it).
    trailing_blanks: bool,
}

#[derive(Debug, Clone)]
struct GenEntry {
    key: [u8; 20],
    lowercase: bool,
    /// 0 clean, 1 spaced byte pairs, 2 a pasted U+200E.
    dirt: u8,
    name: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Keep,
    Remove,
    Normalize,
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["\t", "  ", "    "]),
        prop::sample::select(vec!['"', '\'']),
        prop::sample::select(vec!["/>", " />"]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                crlf,
                bom,
                unit,
                quote,
                slash,
                name_first,
                comments,
                self_closing_when_empty,
                final_newline,
                trailing_blanks,
            )| Style {
                crlf,
                bom,
                unit,
                quote,
                slash,
                name_first,
                comments,
                self_closing_when_empty,
                final_newline,
                trailing_blanks,
            },
        )
}

fn entries() -> impl Strategy<Value = Vec<GenEntry>> {
    prop::collection::vec(
        (
            any::<[u8; 20]>(),
            any::<bool>(),
            0u8..3,
            prop::option::of("[a-z][a-z0-9.:/-]{0,12}"),
        )
            .prop_map(|(key, lowercase, dirt, name)| GenEntry {
                key,
                lowercase,
                dirt,
                name,
            }),
        0..5,
    )
    .prop_map(|mut list| {
        let mut seen = BTreeSet::new();
        list.retain(|e| seen.insert(e.key));
        list
    })
}

fn render_value(e: &GenEntry) -> String {
    let hex = if e.lowercase {
        hex::encode(e.key)
    } else {
        hex::encode_upper(e.key)
    };
    match e.dirt {
        1 => hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" "),
        2 => format!("\u{200E}{hex}"),
        _ => hex,
    }
}

fn render(style: &Style, list: &[GenEntry]) -> String {
    let nl = if style.crlf { "\r\n" } else { "\n" };
    let u = style.unit;
    let q = style.quote;
    let mut out = String::new();
    if style.bom {
        out.push('\u{FEFF}');
    }
    out.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>{nl}<configuration>{nl}{u}<configSections>{nl}{u}{u}<section name={q}system.identityModel{q} type={q}System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel{q} />{nl}{u}</configSections>{nl}"
    ));
    out.push_str(&format!(
        "{u}<!-- identity -->{nl}{u}<system.identityModel>{nl}{u}{u}<identityConfiguration>{nl}"
    ));
    out.push_str(&format!(
        "{u}{u}{u}<issuerNameRegistry type={q}System.IdentityModel.Tokens.ConfigurationBasedIssuerNameRegistry, System.IdentityModel{q}>{nl}"
    ));
    if list.is_empty() && style.self_closing_when_empty {
        out.push_str(&format!("{u}{u}{u}{u}<trustedIssuers{}{nl}", style.slash));
    } else {
        out.push_str(&format!("{u}{u}{u}{u}<trustedIssuers>{nl}"));
        for e in list {
            if style.comments {
                out.push_str(&format!(
                    "{u}{u}{u}{u}{u}<!-- <add thumbprint=\"x\"/> -->{nl}"
                ));
            }
            let thumb = format!("thumbprint={q}{}{q}", render_value(e));
            let name = e.name.as_ref().map(|n| format!("name={q}{n}{q}"));
            let attrs = match (&name, style.name_first) {
                (Some(n), true) => format!("{n} {thumb}"),
                (Some(n), false) => format!("{thumb} {n}"),
                (None, _) => thumb,
            };
            let blanks = if style.trailing_blanks { "  " } else { "" };
            out.push_str(&format!(
                "{u}{u}{u}{u}{u}<add {attrs}{}{blanks}{nl}",
                style.slash
            ));
        }
        out.push_str(&format!("{u}{u}{u}{u}</trustedIssuers>{nl}"));
    }
    out.push_str(&format!(
        "{u}{u}{u}</issuerNameRegistry>{nl}{u}{u}</identityConfiguration>{nl}{u}</system.identityModel>{nl}</configuration>"
    ));
    if style.final_newline {
        out.push_str(nl);
    }
    out
}

/// The bytes between edits are the original bytes, in order.
fn assert_only_edited_spans_changed(before: &[u8], after: &[u8], edits: &[Edit]) {
    let mut cursor_before = 0;
    let mut cursor_after = 0;
    for edit in edits {
        let unchanged = &before[cursor_before..edit.range.start];
        assert_eq!(
            &after[cursor_after..cursor_after + unchanged.len()],
            unchanged,
            "bytes before the edit at {} changed",
            edit.range.start
        );
        cursor_after += unchanged.len() + edit.text.len();
        cursor_before = edit.range.end;
    }
    assert_eq!(
        &after[cursor_after..],
        &before[cursor_before..],
        "tail changed"
    );
}

/// Each edit stays within what its change may touch.
fn assert_edits_in_bounds(file: &scan::ConfigFile, changes: &[Change], edits: &[Edit]) {
    let text = file.text();
    let allowed: Vec<Range<usize>> = changes
        .iter()
        .map(|c| match c {
            Change::Normalize { entry } | Change::Replace { entry, .. } => {
                file.entries[*entry].value.clone()
            }
            Change::Remove { entry } => {
                let element = &file.entries[*entry].element;
                let line_start = text[..element.start].rfind('\n').unwrap_or(0);
                let line_start = if line_start > 0 && text.as_bytes()[line_start - 1] == b'\r' {
                    line_start - 1
                } else {
                    line_start
                };
                let trailing = text[element.end..]
                    .find(|c: char| c != ' ' && c != '\t')
                    .unwrap_or(0);
                line_start..element.end + trailing
            }
            Change::Add { .. } => {
                let container = file.registries[0].container.as_ref().unwrap();
                container.range.clone()
            }
        })
        .collect();
    for edit in edits {
        assert!(
            allowed
                .iter()
                .any(|a| a.start <= edit.range.start && edit.range.end <= a.end),
            "edit {:?} outside every allowed span {allowed:?}",
            edit.range
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn edits_preserve_everything_else(
        style in style(),
        list in entries(),
        ops in prop::collection::vec(prop::sample::select(vec![Op::Keep, Op::Remove, Op::Normalize]), 5),
        additions in prop::collection::vec((any::<[u8; 20]>(), prop::option::of("[a-z]{1,8}")), 0..3),
    ) {
        let text = render(&style, &list);
        let rules = RuleSet::builtin();
        let file = scan::parse_config(Path::new("web.config"), text.clone().into_bytes(), &rules, &KnownCertificates::default());
        prop_assert!(file.problems.is_empty(), "{:?}", file.problems);
        prop_assert_eq!(file.entries.len(), list.len());

        let mut changes = Vec::new();
        let mut expected: BTreeSet<Thumbprint> = BTreeSet::new();
        for (index, entry) in list.iter().enumerate() {
            match ops[index] {
                Op::Remove => changes.push(Change::Remove { entry: index }),
                Op::Normalize => {
                    changes.push(Change::Normalize { entry: index });
                    expected.insert(Thumbprint::from_bytes(entry.key));
                }
                Op::Keep => { expected.insert(Thumbprint::from_bytes(entry.key)); }
            }
        }
        for (key, name) in &additions {
            let t = Thumbprint::from_bytes(*key);
            if list.iter().any(|e| e.key == *key) || !expected.insert(t) {
                continue;
            }
            changes.push(Change::Add { registry: 0, thumbprint: t, name: name.clone() });
        }

        let edits = patch::edits_for(&file, &changes).unwrap();
        let after = patch::apply(&file, &changes, &rules).unwrap();
        assert_only_edited_spans_changed(&file.bytes, &after, &edits);
        if file.registries[0].container.as_ref().is_some_and(|c| !c.self_closing) {
            assert_edits_in_bounds(&file, &changes, &edits);
        }

        // The result parses and a fresh scan finds exactly the intended set.
        let rescanned = scan::parse_config(Path::new("web.config"), after.clone(), &rules, &KnownCertificates::default());
        prop_assert!(rescanned.problems.is_empty(), "{:?}", rescanned.problems);
        let got: BTreeSet<Thumbprint> = rescanned
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Add)
            .map(|e| e.normalized.unwrap())
            .collect();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(rescanned.entries.len(), expected.len());
        for (index, _) in list.iter().enumerate() {
            if let Op::Normalize = ops[index] {
                let key = Thumbprint::from_bytes(list[index].key);
                let entry = rescanned.entries.iter().find(|e| e.normalized == Some(key)).unwrap();
                prop_assert!(!entry.findings.iter().any(|f| f.code.is_unclean()));
            }
        }

        // No line-ending style or BOM introduced or lost.
        let after_text = String::from_utf8(after).unwrap();
        prop_assert_eq!(after_text.starts_with('\u{FEFF}'), style.bom);
        let bare_lf = after_text.replace("\r\n", "").contains('\n');
        let crlf = after_text.contains("\r\n");
        prop_assert_eq!(crlf, style.crlf);
        prop_assert_eq!(bare_lf, !style.crlf);
        prop_assert_eq!(after_text.ends_with('>'), !style.final_newline);
    }
}
