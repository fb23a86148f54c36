//! Namespaces in a stream: the scope each element opens, the names resolved in it, and the
//! wrapper element that gives a piece cut out of the stream its ancestors' declarations.

use std::collections::BTreeMap;
use std::sync::Arc;

use quick_xml::events::BytesStart;

use super::super::NS_MD;
use super::super::xml::MAX_NAMESPACES_IN_SCOPE;
use super::Fallback;
use super::pieces::WRAPPER;
use crate::load::signature::Bounds;

/// An open `EntitiesDescriptor`.
pub(super) struct Container {
    pub(super) qname: String,
    /// Namespaces in scope inside it (prefix, "" for the default, to URI).
    pub(super) scope: Arc<BTreeMap<String, String>>,
    /// The start of a piece's text: an element declaring `scope`.
    pub(super) wrapper: Arc<str>,
    /// The tightest `validUntil` / `cacheDuration` of it and the containers around it: the
    /// keys of every piece inside are bound by them.
    pub(super) bounds: Arc<Bounds>,
    /// Namespace declarations on it and the containers around it, counted as the tree
    /// reader counts them ([`super::super::xml::check_namespaces`]).
    pub(super) declared: usize,
}

/// Whether `text`, inside a container with `declared` declarations, may hold an element
/// past [`MAX_NAMESPACES_IN_SCOPE`]: then the tree reader decides (and refuses, naming it).
/// Every declaration takes at least 8 bytes (`xmlns=""`), so a short piece is never counted.
pub(super) fn may_exceed_namespaces(declared: usize, text: &str) -> bool {
    let room = MAX_NAMESPACES_IN_SCOPE.saturating_sub(declared);
    text.len() / 8 > room
        && memchr::memmem::find_iter(text.as_bytes(), b"xmlns")
            .nth(room)
            .is_some()
}

pub(super) fn wrapper_for(scope: &BTreeMap<String, String>) -> Arc<str> {
    wrapper_declaring(scope.iter()).into()
}

fn wrapper_declaring<'s>(declarations: impl Iterator<Item = (&'s String, &'s String)>) -> String {
    let mut wrapper = format!("<{WRAPPER}");
    for (prefix, uri) in declarations {
        let uri = uri
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;");
        if prefix.is_empty() {
            wrapper.push_str(&format!(" xmlns=\"{uri}\""));
        } else {
            wrapper.push_str(&format!(" xmlns:{prefix}=\"{uri}\""));
        }
    }
    wrapper.push('>');
    wrapper
}

/// Past this many namespaces in scope, a piece's wrapper declares only those the piece may
/// use. roxmltree checks each declaration of an element against the element's others, so a
/// wrapper of n declarations costs n² per piece: an aggregate whose root declared 12,500
/// namespaces took 22 s to read, 50,000 took 330 s. Below it (every real document) the one
/// wrapper of the container is shared, as before.
const LARGE_SCOPE: usize = 64;

/// The wrapper for one piece of `text` in `container`: the container's own when its scope
/// is small, else one declaring the default namespace and every prefix that appears in the
/// text before a `:` (a superset of the prefixes its names and QName values use, found in
/// one pass), in the scope's order. Declarations nothing in the piece refers to change
/// neither its names nor its canonical form in the root's digest: the containers around it
/// are output and render them. A piece holding a signature gets every declaration: its
/// SignedInfo (and an entity it signs) is canonicalized as a subtree of its own, which
/// carries every namespace in scope (inclusive canonicalization, or a PrefixList naming
/// prefixes the text never writes with a colon).
pub(super) fn wrapper_in(container: &Container, text: &str) -> Arc<str> {
    if container.scope.len() <= LARGE_SCOPE
        || memchr::memmem::find(text.as_bytes(), b"SignedInfo").is_some()
    {
        return Arc::clone(&container.wrapper);
    }
    wrapper_for_piece(&container.scope, text).into()
}

fn wrapper_for_piece(scope: &BTreeMap<String, String>, text: &str) -> String {
    let bytes = text.as_bytes();
    let mut used = std::collections::HashSet::new();
    for colon in memchr::memchr_iter(b':', bytes) {
        let start = bytes[..colon]
            .iter()
            .rposition(|b| {
                b.is_ascii_whitespace()
                    || matches!(
                        b,
                        b'<' | b'/' | b'"' | b'\'' | b'=' | b':' | b'>' | b'(' | b','
                    )
            })
            .map_or(0, |delimiter| delimiter + 1);
        if start < colon
            && let Ok(prefix) = std::str::from_utf8(&bytes[start..colon])
        {
            used.insert(prefix);
        }
    }
    wrapper_declaring(
        scope
            .iter()
            .filter(|(prefix, _)| prefix.is_empty() || used.contains(prefix.as_str())),
    )
}

/// The scope inside an element: its parent's plus its own declarations (the parent's own,
/// shared, when it declares none, as entities seldom do).
pub(super) fn scope_of(
    start: &BytesStart<'_>,
    parent: &Arc<BTreeMap<String, String>>,
) -> Result<(Arc<BTreeMap<String, String>>, usize), Fallback> {
    let mut scope: Option<BTreeMap<String, String>> = None;
    // quick-xml's own duplicate check compares each attribute with every earlier one
    // (quadratic on a root declaring 50,000 namespaces); a repeated declaration is caught
    // here by a set, and any other repeated attribute by roxmltree, which parses every
    // element this reader keeps.
    let mut declared = std::collections::HashSet::new();
    // Counted as the tree reader's check counts them: every attribute named xmlns*.
    let mut counted = 0;
    for attribute in start.attributes().with_checks(false) {
        let attribute = attribute.map_err(|_| Fallback::Invalid)?;
        counted += usize::from(attribute.key.as_ref().starts_with(b"xmlns"));
        let key = std::str::from_utf8(attribute.key.as_ref()).map_err(|_| Fallback::Invalid)?;
        let prefix = match key.strip_prefix("xmlns") {
            Some("") => "",
            Some(rest) => match rest.strip_prefix(':') {
                Some(prefix) => prefix,
                None => continue,
            },
            None => continue,
        };
        if !declared.insert(prefix.to_string()) {
            return Err(Fallback::Invalid);
        }
        let value = attribute.unescape_value().map_err(|_| Fallback::Invalid)?;
        scope
            .get_or_insert_with(|| parent.as_ref().clone())
            .insert(prefix.to_string(), value.into_owned());
    }
    let scope = scope.map_or_else(|| Arc::clone(parent), Arc::new);
    Ok((scope, counted))
}

/// An element's namespace and local name, in `scope` (its own declarations included).
pub(super) fn resolve<'n>(
    qname: &'n str,
    scope: &BTreeMap<String, String>,
) -> Result<(Option<String>, &'n str), Fallback> {
    let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
    match scope.get(prefix) {
        Some(uri) if !uri.is_empty() => Ok((Some(uri.clone()), local)),
        Some(_) | None if prefix.is_empty() => Ok((None, local)),
        _ => Err(Fallback::Invalid),
    }
}

pub(super) fn is_md_name(ns: &Option<String>, local: &str, name: &str) -> bool {
    local == name && matches!(ns.as_deref(), Some(NS_MD) | None)
}

/// Line ends as a parser reports them: CRLF and CR become LF.
pub(super) fn normalize_line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}
