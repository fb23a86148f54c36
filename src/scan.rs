//! Finding every trusted thumbprint in config files, with exact byte spans and findings.
//!
//! Byte offsets are into the file's bytes as stored (a UTF-8 BOM included), so the patcher
//! can splice the original buffer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, Validity, rfc3339};
use crate::metadata::{xml_error_detail, xml_error_position, xml_options};
use crate::paths::PathError;
use crate::rules::{Rule, RuleSet};
use crate::thumbprint::{self, Thumbprint};

pub const XDT_NS: &str = "http://schemas.microsoft.com/XML-Document-Transform";
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding is about. The kebab-case name is the stable id in JSON, SARIF and
/// annotations; decisions match on the variant, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    Dirty,
    BadLength,
    Duplicate,
    Lowercase,
    Spaced,
    Placeholder,
    Expired,
    Expiring,
    Withdrawn,
    Transform,
    Malformed,
    UnsupportedEncoding,
    ConfigSourceMissing,
    ConfigSourceOutside,
    ConfigSourceAmbiguous,
}

impl Code {
    pub const ALL: [Code; 15] = [
        Code::Dirty,
        Code::BadLength,
        Code::Duplicate,
        Code::Lowercase,
        Code::Spaced,
        Code::Placeholder,
        Code::Expired,
        Code::Expiring,
        Code::Withdrawn,
        Code::Transform,
        Code::Malformed,
        Code::UnsupportedEncoding,
        Code::ConfigSourceMissing,
        Code::ConfigSourceOutside,
        Code::ConfigSourceAmbiguous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Dirty => "dirty",
            Code::BadLength => "bad-length",
            Code::Duplicate => "duplicate",
            Code::Lowercase => "lowercase",
            Code::Spaced => "spaced",
            Code::Placeholder => "placeholder",
            Code::Expired => "expired",
            Code::Expiring => "expiring",
            Code::Withdrawn => "withdrawn",
            Code::Transform => "transform",
            Code::Malformed => "malformed",
            Code::UnsupportedEncoding => "unsupported-encoding",
            Code::ConfigSourceMissing => "config-source-missing",
            Code::ConfigSourceOutside => "config-source-outside",
            Code::ConfigSourceAmbiguous => "config-source-ambiguous",
        }
    }

    /// One line for SARIF rule metadata and `--help`.
    pub fn description(self) -> &'static str {
        match self {
            Code::Dirty => {
                "Characters WIF does not remove (anything but U+0020): the entry never matches"
            }
            Code::BadLength => "Not a 40-hex-digit SHA-1 thumbprint",
            Code::Duplicate => {
                "Two entries equal after WIF's normalization: the configuration fails to load"
            }
            Code::Lowercase => "Lowercase hex (style only)",
            Code::Spaced => "Spaces between byte pairs (style only: WIF removes U+0020)",
            Code::Placeholder => "A deploy-time placeholder; never edited",
            Code::Expired => "The trusted certificate has expired",
            Code::Expiring => "The trusted certificate expires soon",
            Code::Withdrawn => "An entry withdrawn by a later <remove> or <clear/>",
            Code::Transform => "An entry inside a config transform file",
            Code::Malformed => "The file is not well-formed XML",
            Code::UnsupportedEncoding => "The file is not UTF-8",
            Code::ConfigSourceMissing => {
                "A configSource reference names a file that does not exist"
            }
            Code::ConfigSourceOutside => "A configSource reference leaves the repository",
            Code::ConfigSourceAmbiguous => {
                "A configSource reference matches several files that differ only in case"
            }
        }
    }

    /// The entry's value is not what WIF will compare with a certificate's thumbprint
    /// unless rewritten (dirty), or is only untidy (spaced).
    pub fn is_unclean(self) -> bool {
        matches!(self, Code::Dirty | Code::Spaced)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    fn new(code: Code, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Trusts a thumbprint.
    Add,
    /// `<remove thumbprint=…>`: withdraws an earlier entry.
    Remove,
}

/// One element that holds entries (a `trustedIssuers`, an authority's `keys`, `appSettings`).
#[derive(Debug, Clone)]
pub struct Registry {
    pub index: usize,
    pub rule: Arc<Rule>,
    /// `identityConfiguration/@name`, `service/@name`, `authority/@name`.
    pub scope: Option<String>,
    /// Issuer name implied by the scope (VINR authority name).
    pub issuer_name: Option<String>,
    pub valid_issuers: Vec<String>,
    /// The container element; `None` when it is missing but the rule says how to create it.
    pub container: Option<ElementSpan>,
    /// Where to create the container when it is missing.
    pub create_under: Option<ElementSpan>,
    pub transform: Option<String>,
    pub line: u32,
    /// The container's last child element (any kind: `<add>`, `<remove>`, `<clear/>`): new
    /// entries go after it, so WIF applies them after every earlier `<clear/>`/`<remove>`.
    pub last_child: Option<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementSpan {
    /// The whole element, start tag to end tag.
    pub range: Range<usize>,
    /// Just past the `>` of the start tag.
    pub start_tag_end: usize,
    pub self_closing: bool,
    /// Leading whitespace of the element's line, when the element starts the line.
    pub indent: String,
    /// One level of indentation below this element, as the file writes it.
    pub child_unit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrustedEntry {
    pub file: PathBuf,
    #[serde(skip)]
    pub registry: usize,
    pub dialect: String,
    pub kind: EntryKind,
    pub line: u32,
    pub column: u32,
    /// The whole `<add …/>` element.
    #[serde(skip)]
    pub element: Range<usize>,
    /// The attribute value as stored (between the quotes).
    #[serde(skip)]
    pub value: Range<usize>,
    #[serde(skip)]
    pub value_quote: char,
    /// The whole `name="…"` attribute and its value, when the entry has one.
    #[serde(skip)]
    pub name_attr: Option<(Range<usize>, Range<usize>)>,
    pub scope: Option<String>,
    pub issuer_name: Option<String>,
    pub key: Option<String>,
    /// The value as written in the file.
    pub raw: String,
    /// The value after XML decoding: what WIF compares.
    #[serde(skip)]
    pub decoded: String,
    pub normalized: Option<Thumbprint>,
    pub placeholder: bool,
    /// Line of the earlier entry this one duplicates (WIF refuses to load the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
    /// Still trusted after the `<remove>`/`<clear>` elements that follow it.
    pub effective: bool,
    pub findings: Vec<Finding>,
}

impl TrustedEntry {
    /// What WIF compares: ASCII spaces removed, case folded.
    pub fn wif_key(&self) -> String {
        self.decoded.replace(' ', "").to_ascii_uppercase()
    }

    pub fn has_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// A problem tied to a file position rather than an entry (malformed XML, bad configSource).
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    #[serde(flatten)]
    pub finding: Finding,
}

/// `configSource="…"` as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSourceRef {
    pub reference: String,
    pub line: u32,
    pub column: u32,
}

/// One config file as read: its bytes, its registries and entries.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub registries: Vec<Registry>,
    pub entries: Vec<TrustedEntry>,
    /// `configSource` references as written.
    pub config_source_refs: Vec<ConfigSourceRef>,
    /// Files this one delegates a section to (`configSource`), once resolved by the loader.
    pub config_sources: Vec<PathBuf>,
    pub problems: Vec<FileProblem>,
    pub is_transform: bool,
}

impl ConfigFile {
    pub fn bom_len(&self) -> usize {
        if self.bytes.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        }
    }

    /// The file's text, BOM included (offsets in spans refer to this).
    pub fn text(&self) -> &str {
        // Checked in `parse_config`.
        std::str::from_utf8(&self.bytes).expect("config checked as UTF-8")
    }

    pub fn entries_of(&self, registry: usize) -> impl Iterator<Item = &TrustedEntry> {
        self.entries.iter().filter(move |e| e.registry == registry)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {detail}")]
    Unreadable { path: String, detail: String },
}

/// Certificates the caller knows (from metadata or the lock file), for expiry findings.
#[derive(Debug, Default, Clone)]
pub struct KnownCertificates {
    pub by_thumbprint: HashMap<Thumbprint, Arc<Certificate>>,
    pub now: Option<OffsetDateTime>,
    pub warn_days: i64,
}

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
    };
    let problem = |line, column, code, message: String| FileProblem {
        file: path.to_path_buf(),
        line,
        column,
        finding: Finding::new(code, Severity::Error, message),
    };
    if file.bytes.starts_with(b"\xFF\xFE") || file.bytes.starts_with(b"\xFE\xFF") {
        file.problems.push(problem(
            1,
            1,
            Code::UnsupportedEncoding,
            "UTF-16 file: keyroll reads and writes UTF-8 only; nothing here is checked or changed"
                .into(),
        ));
        return file;
    }
    if let Err(e) = std::str::from_utf8(&file.bytes) {
        let (line, column) = crate::metadata::line_column(&file.bytes[..e.valid_up_to()]);
        file.problems.push(problem(
            line,
            column,
            Code::UnsupportedEncoding,
            "not valid UTF-8 (saved as ANSI?): keyroll will not read or change this file".into(),
        ));
        file.bytes.truncate(e.valid_up_to());
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
            file.problems
                .push(problem(line, column, Code::Malformed, xml_error_detail(&e)));
            drop(e);
            file.bytes = bytes;
            return file;
        }
    };
    file.is_transform = doc.root_element().namespaces().any(|ns| ns.uri() == XDT_NS);
    let lines = crate::metadata::LineIndex::new(doc.input_text());
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
    drop(doc);
    file.bytes = bytes;
    file
}

struct Ctx<'a, 'input> {
    doc: &'a roxmltree::Document<'input>,
    lines: crate::metadata::LineIndex<'input>,
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
        // The start tag ends at the first '>' after its last attribute (values may hold '>').
        let after_attrs = node
            .attributes()
            .map(|a| a.range().end)
            .max()
            .unwrap_or(range.start);
        let gt = after_attrs + text[after_attrs..].find('>').expect("start tag closes");
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
            let type_ok = create
                .parent_type_contains
                .as_deref()
                .is_none_or(|needle| parent.attribute("type").unwrap_or("").contains(needle));
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
    let transform = anchor.ancestors().find_map(|a| {
        a.attribute((XDT_NS, "Transform"))
            .map(|t| format!("xdt:Transform=\"{t}\" on <{}>", a.tag_name().name()))
    });
    let index = file.registries.len();
    let (line, _) = ctx.pos(anchor.range().start);
    file.registries.push(Registry {
        index,
        rule: rule.clone(),
        scope: scope.clone(),
        issuer_name: issuer_name.clone(),
        valid_issuers,
        container: container.map(|c| ctx.span(c)),
        create_under: create_under.map(|c| ctx.span(c)),
        transform: transform.clone(),
        line,
        last_child: container
            .and_then(|c| c.children().filter(|n| n.is_element()).last())
            .map(|n| n.range().start + ctx.bom..n.range().end + ctx.bom),
    });
    let Some(container) = container else {
        return;
    };
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
                for earlier in &mut file.entries[first_entry..] {
                    if earlier.kind == EntryKind::Add
                        && earlier.effective
                        && earlier.wif_key() == removed
                    {
                        earlier.effective = false;
                        earlier.findings.push(Finding::new(
                            Code::Withdrawn,
                            Severity::Note,
                            format!("withdrawn by <{tag}> at line {line}"),
                        ));
                    }
                }
                file.entries.push(entry);
            }
        } else if Some(tag) == spec.clear.as_deref() {
            live.clear();
            let (line, _) = ctx.pos(child.range().start);
            for earlier in &mut file.entries[first_entry..] {
                if earlier.kind == EntryKind::Add && earlier.effective {
                    earlier.effective = false;
                    earlier.findings.push(Finding::new(
                        Code::Withdrawn,
                        Severity::Note,
                        format!("withdrawn by <{tag}/> at line {line}"),
                    ));
                }
            }
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
    let decoded = attr.value().to_string();
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

/// Follows a file's `configSource` references on disk, under the nearest repository root.
fn resolve_config_sources_on_disk(file: &mut ConfigFile) {
    let root = repository_root(&file.path);
    let absolute = std::fs::canonicalize(&file.path).unwrap_or_else(|_| file.path.clone());
    let dir = absolute
        .parent()
        .and_then(|d| d.strip_prefix(&root).ok())
        .map(|d| d.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    let file_dir = file.path.parent().unwrap_or(Path::new("")).to_path_buf();
    for at in std::mem::take(&mut file.config_source_refs) {
        let resolved = crate::paths::join_relative(&dir, &at.reference)
            .and_then(|rel| crate::paths::resolve_on_disk(&root, &rel, &at.reference))
            .and_then(|found| {
                // A link inside the repository that points out of it leaves it too.
                match std::fs::canonicalize(&found) {
                    Ok(real) if real.starts_with(&root) => Ok(found),
                    _ => Err(PathError::Outside {
                        reference: at.reference.clone(),
                    }),
                }
            });
        match resolved {
            // Shown relative to the referring file's folder as the user named it.
            Ok(found) => file.config_sources.push(
                found
                    .strip_prefix(&root)
                    .ok()
                    .and_then(|rel| {
                        let from = absolute.parent()?.strip_prefix(&root).ok()?;
                        let ups = from.components().count();
                        let mut p = file_dir.clone();
                        for _ in 0..ups {
                            if !p.pop() {
                                return None;
                            }
                        }
                        Some(p.join(rel))
                    })
                    .unwrap_or(found),
            ),
            Err(e) => file.config_source_problem(&at, &e),
        }
        file.config_source_refs.push(at);
    }
}

/// The nearest ancestor with a `.git`, else the file's own folder.
pub fn repository_root(file: &Path) -> PathBuf {
    let absolute = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let start = absolute.parent().unwrap_or(Path::new("/"));
    start
        .ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or(start)
        .to_path_buf()
}

/// Everything a scan found, files in path order.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub files: Vec<ConfigFile>,
}

impl ScanResult {
    pub fn entries(&self) -> impl Iterator<Item = &TrustedEntry> {
        self.files.iter().flat_map(|f| f.entries.iter())
    }

    pub fn problems(&self) -> impl Iterator<Item = &FileProblem> {
        self.files.iter().flat_map(|f| f.problems.iter())
    }

    pub fn worst(&self) -> Option<Severity> {
        let entries = self
            .entries()
            .flat_map(|e| e.findings.iter().map(|f| f.severity));
        let problems = self.problems().map(|p| p.finding.severity);
        entries.chain(problems).max()
    }
}

/// Directories that hold build output, never sources.
const SKIPPED_DIRS: &[&str] = &["bin", "obj"];

/// Walks the paths the way ripgrep does (`.gitignore`, hidden files, `bin/` and `obj/`
/// skipped), reads every file a rule applies to, and follows `configSource` references.
/// A path named explicitly is read even if no rule's file pattern matches it.
pub fn scan_paths(
    paths: &[PathBuf],
    rules: &RuleSet,
    known: &KnownCertificates,
) -> Result<ScanResult, ScanError> {
    let needles = prefilter_needles(rules);
    let mut queue: Vec<PathBuf> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| ScanError::Unreadable {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        if meta.is_file() {
            queue.push(path.clone());
            continue;
        }
        let walker = ignore::WalkBuilder::new(path)
            .require_git(false)
            .filter_entry(|entry| {
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                !(is_dir
                    && SKIPPED_DIRS
                        .iter()
                        .any(|d| entry.file_name().eq_ignore_ascii_case(d)))
            })
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| ScanError::Unreadable {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            if entry.file_type().is_some_and(|t| t.is_file())
                && rules.applies_to_file(&entry.file_name().to_string_lossy())
            {
                queue.push(entry.into_path());
            }
        }
    }

    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut result = ScanResult::default();
    while let Some(path) = queue.pop() {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.insert(canonical) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| ScanError::Unreadable {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        // UTF-16 holds zero bytes but is text: it reaches the parser, which reports it.
        let relevant = match utf16_text(&bytes) {
            Some(text) => needles.is_match(text.as_bytes()),
            None => !is_binary(&bytes) && needles.is_match(&bytes),
        };
        if !relevant {
            continue;
        }
        let display = clean_display_path(&path);
        let mut file = parse_config(&display, bytes, rules, known);
        resolve_config_sources_on_disk(&mut file);
        queue.extend(file.config_sources.iter().cloned());
        result.files.push(file);
    }
    result.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(result)
}

/// The text of a file with a UTF-16 byte-order mark (Visual Studio still writes some).
pub fn utf16_text(bytes: &[u8]) -> Option<String> {
    let little = bytes.starts_with(b"\xFF\xFE");
    if !little && !bytes.starts_with(b"\xFE\xFF") {
        return None;
    }
    let units: Vec<u16> = bytes[2..]
        .chunks_exact(2)
        .map(|p| {
            if little {
                u16::from_le_bytes([p[0], p[1]])
            } else {
                u16::from_be_bytes([p[0], p[1]])
            }
        })
        .collect();
    Some(String::from_utf16_lossy(&units))
}

fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

/// A cheap byte search before any XML parsing: a file that mentions no thumbprint attribute,
/// no configSource and no watched setting name cannot hold an entry.
fn prefilter_needles(rules: &RuleSet) -> aho_corasick::AhoCorasick {
    let mut needles: BTreeSet<String> = BTreeSet::from(["configsource".to_string()]);
    for rule in &rules.rules {
        let entry = &rule.spec.entry;
        if entry.key.is_none() {
            needles.insert(entry.thumbprint.to_ascii_lowercase());
        }
        for key in &entry.keys {
            if let Some(longest) = key
                .split(['*', '?', '[', ']'])
                .max_by_key(|part| part.len())
                .filter(|part| !part.is_empty())
            {
                needles.insert(longest.to_ascii_lowercase());
            }
        }
    }
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(needles)
        .expect("literal needles")
}

fn clean_display_path(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}
