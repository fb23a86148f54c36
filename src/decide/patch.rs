//! Byte-preserving edits: locate spans with roxmltree (via [`crate::load::scan`]), splice the
//! original bytes, re-parse and re-scan. Nothing outside the changed spans moves: BOM, line
//! endings, indentation, quoting, comments, attribute order. [`crate::act::write`] writes.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::load::scan::{self, ConfigFile, ElementSpan, EntryKind, KnownCertificates, Registry};
use crate::model::rules::RuleSet;
use crate::model::thumbprint::Thumbprint;

/// One replacement of a byte range (an insertion when the range is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// What to do to a config file; indices refer to the [`ConfigFile`] the change was planned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Trust a thumbprint in a registry (copying a sibling's form, or the rule's template).
    Add {
        registry: usize,
        thumbprint: Thumbprint,
        name: Option<String>,
    },
    /// Drop an entry.
    Remove { entry: usize },
    /// Rewrite an entry's value as clean hex in the file's case style.
    Normalize { entry: usize },
    /// Put another thumbprint in an entry's value (a single-value setting's switch).
    Replace {
        entry: usize,
        thumbprint: Thumbprint,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{file}: dialect {dialect} has no entry template, so keyroll cannot add entries here")]
    NoTemplate { file: String, dialect: String },
    #[error("{file}:{line}: {what}")]
    Refused {
        file: String,
        line: u32,
        what: String,
    },
    #[error("{file}: edits overlap at byte {at}")]
    Overlap { file: String, at: usize },
    #[error(
        "{file}: the edited text does not hold the intended entries ({detail}); nothing written"
    )]
    Verify { file: String, detail: String },
}

/// Case style for new and normalized thumbprints: the file's own, uppercase when undecided.
pub fn file_uses_lowercase(file: &ConfigFile) -> bool {
    let mut lower = false;
    let mut upper = false;
    for entry in file.entries.iter().filter(|e| !e.placeholder) {
        lower |= entry.raw.chars().any(|c| c.is_ascii_lowercase());
        upper |= entry.raw.chars().any(|c| c.is_ascii_uppercase());
    }
    lower && !upper
}

fn styled(thumbprint: Thumbprint, lowercase: bool) -> String {
    if lowercase {
        thumbprint.to_lower_hex()
    } else {
        thumbprint.to_upper_hex()
    }
}

fn escape_attr(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The file's line break, as used near `offset`; none in a one-line file.
fn newline_near(text: &str, offset: usize) -> &'static str {
    let found = text[offset..]
        .find('\n')
        .map(|p| offset + p)
        .or_else(|| text[..offset].rfind('\n'));
    match found {
        Some(p) if p > 0 && text.as_bytes()[p - 1] == b'\r' => "\r\n",
        Some(_) => "\n",
        None => "",
    }
}

/// Turns changes into byte edits on `file`'s original bytes.
pub fn edits_for(file: &ConfigFile, changes: &[Change]) -> Result<Vec<Edit>, PatchError> {
    let text = file.text();
    let display = file.path.display().to_string();
    let lowercase = file_uses_lowercase(file);
    let mut edits: Vec<Edit> = Vec::new();
    // Several additions to one registry go in one insertion, in change order.
    let mut additions: BTreeMap<usize, Vec<(Thumbprint, Option<String>)>> = BTreeMap::new();
    for change in changes {
        match change {
            Change::Add {
                registry,
                thumbprint,
                name,
            } => additions
                .entry(*registry)
                .or_default()
                .push((*thumbprint, name.clone())),
            Change::Remove { entry } => {
                let e = &file.entries[*entry];
                refuse_placeholder(file, *entry)?;
                edits.push(Edit {
                    range: removal_range(text, &e.element),
                    text: String::new(),
                });
            }
            Change::Replace { entry, thumbprint } => {
                refuse_placeholder(file, *entry)?;
                edits.push(Edit {
                    range: file.entries[*entry].value.clone(),
                    text: styled(*thumbprint, lowercase),
                });
            }
            Change::Normalize { entry } => {
                let e = &file.entries[*entry];
                refuse_placeholder(file, *entry)?;
                let Some(thumbprint) = e.normalized else {
                    return Err(PatchError::Refused {
                        file: display,
                        line: e.line,
                        what: format!("\"{}\" is not a thumbprint keyroll can normalize", e.raw),
                    });
                };
                edits.push(Edit {
                    range: e.value.clone(),
                    text: styled(thumbprint, lowercase),
                });
            }
        }
    }
    for (registry, adds) in additions {
        edits.push(addition(
            file,
            &file.registries[registry],
            &adds,
            lowercase,
        )?);
    }
    out_of_removals(&mut edits);
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    for pair in edits.windows(2) {
        if pair[1].range.start < pair[0].range.end {
            return Err(PatchError::Overlap {
                file: display,
                at: pair[1].range.start,
            });
        }
    }
    Ok(edits)
}

/// A registry's new entries go after its last child; when that child is removed in the same
/// run, its removal may take the blanks after it too, and the insertion point falls inside
/// the removal. The insertion moves to the removal's end: the same text at the same line
/// break, so the file's indentation and line endings are kept and the two edits compose.
fn out_of_removals(edits: &mut [Edit]) {
    let removals: Vec<Range<usize>> = edits
        .iter()
        .filter(|e| e.text.is_empty() && !e.range.is_empty())
        .map(|e| e.range.clone())
        .collect();
    for edit in edits.iter_mut().filter(|e| e.range.is_empty()) {
        let at = edit.range.start;
        if let Some(removal) = removals.iter().find(|r| r.start < at && at < r.end) {
            edit.range = removal.end..removal.end;
        }
    }
}

fn refuse_placeholder(file: &ConfigFile, entry: usize) -> Result<(), PatchError> {
    let e = &file.entries[entry];
    if e.placeholder {
        return Err(PatchError::Refused {
            file: file.path.display().to_string(),
            line: e.line,
            what: format!(
                "{} is a deploy-time placeholder; keyroll never edits it",
                e.raw
            ),
        });
    }
    Ok(())
}

/// An element alone on its line goes with its line (the line break before it and any
/// trailing blanks); an element sharing a line goes with the blanks just before it.
fn removal_range(text: &str, element: &Range<usize>) -> Range<usize> {
    let bytes = text.as_bytes();
    let mut start = element.start;
    while start > 0 && matches!(bytes[start - 1], b' ' | b'\t') {
        start -= 1;
    }
    let mut end = element.end;
    while end < bytes.len() && matches!(bytes[end], b' ' | b'\t') {
        end += 1;
    }
    let alone_on_line = start > 0
        && bytes[start - 1] == b'\n'
        && (end == bytes.len() || matches!(bytes[end], b'\r' | b'\n'));
    if alone_on_line {
        let mut line_break = start - 1;
        if line_break > 0 && bytes[line_break - 1] == b'\r' {
            line_break -= 1;
        }
        line_break..end
    } else {
        start..element.end
    }
}

/// How the registry writes its entries: new entries are the rule's template alone (never a
/// copy of a sibling: an extra attribute there would be a third one here, which WIF
/// refuses), in the registry's own style: its quotes and its `/>` or ` />`.
struct EntryStyle {
    quote: char,
    tight_close: bool,
    has_sibling: bool,
}

impl EntryStyle {
    fn of(file: &ConfigFile, registry: &Registry, text: &str) -> EntryStyle {
        let sibling = file
            .entries_of(registry.index)
            .filter(|e| e.kind == EntryKind::Add)
            .last();
        EntryStyle {
            quote: sibling.map_or('"', |s| s.value_quote),
            tight_close: sibling.is_some_and(|s| {
                let element = &text[s.element.clone()];
                element.ends_with("/>") && !element.ends_with(" />")
            }),
            has_sibling: sibling.is_some(),
        }
    }

    fn entry(&self, template: &str, hex: &str, name: Option<&String>) -> String {
        let mut t = template.replace("{thumbprint}", hex);
        if name.is_none() {
            t = strip_name_attr(&t);
        }
        // The registry's quotes before the name goes in: a `"` inside the name (escaped for
        // the quote it will sit in) must not be turned into one that ends the attribute.
        if self.quote == '\'' {
            t = t.replace('"', "'");
        }
        if let Some(n) = name {
            t = t.replace("{name}", &escape_attr(n, self.quote));
        }
        if self.tight_close && t.ends_with(" />") {
            t = format!("{}/>", &t[..t.len() - 3]);
        } else if !self.tight_close && self.has_sibling && t.ends_with("/>") && !t.ends_with(" />")
        {
            t = format!("{} />", &t[..t.len() - 2]);
        }
        t
    }
}

fn addition(
    file: &ConfigFile,
    registry: &Registry,
    adds: &[(Thumbprint, Option<String>)],
    lowercase: bool,
) -> Result<Edit, PatchError> {
    let text = file.text();
    let rule = &registry.rule;
    let display = file.path.display().to_string();
    let Some(template) = rule.spec.entry.template.as_deref() else {
        return Err(PatchError::NoTemplate {
            file: display,
            dialect: rule.name().to_string(),
        });
    };
    let style = EntryStyle::of(file, registry, text);
    let named = rule.spec.entry.name.is_some();
    let new_entries: Vec<String> = adds
        .iter()
        .map(|(t, n)| {
            // Names only go where the dialect has a name attribute.
            style.entry(
                template,
                &styled(*t, lowercase),
                n.as_ref().filter(|_| named),
            )
        })
        .collect();

    // After the container's last child element, so WIF applies the new entries after any
    // `<clear/>` or `<remove>` already there.
    if let Some(last) = &registry.last_child {
        let nl = newline_near(text, last.start);
        let indent = scan::line_indent(text, last.start);
        let separator = if !starts_line(text, last.start) || nl.is_empty() {
            " ".to_string()
        } else {
            format!("{nl}{indent}")
        };
        let inserted: String = new_entries
            .iter()
            .map(|e| format!("{separator}{e}"))
            .collect();
        return Ok(Edit {
            range: last.end..last.end,
            text: inserted,
        });
    }
    match (&registry.container, &registry.create_under) {
        (Some(container), _) => insert_children(text, container, &new_entries)
            .map_err(|what| refused_at(&display, registry.line, what)),
        (None, Some(parent)) => {
            let Some(create) = rule.spec.create.as_ref() else {
                return Err(PatchError::NoTemplate {
                    file: display,
                    dialect: rule.name().to_string(),
                });
            };
            let element = &create.element;
            let nl = newline_near(text, parent.range.start);
            let inner_indent = format!(
                "{}{}{}",
                parent.indent, parent.child_unit, parent.child_unit
            );
            let mut block = format!("<{element}>");
            for e in &new_entries {
                block.push_str(&format!("{nl}{inner_indent}{e}"));
            }
            block.push_str(&format!(
                "{nl}{}{}</{element}>",
                parent.indent, parent.child_unit
            ));
            insert_children(text, parent, &[block])
                .map_err(|what| refused_at(&display, registry.line, what))
        }
        (None, None) => Err(PatchError::NoTemplate {
            file: display,
            dialect: rule.name().to_string(),
        }),
    }
}

fn starts_line(text: &str, offset: usize) -> bool {
    let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    text[line_start..offset]
        .chars()
        .all(|c| c == ' ' || c == '\t')
}

fn refused_at(file: &str, line: u32, what: String) -> PatchError {
    PatchError::Refused {
        file: file.to_string(),
        line,
        what,
    }
}

/// Appends children to an element, one level deeper than it, before its end tag. An element
/// whose end tag cannot be found (never, for a span read from a parsed file) is refused
/// with why, rather than edited at a guessed place.
fn insert_children(text: &str, parent: &ElementSpan, children: &[String]) -> Result<Edit, String> {
    let nl = newline_near(text, parent.range.start);
    let (indent, child_indent) = if nl.is_empty() {
        (String::new(), String::new())
    } else {
        (
            parent.indent.clone(),
            format!("{}{}", parent.indent, parent.child_unit),
        )
    };
    let lines: String = children
        .iter()
        .map(|c| format!("{nl}{child_indent}{c}"))
        .collect();
    if parent.self_closing {
        // `<trustedIssuers />` becomes `<trustedIssuers>…</trustedIssuers>`.
        let start_tag = &text[parent.range.start..parent.start_tag_end];
        let open = start_tag
            .trim_end_matches('>')
            .trim_end_matches('/')
            .trim_end();
        let name_end = open[1..]
            .find(|c: char| c.is_whitespace())
            .map_or(open.len(), |p| p + 1);
        let name = &open[1..name_end];
        return Ok(Edit {
            range: parent.range.clone(),
            text: format!("{open}>{lines}{nl}{indent}</{name}>"),
        });
    }
    let Some(end_tag) = text[parent.range.clone()]
        .rfind("</")
        .map(|at| parent.range.start + at)
        .filter(|at| *at >= parent.start_tag_end)
    else {
        return Err(
            "keyroll cannot find where this element's children end; nothing is added here".into(),
        );
    };
    let ws_start = end_tag
        - text[..end_tag]
            .chars()
            .rev()
            .take_while(|c| c.is_whitespace())
            .map(char::len_utf8)
            .sum::<usize>();
    if text[ws_start..end_tag].contains('\n') {
        // Keep the existing line break and indentation before the end tag.
        Ok(Edit {
            range: ws_start..ws_start,
            text: lines,
        })
    } else {
        Ok(Edit {
            range: end_tag..end_tag,
            text: format!("{lines}{nl}{indent}"),
        })
    }
}

/// Removes ` name="{name}"` from a template when there is no name to write.
fn strip_name_attr(template: &str) -> String {
    let Some(at) = template.find("{name}") else {
        return template.to_string();
    };
    let before = &template[..at];
    let attr_start = before
        .rfind(|c: char| c.is_whitespace())
        .unwrap_or(before.len());
    let after = &template[at + "{name}".len()..];
    let rest = after.get(1..).unwrap_or(""); // the closing quote
    format!("{}{}", &template[..attr_start], rest)
}

/// Applies edits to the original bytes, in order; everything between them is copied as is.
pub fn splice(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(bytes.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut cursor = 0;
    for edit in edits {
        out.extend_from_slice(&bytes[cursor..edit.range.start]);
        out.extend_from_slice(edit.text.as_bytes());
        cursor = edit.range.end;
    }
    out.extend_from_slice(&bytes[cursor..]);
    out
}

/// The multiset of what each registry trusts, keyed by dialect and scope.
/// Each entry: value, issuer name, is a `<remove>`, still unclean (dirty or spaced), still
/// effective (not withdrawn by a later `<remove>`/`<clear/>`).
type TrustSet = BTreeMap<(String, Option<String>), Vec<(String, Option<String>, bool, bool, bool)>>;

fn trust_set(file: &ConfigFile) -> TrustSet {
    let mut set: TrustSet = BTreeMap::new();
    for registry in &file.registries {
        set.entry((registry.rule.name().to_string(), registry.scope.clone()))
            .or_default();
    }
    for entry in &file.entries {
        let registry = &file.registries[entry.registry];
        let value = entry
            .normalized
            .map(|t| t.to_upper_hex())
            .unwrap_or_else(|| entry.decoded.clone());
        set.entry((registry.rule.name().to_string(), registry.scope.clone()))
            .or_default()
            .push((
                value,
                entry.issuer_name.clone(),
                entry.kind == EntryKind::Remove,
                entry.findings.iter().any(|f| f.code.is_unclean()),
                entry.effective,
            ));
    }
    for list in set.values_mut() {
        list.sort();
    }
    set
}

/// Plans, splices and verifies: returns the new bytes only when a fresh parse and scan of
/// them holds exactly the intended entries and no new problem.
pub fn apply(
    file: &ConfigFile,
    changes: &[Change],
    rules: &RuleSet,
) -> Result<Vec<u8>, PatchError> {
    let edits = edits_for(file, changes)?;
    let new_bytes = splice(&file.bytes, &edits);

    let mut kept = file.clone();
    for change in changes {
        match change {
            Change::Normalize { entry } => {
                kept.entries[*entry]
                    .findings
                    .retain(|f| !f.code.is_unclean());
            }
            Change::Replace { entry, thumbprint } => {
                let e = &mut kept.entries[*entry];
                e.normalized = Some(*thumbprint);
                e.findings.retain(|f| !f.code.is_unclean());
            }
            _ => {}
        }
    }
    let dropped: Vec<usize> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Remove { entry } => Some(*entry),
            _ => None,
        })
        .collect();
    kept.entries = std::mem::take(&mut kept.entries)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, e)| e)
        .collect();
    let mut want = trust_set(&kept);
    for change in changes {
        if let Change::Add {
            registry,
            thumbprint,
            name,
        } = change
        {
            let r = &file.registries[*registry];
            let name = if r.rule.spec.entry.name.is_some() {
                name.clone()
            } else {
                r.issuer_name.clone()
            };
            let list = want
                .entry((r.rule.name().to_string(), r.scope.clone()))
                .or_default();
            list.push((thumbprint.to_upper_hex(), name, false, false, true));
            list.sort();
        }
    }

    let reparsed = scan::parse_config(
        &file.path,
        new_bytes.clone(),
        rules,
        &KnownCertificates::default(),
    );
    let display = file.path.display().to_string();
    if let Some(problem) = reparsed.problems.iter().find(|p| {
        !file
            .problems
            .iter()
            .any(|old| old.finding.code == p.finding.code)
    }) {
        return Err(PatchError::Verify {
            file: display,
            detail: format!("line {}: {}", problem.line, problem.finding.message),
        });
    }
    // Never a new duplicate: WIF refuses the file at the second equal `<add>`.
    let duplicates = |f: &ConfigFile| {
        f.entries
            .iter()
            .filter(|e| e.duplicate_of.is_some())
            .count()
    };
    if duplicates(&reparsed) > duplicates(&kept) {
        return Err(PatchError::Verify {
            file: display,
            detail: "the edit would leave two equal entries, which WIF refuses to load".into(),
        });
    }
    let got = trust_set(&reparsed);
    if got != want {
        return Err(PatchError::Verify {
            file: display,
            detail: format!("expected {want:?}, found {got:?}"),
        });
    }
    Ok(new_bytes)
}
