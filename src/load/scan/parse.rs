//! Reading one config file: its registries (by the rules), entries with exact spans, WIF's
//! own verdict on each entry (findings), and its `configSource` references as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::load::metadata::{xml_error_detail, xml_error_position, xml_options};
use crate::model::cert::{Validity, rfc3339};
use crate::model::rules::{Rule, RuleSet};
use crate::model::thumbprint;

/// Reads one config file; XML problems become [`FileProblem`]s, not errors, so a scan of a
/// tree reports them all.
pub fn parse_config(
    path: &Path,
    bytes: Vec<u8>,
    rules: &RuleSet,
    known: &KnownCertificates,
) -> ConfigFile {
    let mut file = ConfigFile {
        path: path.to_path_buf(),
        bytes,
        registries: Vec::new(),
        entries: Vec::new(),
        config_source_refs: Vec::new(),
        config_sources: Vec::new(),
        problems: Vec::new(),
        is_transform: false,
        encoding: TextEncoding::Utf8,
    };
    if let Err(refused) = decode_text(path, &mut file) {
        file.problems.push(refused);
        return file;
    }
    let bom = file.bom_len();
    // Moved out while the DOM borrows it; moved back before returning.
    let bytes = std::mem::take(&mut file.bytes);
    let text = std::str::from_utf8(&bytes[bom..]).expect("checked above");
    let doc = match roxmltree::Document::parse_with_options(text, xml_options()) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = xml_error_position(text, &e);
            file.problems.push(file_problem(
                path,
                line,
                column,
                Code::Malformed,
                xml_error_detail(&e),
            ));
            drop(e);
            file.bytes = bytes;
            return file;
        }
    };
    file.is_transform = doc.root_element().namespaces().any(|ns| ns.uri() == XDT_NS);
    let lines = crate::load::metadata::LineIndex::new(doc.input_text());
    let ctx = Ctx {
        doc: &doc,
        lines,
        bom,
        path,
        known,
    };
    for rule in &rules.rules {
        for path_segments in &rule.registry_paths {
            collect_registries(&ctx, rule, path_segments, &mut file);
        }
    }
    record_config_sources(&ctx, rules, &mut file);
    let position = |offset: usize| ctx.pos(offset);
    let mut checker = super::wif::Checker::new(doc.input_text(), &position, path);
    checker.check(&doc);
    file.problems.extend(checker.problems);
    drop(doc);
    file.bytes = bytes;
    // A scan keeps every file it parsed: the lists' spare room (four entries' worth, each a
    // few hundred bytes) would be most of what a small config keeps.
    file.registries.shrink_to_fit();
    file.entries.shrink_to_fit();
    file.problems.shrink_to_fit();
    file
}

/// A problem of the file as a whole (not of one entry), an error, at `line`:`column`.
fn file_problem(path: &Path, line: u32, column: u32, code: Code, message: String) -> FileProblem {
    FileProblem {
        file: path.to_path_buf(),
        line,
        column,
        finding: Finding::new(code, Severity::Error, message),
    }
}

/// Leaves the file's bytes as UTF-8 text (UTF-16 decoded, its encoding recorded), or returns
/// the problem that stops keyroll reading it: an encoding it does not read, or a NUL byte.
fn decode_text(path: &Path, file: &mut ConfigFile) -> Result<(), FileProblem> {
    let problem =
        |line, column, code, message: String| file_problem(path, line, column, code, message);
    // Said as what it is: read as UTF-16 (its mark begins like UTF-16LE's) it would only be
    // "malformed XML" at line 1.
    if TextEncoding::is_utf32(&file.bytes) {
        return Err(problem(
            1,
            1,
            Code::UnsupportedEncoding,
            "UTF-32 (by its byte-order mark): keyroll reads UTF-8 and UTF-16 only, and will not read or change this file".into(),
        ));
    }
    if let Some((encoding, text)) = TextEncoding::decode_utf16(&file.bytes) {
        file.encoding = encoding;
        file.bytes = text;
    }
    if file.bytes.starts_with(b"\xFF\xFE") || file.bytes.starts_with(b"\xFE\xFF") {
        return Err(problem(
            1,
            1,
            Code::UnsupportedEncoding,
            "not valid UTF-16 despite its byte-order mark: nothing here is checked or changed"
                .into(),
        ));
    }
    if let Err(e) = std::str::from_utf8(&file.bytes) {
        let (line, column) = crate::load::metadata::line_column(&file.bytes[..e.valid_up_to()]);
        file.bytes.truncate(e.valid_up_to());
        return Err(problem(
            line,
            column,
            Code::UnsupportedEncoding,
            "not valid UTF-8 (saved as ANSI?): keyroll will not read or change this file".into(),
        ));
    }
    // A zero byte is never XML: binary, or text in an encoding keyroll does not read
    // (UTF-32 or UTF-16 without its mark). Named as such, where it is, rather than as the
    // parser's "non-XML character".
    if let Some(at) = memchr::memchr(0, &file.bytes) {
        let (line, column) = crate::load::metadata::line_column(&file.bytes[..at]);
        return Err(problem(
            line,
            column,
            Code::Malformed,
            "holds a NUL byte (a binary file, or text saved as UTF-32 or UTF-16 without a byte-order mark): keyroll will not read or change this file".into(),
        ));
    }
    Ok(())
}

struct Ctx<'a, 'input> {
    doc: &'a roxmltree::Document<'input>,
    lines: crate::load::metadata::LineIndex<'input>,
    bom: usize,
    path: &'a Path,
    known: &'a KnownCertificates,
}

impl Ctx<'_, '_> {
    fn pos(&self, offset: usize) -> (u32, u32) {
        self.lines.position(offset)
    }

    fn span(&self, node: roxmltree::Node<'_, '_>) -> ElementSpan {
        let range = node.range();
        let text = self.doc.input_text();
        // roxmltree parsed the element, so its start tag closes inside its range; the
        // fallback (the element's last byte) is never reached.
        let gt = start_tag_end(text, range.start).unwrap_or(range.end.saturating_sub(1));
        let self_closing = text[..gt].ends_with('/');
        let indent = line_indent(text, range.start);
        // One level: how this element's first child is indented relative to it, else how
        // it is indented relative to its parent, else a guess from its own indentation.
        let from_child = node
            .children()
            .find(|c| c.is_element())
            .map(|c| line_indent(text, c.range().start))
            .and_then(|child| child.strip_prefix(indent.as_str()).map(str::to_string))
            .filter(|unit| !unit.is_empty());
        let from_parent = || {
            node.parent_element()
                .map(|p| line_indent(text, p.range().start))
                .and_then(|parent| indent.strip_prefix(parent.as_str()).map(str::to_string))
                .filter(|unit| !unit.is_empty())
        };
        let child_unit = from_child.or_else(from_parent).unwrap_or_else(|| {
            if indent.contains('\t') {
                "\t".to_string()
            } else {
                "  ".to_string()
            }
        });
        ElementSpan {
            range: range.start + self.bom..range.end + self.bom,
            start_tag_end: gt + 1 + self.bom,
            self_closing,
            indent,
            child_unit,
        }
    }
}

/// The offset of the `>` that ends the start tag beginning at `start`: the first one outside
/// a quoted attribute value. Namespace declarations are not among roxmltree's attributes and
/// their values may hold `>` too, so the tag is read as text from its `<`.
pub(super) fn start_tag_end(text: &str, start: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in text.as_bytes().iter().enumerate().skip(start) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

/// How many namespace declarations (`xmlns`, `xmlns:p`) the start tag `head` (from its `<`
/// to before its `>`) carries: the names outside quoted values.
pub(super) fn namespace_declarations(head: &str) -> usize {
    let mut unquoted = String::with_capacity(head.len());
    let mut quote: Option<char> = None;
    for c in head.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => {
                quote = None;
                // Keeps the names on either side of a value apart.
                unquoted.push(' ');
            }
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, _) => unquoted.push(c),
        }
    }
    unquoted
        .split(|c: char| c.is_whitespace() || c == '=')
        .filter(|name| *name == "xmlns" || name.starts_with("xmlns:"))
        .count()
}

/// The whitespace before `offset` on its line, or nothing if other text precedes it there.
pub fn line_indent(text: &str, offset: usize) -> String {
    let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    let before = &text[line_start..offset];
    if before.chars().all(|c| c == ' ' || c == '\t') {
        before.to_string()
    } else {
        String::new()
    }
}

/// Elements whose ancestry ends with `segments` (so a `<location>` wrapper or a configSource
/// fragment root both match).
fn matching_elements<'a, 'input>(
    doc: &'a roxmltree::Document<'input>,
    segments: &[String],
) -> Vec<roxmltree::Node<'a, 'input>> {
    let last = segments.last().expect("non-empty path");
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == last)
        .filter(|n| {
            let mut node = Some(*n);
            for segment in segments.iter().rev() {
                match node {
                    Some(el) if el.is_element() && el.tag_name().name() == segment => {
                        node = el.parent_element();
                    }
                    _ => return false,
                }
            }
            true
        })
        .collect()
}

fn collect_registries(
    ctx: &Ctx<'_, '_>,
    rule: &Arc<Rule>,
    segments: &[String],
    file: &mut ConfigFile,
) {
    let containers = matching_elements(ctx.doc, segments);
    for container in &containers {
        add_registry(ctx, rule, Some(*container), None, file);
    }
    // A configuration-based registry with no container yet: creatable where the rule says.
    if let Some(create) = &rule.spec.create
        && segments.last() == Some(&create.element)
    {
        let parent_path = &segments[..segments.len() - 1];
        if parent_path.last() != Some(&create.parent) {
            return;
        }
        for parent in matching_elements(ctx.doc, parent_path) {
            let has_container = parent
                .children()
                .any(|c| c.is_element() && c.tag_name().name() == create.element);
            // No `type=` is the default type, which `parent_type_contains` names (as
            // wif.rs's `registry` reads it).
            let type_ok = create
                .parent_type_contains
                .as_deref()
                .is_none_or(|needle| parent.attribute("type").is_none_or(|t| t.contains(needle)));
            if !has_container && type_ok {
                add_registry(ctx, rule, None, Some(parent), file);
            }
        }
    }
}

fn add_registry(
    ctx: &Ctx<'_, '_>,
    rule: &Arc<Rule>,
    container: Option<roxmltree::Node<'_, '_>>,
    create_under: Option<roxmltree::Node<'_, '_>>,
    file: &mut ConfigFile,
) {
    let anchor = container.or(create_under).expect("one of the two");
    let (scope, issuer_name, valid_issuers) = registry_scope(rule, anchor);
    let transform = anchor.ancestors().find_map(|a| {
        a.attribute((XDT_NS, "Transform"))
            .map(|t| format!("xdt:Transform=\"{t}\" on <{}>", a.tag_name().name()))
    });
    let replaced = anchor.ancestors().any(|a| {
        a.attribute((XDT_NS, "Transform"))
            .is_some_and(|t| t.trim() == "Replace")
    });
    let index = file.registries.len();
    let (line, _) = ctx.pos(anchor.range().start);
    file.registries.push(Registry {
        index,
        rule: rule.clone(),
        scope,
        issuer_name,
        valid_issuers,
        container: container.map(|c| ctx.span(c)),
        create_under: create_under.map(|c| ctx.span(c)),
        transform,
        replaced,
        line,
        last_child: container
            .and_then(|c| c.children().rev().find(|n| n.is_element()))
            .map(|n| n.range().start + ctx.bom..n.range().end + ctx.bom),
    });
    if let Some(container) = container {
        let first_entry = file.entries.len();
        read_entries(ctx, rule, container, index, file);
        if file.is_transform && !super::wif::in_wif_section(container) {
            registry_transforms(ctx, container, first_entry, file);
        }
    }
}

/// In a config transform, a registry outside the WIF sections (appSettings, a rules file's
/// own): only a `Replace` of the container or an ancestor is computed (the replacement is
/// what the build configuration holds, edited like the base). Any other transform of it
/// or of an entry holding a thumbprint (`SetAttributes` with a `Match(key)` locator, the
/// usual per-environment appSetting) would put back at publish time what keyroll changed
/// in the base: reported in the words WIF sections get (`wif.rs` `transforms`), so the
/// plan fails for this file and says why. WIF sections are judged there, not here.
fn registry_transforms(
    ctx: &Ctx<'_, '_>,
    container: roxmltree::Node<'_, '_>,
    first_entry: usize,
    file: &mut ConfigFile,
) {
    let holds_key = |node: roxmltree::Node<'_, '_>| {
        let element = node.range().start + ctx.bom..node.range().end + ctx.bom;
        file.entries[first_entry..]
            .iter()
            .any(|e| e.element == element && !e.placeholder)
    };
    let keyed: Vec<roxmltree::Node<'_, '_>> = container
        .children()
        .filter(|c| c.is_element() && holds_key(*c))
        .collect();
    if keyed.is_empty() {
        return;
    }
    fn transform_of<'a>(node: roxmltree::Node<'a, '_>) -> Option<&'a str> {
        node.attribute((XDT_NS, "Transform")).map(str::trim)
    }
    let mut refused: Vec<roxmltree::Node<'_, '_>> = Vec::new();
    // The container and what is around it: a Replace there puts the whole set in place.
    for around in container.ancestors().filter(|a| a.is_element()) {
        if transform_of(around).is_some_and(|t| t != "Replace") {
            refused.push(around);
        }
    }
    refused.reverse();
    // An entry's own transform (even a Replace, located by key) changes one setting.
    refused.extend(keyed.into_iter().filter(|e| transform_of(*e).is_some()));
    for node in refused {
        let (line, column) = ctx.pos(node.range().start);
        let message = super::wif::uninterpreted_transform(
            node,
            transform_of(node),
            node.attribute((XDT_NS, "Locator")).map(str::trim),
        );
        if !file
            .problems
            .iter()
            .any(|p| p.line == line && p.column == column)
        {
            file.problems.push(file_problem(
                ctx.path,
                line,
                column,
                Code::UninterpretedTransform,
                message,
            ));
        }
    }
}

/// The scope a registry sits in, as its rule names it (the scope element's attribute), the
/// issuer name when that attribute names the issuer, and the scope's valid issuer names.
fn registry_scope(
    rule: &Rule,
    anchor: roxmltree::Node<'_, '_>,
) -> (Option<String>, Option<String>, Vec<String>) {
    let scope_node = rule.spec.scope.as_ref().and_then(|scope| {
        anchor
            .ancestors()
            .find(|a| a.is_element() && a.tag_name().name() == scope.element)
    });
    let scope = rule.spec.scope.as_ref().and_then(|s| {
        scope_node
            .and_then(|n| n.attribute(s.attribute.as_str()))
            .map(str::to_string)
    });
    let issuer_name = match &rule.spec.scope {
        Some(s) if s.issuer_name => scope.clone(),
        _ => None,
    };
    let valid_issuers = match (&rule.spec.scope, scope_node) {
        (Some(spec), Some(node)) => spec
            .valid_issuers
            .as_deref()
            .map(|p| {
                let segments: Vec<String> = p.split('/').map(str::to_string).collect();
                node.descendants()
                    .filter(|d| is_path_below(*d, node, &segments))
                    .filter_map(|d| d.attribute("name").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    (scope, issuer_name, valid_issuers)
}

/// Reads the entries of registry `index` (its `container`) in document order: additions,
/// removals and clears, each withdrawing the earlier additions it names.
fn read_entries(
    ctx: &Ctx<'_, '_>,
    rule: &Arc<Rule>,
    container: roxmltree::Node<'_, '_>,
    index: usize,
    file: &mut ConfigFile,
) {
    let registry = &file.registries[index];
    let (scope, issuer_name) = (registry.scope.clone(), registry.issuer_name.clone());
    let transform = registry.transform.clone();
    let first_entry = file.entries.len();
    let spec = &rule.spec.entry;
    // Keys added so far and not withdrawn since, as WIF tracks them while it reads: a
    // second equal `<add>` fails the load right there, before any later `<remove>`.
    let mut live: BTreeMap<String, u32> = BTreeMap::new();
    for child in container.children().filter(|c| c.is_element()) {
        let tag = child.tag_name().name();
        if tag == spec.element {
            if let Some(key_attr) = &spec.key {
                match child.attribute(key_attr.as_str()) {
                    Some(key) if rule.key_matches(key) => {}
                    _ => continue,
                }
            }
            if let Some(entry) = read_entry(ctx, rule, child, index, EntryKind::Add, &scope) {
                let mut entry = entry;
                if entry.issuer_name.is_none() {
                    entry.issuer_name = issuer_name.clone();
                }
                if !entry.placeholder && spec.key.is_none() {
                    match live.get(&entry.wif_key()) {
                        Some(line) => {
                            entry.duplicate_of = Some(*line);
                            entry.findings.push(Finding::new(
                                Code::Duplicate,
                                Severity::Error,
                                format!(
                                    "duplicate of line {line}: WIF refuses to load a registry with duplicate keys"
                                ),
                            ));
                        }
                        None => {
                            live.insert(entry.wif_key(), entry.line);
                        }
                    }
                }
                if let Some(t) = &transform {
                    entry.findings.push(Finding::new(
                        Code::Transform,
                        Severity::Note,
                        format!(
                            "in a config transform ({t}): applied to the base file at publish time"
                        ),
                    ));
                }
                file.entries.push(entry);
            }
        } else if Some(tag) == spec.remove.as_deref() {
            if let Some(entry) = read_entry(ctx, rule, child, index, EntryKind::Remove, &scope) {
                let removed = entry.wif_key();
                live.remove(&removed);
                let (line, _) = ctx.pos(child.range().start);
                let withdrawn = format!("withdrawn by <{tag}> at line {line}");
                withdraw(&mut file.entries[first_entry..], Some(&removed), &withdrawn);
                file.entries.push(entry);
            }
        } else if Some(tag) == spec.clear.as_deref() {
            live.clear();
            let (line, _) = ctx.pos(child.range().start);
            let withdrawn = format!("withdrawn by <{tag}/> at line {line}");
            withdraw(&mut file.entries[first_entry..], None, &withdrawn);
        }
    }
}

/// Marks the earlier additions still in effect (those with WIF key `key`, or all of them) as
/// withdrawn, with a note saying by what.
fn withdraw(earlier: &mut [TrustedEntry], key: Option<&str>, withdrawn_by: &str) {
    for entry in earlier {
        if entry.kind == EntryKind::Add
            && entry.effective
            && key.is_none_or(|key| entry.wif_key() == key)
        {
            entry.effective = false;
            entry.findings.push(Finding::new(
                Code::Withdrawn,
                Severity::Note,
                withdrawn_by.to_string(),
            ));
        }
    }
}

fn is_path_below(
    node: roxmltree::Node<'_, '_>,
    top: roxmltree::Node<'_, '_>,
    segments: &[String],
) -> bool {
    let mut current = Some(node);
    for segment in segments.iter().rev() {
        match current {
            Some(n) if n.is_element() && n.tag_name().name() == segment => {
                current = n.parent_element()
            }
            _ => return false,
        }
    }
    current == Some(top)
}

fn read_entry(
    ctx: &Ctx<'_, '_>,
    rule: &Arc<Rule>,
    node: roxmltree::Node<'_, '_>,
    registry: usize,
    kind: EntryKind,
    scope: &Option<String>,
) -> Option<TrustedEntry> {
    let spec = &rule.spec.entry;
    let attr = node
        .attributes()
        .find(|a| a.name() == spec.thumbprint && a.namespace().is_none())?;
    let text = ctx.doc.input_text();
    let value_range = attr.range_value();
    let raw = text[value_range.clone()].to_string();
    let quote = text[..value_range.start].chars().last().unwrap_or('"');
    let (line, column) = ctx.pos(attr.range().start);
    // As WIF reads it: no attribute-value normalization (a literal TAB stays a TAB).
    let decoded = super::wif::decode_attribute(&raw);
    let name_node = spec.name.as_deref().and_then(|n| {
        node.attributes()
            .find(|a| a.name() == n && a.namespace().is_none())
    });
    let name = name_node.as_ref().map(|a| a.value().to_string());
    let name_attr = name_node.map(|a| {
        let (full, value) = (a.range(), a.range_value());
        (
            full.start + ctx.bom..full.end + ctx.bom,
            value.start + ctx.bom..value.end + ctx.bom,
        )
    });
    let key = spec
        .key
        .as_deref()
        .and_then(|k| node.attribute(k))
        .map(str::to_string);
    let mut entry = TrustedEntry {
        file: ctx.path.to_path_buf(),
        registry,
        dialect: rule.name().to_string(),
        kind,
        line,
        column,
        element: node.range().start + ctx.bom..node.range().end + ctx.bom,
        value: value_range.start + ctx.bom..value_range.end + ctx.bom,
        value_quote: quote,
        name_attr,
        scope: scope.clone(),
        issuer_name: name,
        key,
        raw,
        decoded,
        normalized: None,
        placeholder: false,
        duplicate_of: None,
        effective: kind == EntryKind::Add,
        findings: Vec::new(),
    };
    assess_value(&mut entry, ctx.known);
    Some(entry)
}

/// Deploy-tool placeholders: `#{Name}`, `{Name}`, `$(Name)`, `${Name}`, `__Name__`.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.contains("#{")
        || v.contains("$(")
        || v.contains("${")
        || (v.starts_with('{') && v.ends_with('}'))
        || (v.len() > 4 && v.starts_with("__") && v.ends_with("__"))
}

fn assess_value(entry: &mut TrustedEntry, known: &KnownCertificates) {
    if is_placeholder(&entry.decoded) {
        entry.placeholder = true;
        entry.findings.push(Finding::new(
            Code::Placeholder,
            Severity::Note,
            format!(
                "placeholder {}: filled in at deploy time; never edited",
                entry.raw
            ),
        ));
        return;
    }
    let report = thumbprint::check(&entry.decoded);
    let breaking: Vec<String> = report.breaking_removals().map(|n| n.to_string()).collect();
    if !breaking.is_empty() {
        entry.findings.push(Finding::new(
            Code::Dirty,
            Severity::Error,
            format!(
                "contains {}: WIF removes only ASCII spaces, so this entry never matches",
                breaking.join(", ")
            ),
        ));
    }
    match &report.result {
        Ok(t) if report.notation == thumbprint::Notation::Hex => {
            entry.normalized = Some(*t);
            if report.removed.iter().any(|n| n.is_ascii_space()) {
                entry.findings.push(Finding::new(
                    Code::Spaced,
                    Severity::Note,
                    "contains spaces (style only: WIF removes ASCII spaces)",
                ));
            }
            if report.lowercase {
                entry.findings.push(Finding::new(
                    Code::Lowercase,
                    Severity::Note,
                    "lowercase hex (style only: WIF compares case-insensitively)",
                ));
            }
            if let (Some(cert), Some(now)) = (known.by_thumbprint.get(t), known.now) {
                match cert.validity_at(now, known.warn_days) {
                    Validity::Expired => entry.findings.push(Finding::new(
                        Code::Expired,
                        Severity::Warning,
                        format!(
                            "certificate {} expired on {}",
                            cert.subject,
                            rfc3339(cert.not_after)
                        ),
                    )),
                    Validity::Expiring => entry.findings.push(Finding::new(
                        Code::Expiring,
                        Severity::Warning,
                        format!(
                            "certificate {} expires on {}",
                            cert.subject,
                            rfc3339(cert.not_after)
                        ),
                    )),
                    _ => {}
                }
            }
        }
        Ok(_) => entry.findings.push(Finding::new(
            Code::BadLength,
            Severity::Error,
            "a JWKS x5t, not the 40-hex-digit thumbprint WIF expects",
        )),
        Err(thumbprint::CheckError::BadLength(n)) => entry.findings.push(Finding::new(
            Code::BadLength,
            Severity::Error,
            format!("{n} hex digits; a SHA-1 thumbprint has 40"),
        )),
        Err(e) => entry.findings.push(Finding::new(
            Code::BadLength,
            Severity::Error,
            format!("not a thumbprint: {e}"),
        )),
    }
}

/// `configSource` references on the sections the rules read, as written: the loader
/// resolves them (on disk, or in a git tree) the way the app's host does.
fn record_config_sources(ctx: &Ctx<'_, '_>, rules: &RuleSet, file: &mut ConfigFile) {
    let sections: BTreeSet<&str> = rules.rules.iter().flat_map(|r| r.sections()).collect();
    for node in ctx.doc.descendants().filter(|n| n.is_element()) {
        if !sections.contains(node.tag_name().name()) {
            continue;
        }
        let Some(reference) = node.attribute("configSource") else {
            continue;
        };
        let (line, column) = ctx.pos(node.range().start);
        file.config_source_refs.push(ConfigSourceRef {
            reference: reference.to_string(),
            line,
            column,
        });
    }
}

impl ConfigFile {
    /// A reference that could not be followed, as a problem of this file.
    pub fn config_source_problem(&mut self, at: &ConfigSourceRef, error: &PathError) {
        self.problems.push(FileProblem {
            file: self.path.clone(),
            line: at.line,
            column: at.column,
            finding: Finding::new(error.code(), Severity::Error, error.to_string()),
        });
    }
}
