//! WIF's verdict on loading a config: the configuration errors that stop the app at start
//! (`../shared/DOMAIN.md`, checked against Microsoft's WIF 4.5 configuration classes), as
//! error-level findings with WIF's error id. keyroll never writes into a file WIF refuses
//! unless its change removes the cause (a duplicate), and re-checks every write with these.

use std::collections::BTreeMap;

use roxmltree::Node;

use super::{Code, FileProblem, Finding, Severity, XDT_NS};

const WIF45: &str = "system.identityModel";
const WIF45_SERVICES: &str = "system.identityModel.services";
const WIF35: &str = "microsoft.identityModel";

pub(super) struct Checker<'a, 'input> {
    pub text: &'a str,
    pub position: &'a dyn Fn(usize) -> (u32, u32),
    pub path: &'a std::path::Path,
    pub problems: Vec<FileProblem>,
    /// Checking what a transform's `Replace` puts in place: its `xdt:` attributes are the
    /// transform's own, which publishing removes, so they are not counted.
    in_transform: bool,
    _doc: std::marker::PhantomData<&'input ()>,
}

impl<'a, 'input> Checker<'a, 'input> {
    pub fn new(
        text: &'a str,
        position: &'a dyn Fn(usize) -> (u32, u32),
        path: &'a std::path::Path,
    ) -> Self {
        Checker {
            text,
            position,
            path,
            problems: Vec::new(),
            in_transform: false,
            _doc: std::marker::PhantomData,
        }
    }

    fn refuse(&mut self, node: Node<'_, '_>, code: Code, message: String) {
        let (line, column) = (self.position)(node.range().start);
        self.problems.push(FileProblem {
            file: self.path.to_path_buf(),
            line,
            column,
            finding: Finding::new(code, Severity::Error, message),
        });
    }

    /// Attributes as WIF counts them: namespace declarations on the element count too.
    fn attribute_count(&self, node: Node<'_, '_>) -> usize {
        let range = node.range();
        let gt = super::parse::start_tag_end(self.text, range.start).unwrap_or(range.end);
        let declarations = super::parse::namespace_declarations(&self.text[range.start..gt]);
        // In a config WIF loads, every attribute counts, an `xdt:` one included.
        let attributes = node
            .attributes()
            .filter(|a| !self.in_transform || a.namespace() != Some(XDT_NS))
            .count();
        attributes + declarations
    }

    pub fn check(&mut self, doc: &roxmltree::Document<'_>) {
        let root = doc.root_element();
        if root.namespaces().any(|ns| ns.uri() == XDT_NS) {
            // A transform is not loaded by WIF; it is applied at publish time. What a
            // `Replace` puts in place is what that build configuration's app loads, so it is
            // held to the rules a config's own sections are.
            self.transforms(doc);
            self.in_transform = true;
            let replaced = |node: Node<'_, '_>| {
                node.ancestors().any(|a| {
                    a.attribute((XDT_NS, "Transform"))
                        .is_some_and(|t| t.trim() == "Replace")
                })
            };
            for node in doc.descendants().filter(|n| n.is_element() && replaced(*n)) {
                self.element(node);
            }
            self.authorities_unique(doc, &replaced);
            return;
        }
        if root.tag_name().name() == "configuration" {
            self.declared_sections(root);
        }
        for node in doc.descendants().filter(|n| n.is_element()) {
            self.element(node);
        }
        self.authorities_unique(doc, &|_| true);
    }

    /// The rules WIF holds one element of a loaded config to.
    fn element(&mut self, node: Node<'_, '_>) {
        match node.tag_name().name() {
            "trustedIssuers" => self.trusted_issuers(node),
            "issuerNameRegistry" => self.registry(node),
            WIF45 => self.identity_configurations(node),
            "authority" if in_section(node, WIF45) => self.authority(node),
            _ => {}
        }
    }

    /// In a config transform, what keyroll interprets: `Replace` of a registry's container
    /// or one of its ancestors (the replacement holds the build configuration's trusted
    /// set). Any other transform on or inside a WIF section (Insert, Remove, RemoveAll,
    /// SetAttributes, a Locator on an entry, …) could change what that configuration trusts
    /// in ways keyroll does not compute: it is reported and the file is never edited.
    fn transforms(&mut self, doc: &roxmltree::Document<'_>) {
        const REGISTRY_PARTS: &[&str] = &[
            WIF45,
            WIF35,
            "identityConfiguration",
            "service",
            "securityTokenHandlers",
            "securityTokenHandlerConfiguration",
            "issuerNameRegistry",
            "trustedIssuers",
            "authority",
            "keys",
        ];
        for node in doc.descendants().filter(|n| n.is_element()) {
            let in_wif = in_section(node, WIF45)
                || in_section(node, WIF35)
                || [WIF45, WIF35].contains(&node.tag_name().name());
            if !in_wif {
                continue;
            }
            if [WIF45, WIF35].contains(&node.tag_name().name()) {
                // A transform on an element around the section (a `<location>` inserted
                // whole) adds or removes a whole trust set at publish time: not computed.
                let around = node
                    .ancestors()
                    .skip(1)
                    .filter(|a| a.is_element())
                    .find(|a| {
                        a.attribute((XDT_NS, "Transform"))
                            .is_some_and(|t| t.trim() != "Replace")
                    });
                if let Some(around) = around {
                    let transform = around.attribute((XDT_NS, "Transform")).unwrap_or_default();
                    self.refuse(
                        node,
                        Code::UninterpretedTransform,
                        format!(
                            "xdt:Transform=\"{}\" on <{}> around <{}>: keyroll cannot tell what this build configuration trusts after publishing; it never edits this file (check it by hand)",
                            transform.trim(),
                            around.tag_name().name(),
                            node.tag_name().name()
                        ),
                    );
                }
            }
            let transform = node.attribute((XDT_NS, "Transform")).map(str::trim);
            let locator = node.attribute((XDT_NS, "Locator")).map(str::trim);
            let interpreted = match transform {
                None => true,
                Some("Replace") => REGISTRY_PARTS.contains(&node.tag_name().name()),
                Some(_) => false,
            };
            if !interpreted {
                self.refuse(
                    node,
                    Code::UninterpretedTransform,
                    uninterpreted_transform(node, transform, locator),
                );
            }
        }
    }

    /// A section used but not declared in `<configSections>`: "Unrecognized configuration
    /// section". A configSource fragment inherits its parent's declarations.
    fn declared_sections(&mut self, root: Node<'_, '_>) {
        let declared: Vec<String> = root
            .children()
            .filter(|c| c.has_tag_name("configSections"))
            .flat_map(|c| c.descendants())
            .filter(|d| d.has_tag_name("section"))
            .filter_map(|d| d.attribute("name").map(str::to_string))
            .collect();
        for section in root.children().filter(|c| c.is_element()) {
            let name = section.tag_name().name();
            if [WIF45, WIF45_SERVICES, WIF35].contains(&name) && !declared.iter().any(|d| d == name)
            {
                self.refuse(
                    section,
                    Code::UndeclaredSection,
                    format!(
                        "<{name}> is used but not declared in <configSections>: the app fails with \"Unrecognized configuration section {name}\""
                    ),
                );
            }
        }
    }

    fn trusted_issuers(&mut self, node: Node<'_, '_>) {
        let wif35 = in_section(node, WIF35);
        if !wif35 && !in_section(node, WIF45) {
            return;
        }
        for child in node.children() {
            if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
                self.refuse(
                    child,
                    Code::LoadError,
                    "text inside <trustedIssuers>: WIF refuses the section".into(),
                );
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let count = self.attribute_count(child);
            match child.tag_name().name() {
                "add" if wif35 => {
                    let name_ok = child.attribute("name").is_some_and(|n| !n.is_empty());
                    if child.attribute("thumbprint").is_none() || !name_ok || count != 2 {
                        self.refuse(
                            child,
                            Code::LoadError,
                            "WIF 3.5 <add> needs exactly `thumbprint` and a non-empty `name`, nothing else".into(),
                        );
                    }
                }
                "add" => {
                    if child.attribute("thumbprint").is_none() {
                        self.refuse(
                            child,
                            Code::LoadError,
                            "ID7010: <add> without `thumbprint`".into(),
                        );
                    } else if count > 2 {
                        self.refuse(
                            child,
                            Code::LoadError,
                            format!(
                                "ID7010: <add> has {count} attributes (namespace declarations count); WIF accepts two"
                            ),
                        );
                    }
                }
                "remove" if count > 1 => self.refuse(
                    child,
                    Code::LoadError,
                    format!("ID7010: <remove> has {count} attributes; WIF accepts one"),
                ),
                "remove" | "clear" => {}
                other => self.refuse(
                    child,
                    Code::LoadError,
                    format!("ID7002: unknown element <{other}> in <trustedIssuers>"),
                ),
            }
        }
    }

    fn registry(&mut self, node: Node<'_, '_>) {
        if !in_section(node, WIF45) && !in_section(node, WIF35) {
            return;
        }
        let configuration_based = node
            .attribute("type")
            .is_none_or(|t| t.contains("ConfigurationBasedIssuerNameRegistry"));
        if !configuration_based {
            return;
        }
        let mut seen = false;
        for child in node.children().filter(|c| c.is_element()) {
            match child.tag_name().name() {
                "trustedIssuers" if seen => self.refuse(
                    child,
                    Code::LoadError,
                    "ID7019: a second <trustedIssuers> in one <issuerNameRegistry>".into(),
                ),
                "trustedIssuers" => seen = true,
                other => self.refuse(
                    child,
                    Code::LoadError,
                    format!("ID7002: unknown element <{other}> in <issuerNameRegistry>"),
                ),
            }
        }
    }

    /// Two `<identityConfiguration>` with the same name, or two unnamed (ID7029).
    fn identity_configurations(&mut self, section: Node<'_, '_>) {
        let mut names: BTreeMap<String, u32> = BTreeMap::new();
        for config in section
            .children()
            .filter(|c| c.has_tag_name("identityConfiguration"))
        {
            let name = config.attribute("name").unwrap_or("").to_string();
            let (line, _) = (self.position)(config.range().start);
            if let Some(first) = names.get(&name) {
                let first = *first;
                self.refuse(
                    config,
                    Code::LoadError,
                    format!(
                        "ID7029: a second <identityConfiguration> named \"{name}\" (the first is at line {first})"
                    ),
                );
            } else {
                names.insert(name, line);
            }
        }
    }

    /// VINR: each authority needs `<keys>` with at least one key and `<validIssuers>`.
    fn authority(&mut self, node: Node<'_, '_>) {
        let keys = node.children().find(|c| c.has_tag_name("keys"));
        let has_key = keys.is_some_and(|k| k.children().any(|c| c.has_tag_name("add")));
        if !has_key {
            self.refuse(
                node,
                Code::LoadError,
                "a ValidatingIssuerNameRegistry <authority> needs <keys> with at least one key"
                    .into(),
            );
        }
        if !node.children().any(|c| c.has_tag_name("validIssuers")) {
            self.refuse(
                node,
                Code::LoadError,
                "a ValidatingIssuerNameRegistry <authority> needs <validIssuers>".into(),
            );
        }
    }

    /// Two authorities of one registry with the same name; `loaded` picks the registries the
    /// app loads (in a transform, those a `Replace` puts in place).
    fn authorities_unique(
        &mut self,
        doc: &roxmltree::Document<'_>,
        loaded: &dyn Fn(Node<'_, '_>) -> bool,
    ) {
        for registry in doc
            .descendants()
            .filter(|n| n.has_tag_name("issuerNameRegistry") && in_section(*n, WIF45) && loaded(*n))
        {
            let mut seen: BTreeMap<String, ()> = BTreeMap::new();
            for authority in registry.children().filter(|c| c.has_tag_name("authority")) {
                let name = authority.attribute("name").unwrap_or("").to_string();
                if seen.insert(name.clone(), ()).is_some() {
                    self.refuse(
                        authority,
                        Code::LoadError,
                        format!("two <authority> elements named \"{name}\""),
                    );
                }
            }
        }
    }
}

fn in_section(node: Node<'_, '_>, section: &str) -> bool {
    node.ancestors().any(|a| a.has_tag_name(section))
}

/// Inside (or being) a WIF section, whose transforms [`Checker::transforms`] judges.
pub(super) fn in_wif_section(node: Node<'_, '_>) -> bool {
    in_section(node, WIF45) || in_section(node, WIF35)
}

/// What an uninterpreted transform on `node` is said to be, the same for every registry.
pub(super) fn uninterpreted_transform(
    node: Node<'_, '_>,
    transform: Option<&str>,
    locator: Option<&str>,
) -> String {
    let mut what = format!("xdt:Transform=\"{}\"", transform.unwrap_or_default());
    if let Some(locator) = locator {
        what.push_str(&format!(" with xdt:Locator=\"{locator}\""));
    }
    format!(
        "{what} on <{}>: keyroll cannot tell what this build configuration trusts after publishing; it never edits this file (check it by hand)",
        node.tag_name().name()
    )
}

/// An attribute value as WIF reads it: entity and character references decoded, and no
/// whitespace normalization (.NET's configuration reader keeps a literal TAB or line break,
/// where an XML parser's attribute-value normalization would turn it into a space).
pub fn decode_attribute(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = after.find(';') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let reference = &after[..end];
        let decoded = match reference {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => reference
                .strip_prefix("#x")
                .or_else(|| reference.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| reference.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(ch) => out.push(ch),
            None => out.push_str(&rest[at..at + 1 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    // XML parsers (and .NET's) turn CRLF into LF before anything else.
    out.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::decode_attribute;

    #[test]
    fn literal_whitespace_survives_and_references_decode() {
        assert_eq!(decode_attribute("AB\tCD"), "AB\tCD");
        assert_eq!(decode_attribute("A&#9;B&#x200E;C&amp;"), "A\tB\u{200E}C&");
        assert_eq!(decode_attribute("A\r\nB"), "A\nB");
    }
}
