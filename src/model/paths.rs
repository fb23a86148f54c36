//! Paths as the app's host resolves them. .NET takes `configSource` with `\` only, in the
//! config file's folder or below it, and matches names case-insensitively; repositories made on Windows often differ in case
//! between a reference and the folder on disk. keyroll runs on Linux runners too, so it
//! resolves the same way on every OS: the exact name first, else the one name that matches
//! ignoring case (two such names are an error naming both).

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("configSource=\"{reference}\": no such file")]
    Missing { reference: String },
    #[error("configSource=\"{reference}\" leaves the repository; not followed")]
    Outside { reference: String },
    #[error(
        "configSource=\"{reference}\": .NET refuses it ({why}) and the app does not start; not followed"
    )]
    Refused {
        reference: String,
        why: &'static str,
    },
    #[error(
        "configSource=\"{reference}\" matches both {first} and {second} (they differ only in case; Windows cannot tell them apart)"
    )]
    Ambiguous {
        reference: String,
        first: String,
        second: String,
    },
}

impl PathError {
    pub fn code(&self) -> crate::model::finding::Code {
        use crate::model::finding::Code;
        match self {
            PathError::Missing { .. } => Code::ConfigSourceMissing,
            PathError::Outside { .. } => Code::ConfigSourceOutside,
            PathError::Refused { .. } => Code::ConfigSourceInvalid,
            PathError::Ambiguous { .. } => Code::ConfigSourceAmbiguous,
        }
    }
}

/// `reference` (either separator) relative to the folder `dir` (a `/`-separated path
/// relative to the repository root, "" for the root), as a `/`-separated path relative to
/// the root. `..` that climbs above the root, and absolute references, leave it.
pub fn join_relative(dir: &str, reference: &str) -> Result<String, PathError> {
    let outside = || PathError::Outside {
        reference: reference.to_string(),
    };
    let slashed = reference.replace('\\', "/");
    if slashed.starts_with('/') || slashed.contains(':') {
        return Err(outside());
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in slashed.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(outside)?;
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Missing {
            reference: reference.to_string(),
        });
    }
    Ok(parts.join("/"))
}

/// A `configSource` as System.Configuration takes it (`NormalizeConfigSource`, then the
/// host's `GetStreamNameForConfigSource`): not empty, no white space around it, no `/`, not
/// rooted, and naming a file in the config file's folder `dir` or below it. Anything else
/// stops the app at start, so keyroll never follows it to edit a file the app cannot read.
pub fn config_source(dir: &str, reference: &str) -> Result<String, PathError> {
    let refused = |why: &'static str| PathError::Refused {
        reference: reference.to_string(),
        why,
    };
    if reference.is_empty() {
        return Err(refused("it is empty"));
    }
    if reference.trim() != reference {
        return Err(refused("white space around it"));
    }
    if reference.contains('/') {
        return Err(refused("'/' is not allowed; only '\\' separates folders"));
    }
    if reference.starts_with('\\') || reference.contains(':') {
        return Err(refused("a rooted path"));
    }
    let not_below = || refused("not in the config file's folder or below it");
    let joined = join_relative(dir, reference).map_err(|e| match e {
        PathError::Outside { .. } => not_below(),
        other => other,
    })?;
    // The host compares folders ignoring case, as Windows does.
    let below = dir.is_empty()
        || joined
            .to_lowercase()
            .strip_prefix(&dir.to_lowercase())
            .is_some_and(|rest| rest.starts_with('/'));
    if !below {
        return Err(not_below());
    }
    Ok(joined)
}

/// Finds `relative` among `files` (`/`-separated paths relative to the same root): the
/// exact path, else the single path equal to it ignoring case.
pub fn resolve_in_list(
    files: &BTreeSet<String>,
    relative: &str,
    reference: &str,
) -> Result<String, PathError> {
    if files.contains(relative) {
        return Ok(relative.to_string());
    }
    let wanted = relative.to_lowercase();
    let mut matches = files.iter().filter(|f| f.to_lowercase() == wanted);
    match (matches.next(), matches.next()) {
        (Some(one), None) => Ok(one.clone()),
        (Some(first), Some(second)) => Err(PathError::Ambiguous {
            reference: reference.to_string(),
            first: first.clone(),
            second: second.clone(),
        }),
        (None, _) => Err(PathError::Missing {
            reference: reference.to_string(),
        }),
    }
}

/// Paths in reports use `/` on every OS (SARIF URIs, annotations, stable golden files).
pub fn slash_path(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_source_as_dotnet_takes_it() {
        let refused = |dir: &str, r: &str| match config_source(dir, r) {
            Err(PathError::Refused { why, .. }) => why,
            other => panic!("{r}: {other:?}"),
        };
        assert_eq!(
            config_source("src/App", "Configuration\\identity.config").unwrap(),
            "src/App/Configuration/identity.config"
        );
        // Out and back in again is still below the folder (the host compares full paths,
        // ignoring case).
        assert_eq!(
            config_source("src/App", "..\\app\\identity.config").unwrap(),
            "src/app/identity.config"
        );
        assert_eq!(
            config_source("", "identity.config").unwrap(),
            "identity.config"
        );
        assert!(refused("src/App", "..\\Shared\\id.config").contains("not in the config"));
        assert!(refused("", "..\\id.config").contains("not in the config"));
        assert!(refused("src/App", "sub/id.config").contains("'/'"));
        assert!(refused("src/App", "id.config ").contains("white space"));
        assert!(refused("src/App", "\\id.config").contains("rooted"));
        assert!(refused("src/App", "C:\\id.config").contains("rooted"));
        assert!(refused("src/App", "").contains("empty"));
    }

    #[test]
    fn backslashes_dots_and_climbing_out() {
        assert_eq!(
            join_relative("src/App", "configuration\\identity.config").unwrap(),
            "src/App/configuration/identity.config"
        );
        assert_eq!(
            join_relative("src/App", "..\\Shared\\./id.config").unwrap(),
            "src/Shared/id.config"
        );
        assert!(matches!(
            join_relative("src", "../../etc/passwd"),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(
            join_relative("src", "C:\\x.config"),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(
            join_relative("", "/etc/passwd"),
            Err(PathError::Outside { .. })
        ));
    }

    #[test]
    fn case_insensitive_only_when_the_exact_name_is_missing_and_unambiguous() {
        let files: BTreeSet<String> = ["a/Configuration/id.config", "b/X.config", "b/x.config"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            resolve_in_list(&files, "a/configuration/ID.config", "r").unwrap(),
            "a/Configuration/id.config"
        );
        assert_eq!(
            resolve_in_list(&files, "b/x.config", "r").unwrap(),
            "b/x.config"
        );
        assert!(matches!(
            resolve_in_list(&files, "b/X.CONFIG", "r"),
            Err(PathError::Ambiguous { .. })
        ));
        assert!(matches!(
            resolve_in_list(&files, "c/none", "r"),
            Err(PathError::Missing { .. })
        ));
    }
}
