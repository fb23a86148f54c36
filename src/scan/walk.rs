//! Walking paths for `keyroll scan`: which files to read, `configSource` followed on disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::paths::PathError;
use crate::rules::RuleSet;

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
        let relevant = match TextEncoding::decode_utf16(&bytes) {
            Some((_, text)) => needles.is_match(&text),
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
