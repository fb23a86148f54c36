//! Canonicalization (Canonical XML 1.0 and Exclusive XML Canonicalization 1.0) of one element
//! subtree, or of the whole document, minus one excluded subtree (the enveloped signature).

use roxmltree::{Node, NodeId};

use super::{C14N, C14N_WITH_COMMENTS, EXC_C14N, EXC_C14N_WITH_COMMENTS};

const NS_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// A canonicalization method with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct C14nMethod {
    pub(super) exclusive: bool,
    pub(super) with_comments: bool,
    /// Exclusive only: `InclusiveNamespaces/@PrefixList`, `#default` as "".
    pub(super) inclusive_prefixes: Vec<String>,
}

impl C14nMethod {
    pub(super) fn from_uri(uri: &str) -> Option<Self> {
        let (exclusive, with_comments) = match uri {
            C14N => (false, false),
            C14N_WITH_COMMENTS => (false, true),
            EXC_C14N => (true, false),
            EXC_C14N_WITH_COMMENTS => (true, true),
            _ => return None,
        };
        Some(C14nMethod {
            exclusive,
            with_comments,
            inclusive_prefixes: Vec::new(),
        })
    }

    /// Reads the method from an element carrying `Algorithm` (and, for exclusive
    /// canonicalization, an optional `InclusiveNamespaces` child).
    pub(super) fn from_element(element: Node<'_, '_>, uri: &str) -> Option<Self> {
        let mut method = C14nMethod::from_uri(uri)?;
        if method.exclusive
            && let Some(list) = element
                .children()
                .find(|n| {
                    n.is_element()
                        && n.tag_name().name() == "InclusiveNamespaces"
                        && n.tag_name().namespace() == Some(NS_EXC_C14N)
                })
                .and_then(|n| n.attribute("PrefixList"))
        {
            method.inclusive_prefixes = list
                .split_ascii_whitespace()
                .map(|p| if p == "#default" { "" } else { p }.to_string())
                .collect();
        }
        Some(method)
    }
}

pub(super) trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// Hashes canonical output as it is produced, so a 60 MB aggregate is never held twice.
pub(super) struct DigestSink {
    context: ring::digest::Context,
    buffer: Vec<u8>,
}

impl DigestSink {
    const FLUSH_AT: usize = 64 * 1024;

    pub(super) fn new(algorithm: &'static ring::digest::Algorithm) -> Self {
        DigestSink {
            context: ring::digest::Context::new(algorithm),
            buffer: Vec::with_capacity(Self::FLUSH_AT * 2),
        }
    }

    /// Canonical bytes produced elsewhere (a piece canonicalized on another thread).
    pub(super) fn update(&mut self, canonical: &[u8]) {
        self.buffer.extend_from_slice(canonical);
        if self.buffer.len() >= Self::FLUSH_AT {
            self.context.update(&self.buffer);
            self.buffer.clear();
        }
    }

    pub(super) fn finish(mut self) -> ring::digest::Digest {
        self.context.update(&self.buffer);
        self.context.finish()
    }
}

impl Sink for DigestSink {
    fn put(&mut self, s: &str) {
        self.buffer.extend_from_slice(s.as_bytes());
        if self.buffer.len() >= Self::FLUSH_AT {
            self.context.update(&self.buffer);
            self.buffer.clear();
        }
    }
}

/// Writes `s` with the characters canonical XML escapes replaced.
fn escape(sink: &mut dyn Sink, s: &str, attribute: bool) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' if !attribute => "&gt;",
            b'"' if attribute => "&quot;",
            b'\t' if attribute => "&#x9;",
            b'\n' if attribute => "&#xA;",
            b'\r' => "&#xD;",
            _ => continue,
        };
        sink.put(&s[start..i]);
        sink.put(replacement);
        start = i + 1;
    }
    sink.put(&s[start..]);
}

/// The element's qualified name as written (`md:EntityDescriptor`), read from the source:
/// roxmltree keeps the namespace URI but not the prefix, and canonical XML keeps the prefix.
fn element_qname<'input>(node: Node<'_, 'input>) -> &'input str {
    let text = node.document().input_text();
    let start = node.range().start + 1;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(p, _)| p)
}

/// Canonicalizes `apex` (an element, or the document node for the whole document) without
/// the subtree `exclude`.
pub(super) fn canonicalize<'a, 'input: 'a>(
    apex: Node<'a, 'input>,
    exclude: Option<NodeId>,
    method: &C14nMethod,
    sink: &mut dyn Sink,
) {
    walk(apex, true, exclude, method, Vec::new(), sink);
}

/// Canonicalizes `element`, one child of a document read as a stream, whose output ancestors
/// rendered the namespace declarations `rendered` (prefix, URI; innermost last): the same
/// bytes the element gives inside the whole document. The element must have been parsed
/// with its ancestors' namespace declarations in scope.
pub(super) fn canonicalize_piece(
    element: Node<'_, '_>,
    method: &C14nMethod,
    rendered: &[(String, String)],
    sink: &mut dyn Sink,
) {
    let rendered = rendered
        .iter()
        .map(|(p, u)| (p.as_str(), u.as_str()))
        .collect();
    walk(element, false, None, method, rendered, sink);
}

/// The canonical start tag of a streamed document's element (the root, or a container of
/// other elements); the declarations it renders are added to `rendered`.
pub(super) fn canonical_start_tag(
    element: Node<'_, '_>,
    method: &C14nMethod,
    rendered: &mut Vec<(String, String)>,
    sink: &mut dyn Sink,
) {
    let mut refs: Vec<(&str, &str)> = rendered
        .iter()
        .map(|(p, u)| (p.as_str(), u.as_str()))
        .collect();
    let before = refs.len();
    start_tag(element, false, method, &mut refs, sink);
    let added: Vec<(String, String)> = refs[before..]
        .iter()
        .map(|(p, u)| (p.to_string(), u.to_string()))
        .collect();
    rendered.extend(added);
}

pub(super) fn canonical_end_tag(qname: &str, sink: &mut dyn Sink) {
    sink.put("</");
    sink.put(qname);
    sink.put(">");
}

/// Character data between a streamed document's elements, line ends already normalized.
pub(super) fn canonical_text(text: &str, sink: &mut dyn Sink) {
    escape(sink, text, false);
}

/// Depth-first output of `apex` and what it holds; `apex_inherits`: `apex` is the subtree
/// being canonicalized (inclusive canonicalization then carries inherited xml:* attributes).
fn walk<'a, 'input: 'a>(
    apex: Node<'a, 'input>,
    apex_inherits: bool,
    exclude: Option<NodeId>,
    method: &C14nMethod,
    rendered: Vec<(&'a str, &'a str)>,
    sink: &mut dyn Sink,
) {
    let mut writer = Writer {
        apex,
        apex_inherits,
        method,
        rendered,
        marks: Vec::new(),
        root_element_done: false,
    };
    let included = |mut node: Option<Node<'a, 'input>>| {
        while let Some(n) = node {
            if Some(n.id()) != exclude {
                return Some(n);
            }
            node = n.next_sibling();
        }
        None
    };
    // Depth-first without recursion: a deeply nested document cannot exhaust the stack.
    let mut current = apex;
    writer.open(current, sink);
    loop {
        if let Some(child) = included(current.first_child()) {
            current = child;
            writer.open(current, sink);
            continue;
        }
        loop {
            writer.close(current, sink);
            if current == apex {
                return;
            }
            if let Some(sibling) = included(current.next_sibling()) {
                current = sibling;
                writer.open(current, sink);
                break;
            }
            match current.parent() {
                Some(parent) => current = parent,
                None => return,
            }
        }
    }
}

struct Writer<'a, 'input, 'm> {
    apex: Node<'a, 'input>,
    apex_inherits: bool,
    method: &'m C14nMethod,
    /// Namespace declarations rendered by output ancestors: (prefix, URI), innermost last.
    rendered: Vec<(&'a str, &'a str)>,
    /// Length of `rendered` when each open element started.
    marks: Vec<usize>,
    root_element_done: bool,
}

impl<'a, 'input: 'a> Writer<'a, 'input, '_> {
    fn open(&mut self, node: Node<'a, 'input>, sink: &mut dyn Sink) {
        let top_level = node.parent().is_some_and(|p| p.is_root());
        match node.node_type() {
            roxmltree::NodeType::Root => {}
            roxmltree::NodeType::Element => {
                self.marks.push(self.rendered.len());
                start_tag(
                    node,
                    self.apex_inherits && node == self.apex,
                    self.method,
                    &mut self.rendered,
                    sink,
                );
            }
            roxmltree::NodeType::Text => {
                // Outside the document element there is no text in canonical form.
                if !top_level {
                    escape(sink, node.text().unwrap_or_default(), false);
                }
            }
            roxmltree::NodeType::Comment => {
                if self.method.with_comments {
                    top_level_break(top_level, self.root_element_done, true, sink);
                    sink.put("<!--");
                    sink.put(node.text().unwrap_or_default());
                    sink.put("-->");
                    top_level_break(top_level, self.root_element_done, false, sink);
                }
            }
            roxmltree::NodeType::PI => {
                if let Some(pi) = node.pi() {
                    top_level_break(top_level, self.root_element_done, true, sink);
                    sink.put("<?");
                    sink.put(pi.target);
                    if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
                        sink.put(" ");
                        sink.put(value);
                    }
                    sink.put("?>");
                    top_level_break(top_level, self.root_element_done, false, sink);
                }
            }
        }
    }

    fn close(&mut self, node: Node<'a, 'input>, sink: &mut dyn Sink) {
        if node.is_element() {
            sink.put("</");
            sink.put(element_qname(node));
            sink.put(">");
            self.rendered.truncate(self.marks.pop().unwrap_or(0));
            if node.parent().is_some_and(|p| p.is_root()) {
                self.root_element_done = true;
            }
        }
    }
}

/// Canonical XML separates a comment or PI outside the document element from it by a line
/// feed: after the node when it precedes the element, before it when it follows.
fn top_level_break(top_level: bool, root_done: bool, before: bool, sink: &mut dyn Sink) {
    if top_level && root_done == before {
        sink.put("\n");
    }
}

fn start_tag<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    is_apex: bool,
    method: &C14nMethod,
    rendered: &mut Vec<(&'a str, &'a str)>,
    sink: &mut dyn Sink,
) {
    let qname = element_qname(node);
    sink.put("<");
    sink.put(qname);
    let candidates = namespace_candidates(node, qname, method);
    render_namespaces(candidates, rendered, sink);
    for (_, _, qname, value) in sorted_attributes(node, is_apex, method) {
        sink.put(" ");
        sink.put(qname);
        sink.put("=\"");
        escape(sink, value, true);
        sink.put("\"");
    }
    sink.put(">");
}

/// The namespace declarations an element may have to render, (prefix, URI) sorted by prefix:
/// exclusive canonicalization takes those its name and attributes use (and the listed
/// inclusive prefixes), inclusive canonicalization every one in scope.
fn namespace_candidates<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    qname: &'a str,
    method: &C14nMethod,
) -> Vec<(&'a str, &'a str)> {
    let text: &'input str = node.document().input_text();
    let in_scope = |prefix: &str| -> &'a str {
        node.namespaces()
            .find(|ns| ns.name().unwrap_or("") == prefix)
            .map_or("", |ns| ns.uri())
    };
    let mut candidates: Vec<(&'a str, &'a str)> = Vec::new();
    if method.exclusive {
        let prefix = prefix_of(qname);
        candidates.push((prefix, node.tag_name().namespace().unwrap_or("")));
        for attribute in node.attributes() {
            let attr_prefix = prefix_of(&text[attribute.range_qname()]);
            if !attr_prefix.is_empty() && attr_prefix != "xml" {
                candidates.push((attr_prefix, attribute.namespace().unwrap_or("")));
            }
        }
        for prefix in &method.inclusive_prefixes {
            if prefix.is_empty() {
                candidates.push(("", in_scope("")));
            } else if let Some(ns) = node
                .namespaces()
                .find(|ns| ns.name() == Some(prefix.as_str()))
            {
                candidates.push((ns.name().unwrap_or(""), ns.uri()));
            }
        }
    } else {
        candidates.extend(
            node.namespaces()
                .map(|ns| (ns.name().unwrap_or(""), ns.uri())),
        );
        if !candidates.iter().any(|(p, _)| p.is_empty()) {
            candidates.push(("", ""));
        }
    }
    candidates.sort_unstable();
    candidates.dedup_by(|a, b| a.0 == b.0);
    candidates
}

/// Namespace declarations that this element must render: candidates not already rendered
/// with the same URI by an output ancestor (the default namespace starts as "").
fn render_namespaces<'a>(
    candidates: Vec<(&'a str, &'a str)>,
    rendered: &mut Vec<(&'a str, &'a str)>,
    sink: &mut dyn Sink,
) {
    for (prefix, uri) in candidates {
        if prefix == "xml" {
            continue;
        }
        let current = rendered
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map_or("", |(_, u)| *u);
        if current == uri {
            continue;
        }
        rendered.push((prefix, uri));
        if prefix.is_empty() {
            sink.put(" xmlns=\"");
        } else {
            sink.put(" xmlns:");
            sink.put(prefix);
            sink.put("=\"");
        }
        escape(sink, uri, true);
        sink.put("\"");
    }
}

/// The element's attributes as (namespace URI, local name, qualified name, value), sorted by
/// namespace URI, then local name; unqualified ones first.
fn sorted_attributes<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    is_apex: bool,
    method: &C14nMethod,
) -> Vec<(&'a str, &'a str, &'input str, &'a str)> {
    let text: &'input str = node.document().input_text();
    let mut attributes: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|a| {
            (
                a.namespace().unwrap_or(""),
                a.name(),
                &text[a.range_qname()],
                a.value(),
            )
        })
        .collect();
    if is_apex && !method.exclusive {
        // Inclusive canonicalization of a subtree carries the xml:* attributes (xml:lang,
        // xml:space...) it inherits from ancestors outside it.
        for ancestor in node.ancestors().skip(1).filter(|n| n.is_element()) {
            for a in ancestor.attributes() {
                if a.namespace() == Some(NS_XML)
                    && !attributes
                        .iter()
                        .any(|(ns, local, _, _)| *ns == NS_XML && *local == a.name())
                {
                    attributes.push((NS_XML, a.name(), &text[a.range_qname()], a.value()));
                }
            }
        }
    }
    attributes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    attributes
}

#[cfg(test)]
mod tests {
    use roxmltree::Document;

    use super::*;
    use crate::load::metadata::xml_options;

    fn c14n(xml: &str, exclusive: bool, with_comments: bool, prefixes: &[&str]) -> String {
        let doc = Document::parse_with_options(xml, xml_options()).unwrap();
        let method = C14nMethod {
            exclusive,
            with_comments,
            inclusive_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        };
        let mut out = Vec::new();
        canonicalize(doc.root(), None, &method, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn c14n_of(xml: &str, tag: &str, exclusive: bool) -> String {
        let doc = Document::parse_with_options(xml, xml_options()).unwrap();
        let node = doc
            .descendants()
            .find(|n| n.tag_name().name() == tag)
            .unwrap();
        let method = C14nMethod::from_uri(if exclusive { EXC_C14N } else { C14N }).unwrap();
        let mut out = Vec::new();
        canonicalize(node, None, &method, &mut out);
        String::from_utf8(out).unwrap()
    }

    // The whole-document expectations below are libxml2's output (`xmllint --c14n` and
    // `--exc-c14n` on the same input), an implementation independent of this one; subtrees
    // are checked through xmlsec1-signed documents in tests/signature.rs.

    #[test]
    fn c14n_spec_example_pis_comments_and_outside_whitespace() {
        let xml = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->";
        assert_eq!(
            c14n(xml, false, false, &[]),
            "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
        );
        assert_eq!(
            c14n(xml, false, true, &[]),
            "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->"
        );
    }

    #[test]
    fn c14n_spec_example_start_and_end_tags() {
        let xml = "<doc>\n   <e1   />\n   <e2   ></e2>\n   <e3   name = \"elem3\"   id=\"elem3\"   />\n   <e4   name=\"elem4\"   id=\"elem4\"   ></e4>\n   <e5 a:attr=\"out\" b:attr=\"sorted\" attr2=\"all\" attr=\"I'm\"\n      xmlns:b=\"http://www.ietf.org\"\n      xmlns:a=\"http://www.w3.org\"\n      xmlns=\"http://example.org\"/>\n   <e6 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n            <e9 xmlns=\"\" xmlns:a=\"http://www.ietf.org\"/>\n         </e8>\n      </e7>\n   </e6>\n</doc>";
        assert_eq!(
            c14n(xml, false, false, &[]),
            "<doc>\n   <e1></e1>\n   <e2></e2>\n   <e3 id=\"elem3\" name=\"elem3\"></e3>\n   <e4 id=\"elem4\" name=\"elem4\"></e4>\n   <e5 xmlns=\"http://example.org\" xmlns:a=\"http://www.w3.org\" xmlns:b=\"http://www.ietf.org\" attr=\"I'm\" attr2=\"all\" b:attr=\"sorted\" a:attr=\"out\"></e5>\n   <e6 xmlns:a=\"http://www.w3.org\">\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\">\n            <e9 xmlns:a=\"http://www.ietf.org\"></e9>\n         </e8>\n      </e7>\n   </e6>\n</doc>"
        );
        assert_eq!(
            c14n(xml, true, false, &[]),
            "<doc>\n   <e1></e1>\n   <e2></e2>\n   <e3 id=\"elem3\" name=\"elem3\"></e3>\n   <e4 id=\"elem4\" name=\"elem4\"></e4>\n   <e5 xmlns=\"http://example.org\" xmlns:a=\"http://www.w3.org\" xmlns:b=\"http://www.ietf.org\" attr=\"I'm\" attr2=\"all\" b:attr=\"sorted\" a:attr=\"out\"></e5>\n   <e6>\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\">\n            <e9></e9>\n         </e8>\n      </e7>\n   </e6>\n</doc>"
        );
    }

    #[test]
    fn c14n_character_modifications_and_references() {
        let xml = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n</doc>";
        assert_eq!(
            c14n(xml, false, false, &[]),
            "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n</doc>"
        );
    }

    #[test]
    fn subtree_apex_renders_inherited_namespaces_inclusive_only() {
        let xml = "<r xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" xml:lang=\"en\"><ds:SignedInfo><ds:x/></ds:SignedInfo></r>";
        assert_eq!(
            c14n_of(xml, "SignedInfo", false),
            "<ds:SignedInfo xmlns=\"urn:r\" xmlns:ds=\"urn:ds\" xmlns:u=\"urn:unused\" xml:lang=\"en\"><ds:x></ds:x></ds:SignedInfo>"
        );
        assert_eq!(
            c14n_of(xml, "SignedInfo", true),
            "<ds:SignedInfo xmlns:ds=\"urn:ds\"><ds:x></ds:x></ds:SignedInfo>"
        );
    }

    #[test]
    fn exclusive_inclusive_prefix_list() {
        let xml =
            "<a xmlns:p=\"urn:p\" xmlns:q=\"urn:q\" xmlns=\"urn:d\"><b><c p:x=\"1\"/></b></a>";
        assert_eq!(
            c14n(xml, true, false, &[]),
            "<a xmlns=\"urn:d\"><b><c xmlns:p=\"urn:p\" p:x=\"1\"></c></b></a>"
        );
        // Listed prefixes follow the inclusive rule: rendered where first in scope.
        assert_eq!(
            c14n(xml, true, false, &["q", "p"]),
            "<a xmlns=\"urn:d\" xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"><b><c p:x=\"1\"></c></b></a>"
        );
    }

    #[test]
    fn excluded_subtree_is_left_out() {
        let xml = "<r><a/><s><t/></s><b/></r>";
        let doc = Document::parse(xml).unwrap();
        let s = doc
            .descendants()
            .find(|n| n.has_tag_name("s"))
            .unwrap()
            .id();
        let mut out = Vec::new();
        canonicalize(
            doc.root_element(),
            Some(s),
            &C14nMethod::from_uri(EXC_C14N).unwrap(),
            &mut out,
        );
        assert_eq!(String::from_utf8(out).unwrap(), "<r><a></a><b></b></r>");
    }
}
