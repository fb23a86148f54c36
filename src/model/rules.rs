//! Config dialects as data: where trusted thumbprints live and what a new entry looks like.
//! The built-in rules (`rules/*.toml`) are embedded; `--rules DIR` adds or replaces rules by
//! name without recompiling.

use std::sync::Arc;

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

const BUILTIN: &[(&str, &str)] = &[
    ("rules/wif45.toml", include_str!("../../rules/wif45.toml")),
    ("rules/vinr.toml", include_str!("../../rules/vinr.toml")),
    ("rules/wif35.toml", include_str!("../../rules/wif35.toml")),
    (
        "rules/appsettings.toml",
        include_str!("../../rules/appsettings.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    #[error("{file}:{line}:{column}: {detail}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        detail: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub name: String,
    pub title: String,
    pub files: Vec<String>,
    pub registries: Vec<String>,
    pub entry: EntrySpec,
    pub scope: Option<ScopeSpec>,
    pub create: Option<CreateSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    pub element: String,
    /// Attribute holding the thumbprint.
    pub thumbprint: String,
    /// Attribute holding the issuer name, if entries carry one.
    pub name: Option<String>,
    pub remove: Option<String>,
    pub clear: Option<String>,
    /// A new entry: `{thumbprint}` and `{name}` are replaced. No template: keyroll never adds.
    pub template: Option<String>,
    /// For key/value settings: the attribute naming the setting, and which names count.
    pub key: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    pub element: String,
    pub attribute: String,
    /// The scope's attribute is also the issuer name of its entries (VINR authority).
    #[serde(default)]
    pub issuer_name: bool,
    /// Path below the scope element to elements whose `name` lists valid issuers.
    pub valid_issuers: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    pub parent: String,
    pub element: String,
    /// The parent's `type=` must contain this; a parent without `type=` is of the default
    /// type, which the rule names here (WIF: no type means ConfigurationBasedIssuerNameRegistry).
    pub parent_type_contains: Option<String>,
}

/// A loaded rule, ready to match.
#[derive(Debug)]
pub struct Rule {
    pub spec: RuleFile,
    pub origin: String,
    pub registry_paths: Vec<Vec<String>>,
    file_matchers: Vec<GlobMatcher>,
    key_matchers: Vec<GlobMatcher>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn applies_to_file(&self, file_name: &str) -> bool {
        self.file_matchers.iter().any(|m| m.is_match(file_name))
    }

    pub fn key_matches(&self, key: &str) -> bool {
        self.key_matchers.iter().any(|m| m.is_match(key))
    }

    /// Section elements (first path segments): a `configSource` on one of these is followed.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.registry_paths.iter().map(|p| p[0].as_str())
    }
}

#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
}

impl RuleSet {
    pub fn builtin() -> Self {
        let rules = BUILTIN
            .iter()
            .map(|(origin, text)| {
                Arc::new(parse_rule(origin, text).expect("built-in rule is valid"))
            })
            .collect();
        RuleSet { rules }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.name() == name)
    }

    pub fn applies_to_file(&self, file_name: &str) -> bool {
        self.rules.iter().any(|r| r.applies_to_file(file_name))
    }
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()?
        .compile_matcher())
}

pub fn parse_rule(origin: &str, text: &str) -> Result<Rule, RuleError> {
    let invalid_at = |offset: usize, detail: String| {
        let before = &text[..offset.min(text.len())];
        RuleError::Invalid {
            file: origin.to_string(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            detail,
        }
    };
    let spec: RuleFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid_at(offset, e.message().to_string())
    })?;
    let key_offset = |key: &str| text.find(key).unwrap_or(0);

    if spec.registries.is_empty() {
        return Err(invalid_at(
            key_offset("registries"),
            "`registries` lists no paths".into(),
        ));
    }
    let registry_paths: Vec<Vec<String>> = spec
        .registries
        .iter()
        .map(|p| p.split('/').map(str::to_string).collect::<Vec<_>>())
        .collect();
    if registry_paths.iter().flatten().any(|s| s.is_empty()) {
        return Err(invalid_at(
            key_offset("registries"),
            "a registry path has an empty segment".into(),
        ));
    }
    if let Some(template) = &spec.entry.template {
        if !template.contains("{thumbprint}") {
            return Err(invalid_at(
                key_offset("template"),
                "`template` must contain {thumbprint}".into(),
            ));
        }
        let sample = template
            .replace("{thumbprint}", "0000000000000000000000000000000000000000")
            .replace("{name}", "issuer");
        let parsed = roxmltree::Document::parse(&sample).map_err(|e| {
            invalid_at(
                key_offset("template"),
                format!("`template` is not one XML element: {e}"),
            )
        })?;
        if parsed.root_element().tag_name().name() != spec.entry.element {
            return Err(invalid_at(
                key_offset("template"),
                format!("`template` must be an <{}> element", spec.entry.element),
            ));
        }
    }
    if spec.entry.key.is_some() == spec.entry.keys.is_empty() {
        return Err(invalid_at(
            key_offset("[entry]"),
            "`key` and `keys` go together".into(),
        ));
    }
    let compile = |patterns: &[String], what: &str| {
        patterns
            .iter()
            .map(|p| glob(p).map_err(|e| invalid_at(key_offset(p), format!("{what} {p}: {e}"))))
            .collect::<Result<Vec<_>, _>>()
    };
    let file_matchers = compile(&spec.files, "file pattern")?;
    let key_matchers = compile(&spec.entry.keys, "key pattern")?;
    Ok(Rule {
        spec,
        origin: origin.to_string(),
        registry_paths,
        file_matchers,
        key_matchers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load() {
        let set = RuleSet::builtin();
        assert_eq!(set.rules.len(), 4);
        assert!(set.get("vinr").unwrap().applies_to_file("Web.config"));
        assert!(
            set.get("appsettings")
                .unwrap()
                .key_matches("ida:IssuerThumbprint")
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let err = parse_rule(
            "mine.toml",
            "name = \"x\"\ntitle = \"t\"\nfiles = [\"*.config\"]\nregistries = [\"a/b\"]\nflavour = 1\n[entry]\nelement = \"add\"\nthumbprint = \"t\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("mine.toml:5:1: unknown field `flavour`"),
            "{err}"
        );
    }

    #[test]
    fn template_must_be_the_entry_element() {
        let err = parse_rule(
            "mine.toml",
            "name = \"x\"\ntitle = \"t\"\nfiles = [\"*.config\"]\nregistries = [\"a/b\"]\n[entry]\nelement = \"add\"\nthumbprint = \"t\"\ntemplate = '<key thumbprint=\"{thumbprint}\"/>'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be an <add> element"), "{err}");
    }
}
