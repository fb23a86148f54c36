//! User rules read from a folder beside the built-ins. A rule's format is
//! [`crate::model::rules`]'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::rules::{RuleError, RuleSet, parse_rule};

impl RuleSet {
    /// Built-ins plus every `*.toml` in `dir`; a user rule with a built-in's name replaces it.
    pub fn with_dir(dir: &Path) -> Result<Self, RuleError> {
        let mut set = RuleSet::builtin();
        let io = |e: std::io::Error| RuleError::Io {
            file: dir.display().to_string(),
            detail: e.to_string(),
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| RuleError::Io {
                file: origin.clone(),
                detail: e.to_string(),
            })?;
            let rule = Arc::new(parse_rule(&origin, &text)?);
            set.rules.retain(|r| r.name() != rule.name());
            set.rules.push(rule);
        }
        Ok(set)
    }
}
