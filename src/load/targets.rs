//! Target files: listed from keyroll.toml's folder or a commit (`Tree`), matched by the
//! targets' globs (transforms beside a base go with it), links followed where they stay
//! inside, each file read and scanned, and `configSource` fragments followed with their
//! parent's targets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use super::scan::{self, ConfigFile, KnownCertificates};
use super::{LoadError, paths};
use crate::load::git::GitRepo;
use crate::model::lock::Lock;
use crate::model::paths::{PathError, config_source, join_relative, resolve_in_list};
use crate::model::rules::RuleSet;
use crate::model::settings::Settings;

/// Where target files are read from.
pub enum Tree<'a> {
    /// keyroll.toml's folder on disk (`plan`, `apply`).
    Work,
    /// A commit's tree (`pr`: the base the pull request targets). `prefix` is keyroll.toml's
    /// folder relative to the repository's root.
    Git {
        repo: &'a GitRepo,
        commit: git2::Oid,
        prefix: String,
    },
}

/// One target file as read and scanned, with the targets that apply to it.
#[derive(Debug, Clone)]
pub struct TargetFile {
    pub file: ConfigFile,
    pub targets: Vec<usize>,
    /// Relative to keyroll.toml's folder, with `/`.
    pub display: String,
    /// Where `apply` writes it.
    pub path: PathBuf,
    /// Why keyroll will not change it (a link), beside any scan problem of the file itself.
    pub refused: Option<String>,
}

/// A listed file: its path relative to the root, and whether it is a symbolic link.
struct Listed {
    relative: String,
    link: bool,
}

fn in_build_output(relative: &str) -> bool {
    relative
        .split('/')
        .rev()
        .skip(1)
        .any(|d| d.eq_ignore_ascii_case("bin") || d.eq_ignore_ascii_case("obj"))
}

impl Tree<'_> {
    fn list(&self, settings: &Settings) -> Result<Vec<Listed>, LoadError> {
        let walk_error = |detail: String| LoadError::Walk {
            root: settings.root.display().to_string(),
            detail,
        };
        let mut listed = Vec::new();
        match self {
            Tree::Work => {
                // Hidden files and folders too (`.deploy/Web.config`): `pr` lists every blob
                // of a commit, and `plan`/`apply` must edit the same files it does. The git
                // folder itself is never a target.
                let walker = ignore::WalkBuilder::new(&settings.root)
                    .require_git(false)
                    .hidden(false)
                    .filter_entry(|entry| entry.file_name() != ".git")
                    .build();
                for entry in walker {
                    let entry = entry.map_err(|e| walk_error(e.to_string()))?;
                    let Some(kind) = entry.file_type() else {
                        continue;
                    };
                    // As the scan's walk: a FIFO, socket or device is never opened (reading
                    // one could block for ever).
                    if !kind.is_file() && !kind.is_symlink() {
                        continue;
                    }
                    let relative = entry
                        .path()
                        .strip_prefix(&settings.root)
                        .unwrap_or(entry.path());
                    listed.push(Listed {
                        relative: relative.to_string_lossy().replace('\\', "/"),
                        link: kind.is_symlink(),
                    });
                }
            }
            Tree::Git {
                repo,
                commit,
                prefix,
            } => {
                for (relative, link) in repo.list_files(*commit, prefix)? {
                    listed.push(Listed { relative, link });
                }
            }
        }
        Ok(listed)
    }

    fn read(&self, settings: &Settings, relative: &str) -> Result<Vec<u8>, String> {
        match self {
            Tree::Work => std::fs::read(settings.root.join(relative)).map_err(|e| e.to_string()),
            Tree::Git {
                repo,
                commit,
                prefix,
            } => {
                let path = in_prefix(prefix, relative);
                repo.blob_at(*commit, &path)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("not in the base commit {commit}"))
            }
        }
    }

    /// Where the symbolic link `relative` leads, relative to the root, when that stays
    /// inside it; otherwise why keyroll refuses the link.
    fn follow_link(
        &self,
        settings: &Settings,
        relative: &str,
        all: &BTreeSet<String>,
        links: &BTreeSet<&str>,
    ) -> Result<String, String> {
        let outside = |target: &str| {
            format!(
                "is a symbolic link to {target}, outside keyroll.toml's folder; keyroll does not write outside it"
            )
        };
        match self {
            Tree::Work => {
                let root = std::fs::canonicalize(&settings.root).map_err(|e| e.to_string())?;
                let real = std::fs::canonicalize(settings.root.join(relative))
                    .map_err(|_| "is a symbolic link to a file that does not exist".to_string())?;
                if let Some(why) = super::paths::not_a_file(&real) {
                    return Err(why);
                }
                match real.strip_prefix(&root) {
                    Ok(inside) => Ok(inside.to_string_lossy().replace('\\', "/")),
                    Err(_) => Err(outside(&real.display().to_string())),
                }
            }
            Tree::Git { .. } => {
                let mut at = relative.to_string();
                for _ in 0..40 {
                    let target = String::from_utf8_lossy(&self.read(settings, &at)?).into_owned();
                    let dir = at.rsplit_once('/').map_or("", |(d, _)| d);
                    at = join_relative(dir, &target).map_err(|_| outside(&target))?;
                    if !links.contains(at.as_str()) {
                        return if all.contains(&at) {
                            Ok(at)
                        } else {
                            Err(format!(
                                "is a symbolic link to {target}, which the commit does not hold"
                            ))
                        };
                    }
                }
                Err("is a chain of symbolic links too long to follow".into())
            }
        }
    }

    /// keyroll.lock as the tree holds it.
    pub fn lock(&self, settings: &Settings) -> Result<Lock, LoadError> {
        let path = settings.root.join(crate::model::lock::FILE_NAME);
        match self {
            Tree::Work => Ok(Lock::load(&path)?),
            Tree::Git { .. } => match self.read(settings, crate::model::lock::FILE_NAME) {
                Ok(bytes) => Ok(Lock::parse(&path, &String::from_utf8_lossy(&bytes))?),
                Err(_) => Ok(Lock::default()),
            },
        }
    }
}

/// Reads and scans the files the targets name (globs relative to keyroll.toml's folder,
/// matched ignoring case as Windows does; `bin/`, `obj/` and `.gitignore`d files skipped),
/// following `configSource` fragments, which inherit their parent's targets.
pub fn load_targets(
    settings: &Settings,
    rules: &RuleSet,
    tree: &Tree<'_>,
) -> Result<(Vec<TargetFile>, Vec<String>), LoadError> {
    let listed = tree.list(settings)?;
    let all: BTreeSet<String> = listed.iter().map(|l| l.relative.clone()).collect();
    let links: BTreeSet<&str> = listed
        .iter()
        .filter(|l| l.link)
        .map(|l| l.relative.as_str())
        .collect();
    let (mut queue, matched_any) = matched_by_globs(settings, &listed);
    queue_transforms(&mut queue, &listed);
    let warnings = unmatched_globs(settings, &matched_any);

    let mut files: BTreeMap<String, TargetFile> = BTreeMap::new();
    while let Some((relative, targets)) = queue.pop_front() {
        // A link whose target stays inside the root is edited through: the file loaded (and
        // written) is its target, so the link stays a link (and a target reached both ways
        // is one file). Its configSource references resolve from the target's folder. A link
        // leaving the root is refused.
        let (relative, refused) = if links.contains(relative.as_str()) {
            match tree.follow_link(settings, &relative, &all, &links) {
                Ok(real) => (real, None),
                Err(why) => (relative, Some(why)),
            }
        } else {
            (relative, None)
        };
        if let Some(seen) = files.get_mut(&relative) {
            for t in targets {
                if !seen.targets.contains(&t) {
                    seen.targets.push(t);
                }
            }
            continue;
        }
        let (file, fragments) = read_target(
            settings,
            rules,
            tree,
            &all,
            relative.clone(),
            targets,
            refused,
        );
        for fragment in fragments {
            queue.push_back((fragment, file.targets.clone()));
        }
        files.insert(relative, file);
    }
    Ok((files.into_values().collect(), warnings))
}

/// The listed files (build output skipped) each target's globs match, in listing order, with
/// the targets matching each, and whether each target matched anything.
fn matched_by_globs(
    settings: &Settings,
    listed: &[Listed],
) -> (VecDeque<(String, Vec<usize>)>, Vec<bool>) {
    let matchers = target_matchers(settings);
    let mut matched_any = vec![false; settings.targets.len()];
    let mut queue: VecDeque<(String, Vec<usize>)> = VecDeque::new();
    for l in listed.iter().filter(|l| !in_build_output(&l.relative)) {
        let targets: Vec<usize> = matchers
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_match(&l.relative))
            .map(|(i, _)| i)
            .collect();
        for &t in &targets {
            matched_any[t] = true;
        }
        if !targets.is_empty() {
            queue.push_back((l.relative.clone(), targets));
        }
    }
    (queue, matched_any)
}

/// Queues each matched base config's transforms with the base's targets.
fn queue_transforms(queue: &mut VecDeque<(String, Vec<usize>)>, listed: &[Listed]) {
    // A base config's transforms (`Web.Release.config` beside `Web.config`) decide what the
    // app trusts once published: they go with the base, whatever the globs say.
    let bases: Vec<(String, Vec<usize>)> = queue.iter().cloned().collect();
    for (base, targets) in bases {
        for sibling in transforms_of(&base, listed) {
            if !queue.iter().any(|(q, _)| *q == sibling) {
                queue.push_back((sibling, targets.clone()));
            }
        }
    }
}

/// Reads and scans one target file (`relative`, a link already followed), and resolves its
/// `configSource` references: the fragments found are returned for the caller to queue with
/// the same targets. `refused` is why the file was refused so far (a link leaving the root).
fn read_target(
    settings: &Settings,
    rules: &RuleSet,
    tree: &Tree<'_>,
    all: &BTreeSet<String>,
    relative: String,
    targets: Vec<usize>,
    mut refused: Option<String>,
) -> (TargetFile, Vec<String>) {
    let path = settings.root.join(&relative);
    // A refused link is not read through (its target lies outside, or nowhere; in a commit
    // its blob is the link's text), and an unreadable file is not parsed as empty: the
    // refusal is the one error said of it, not followed by "malformed XML".
    let bytes = match refused {
        Some(_) => None,
        None => match tree.read(settings, &relative) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                refused = Some(format!("cannot be read: {e}"));
                None
            }
        },
    };
    let Some(bytes) = bytes else {
        let file = TargetFile {
            file: ConfigFile::unread(relative.clone().into(), Vec::new()),
            targets,
            display: relative,
            path,
            refused,
        };
        return (file, Vec::new());
    };
    let mut file = scan::parse_config(
        std::path::Path::new(&relative),
        bytes,
        rules,
        &KnownCertificates::default(),
    );
    let dir = relative.rsplit_once('/').map_or("", |(d, _)| d);
    let mut fragments = Vec::new();
    for at in file.config_source_refs.clone() {
        let resolved = resolve_fragment(settings, tree, all, dir, &at.reference);
        match resolved {
            Ok(fragment) => {
                file.config_sources.push(settings.root.join(&fragment));
                fragments.push(fragment);
            }
            Err(e) => file.config_source_problem(&at, &e),
        }
    }
    let file = TargetFile {
        file,
        targets,
        display: relative,
        path,
        refused,
    };
    (file, fragments)
}

/// One glob set per target, matched ignoring case as Windows does.
fn target_matchers(settings: &Settings) -> Vec<globset::GlobSet> {
    settings
        .targets
        .iter()
        .map(|t| {
            let mut set = globset::GlobSetBuilder::new();
            for g in &t.files {
                // Checked when keyroll.toml was read.
                if let Ok(glob) = globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .case_insensitive(true)
                    .build()
                {
                    set.add(glob);
                }
            }
            set.build().unwrap_or_else(|_| globset::GlobSet::empty())
        })
        .collect()
}

/// A target whose globs match no file is likely a typo: a warning naming its line.
fn unmatched_globs(settings: &Settings, matched_any: &[bool]) -> Vec<String> {
    matched_any
        .iter()
        .enumerate()
        .filter(|(_, matched)| !**matched)
        .map(|(i, _)| {
            let files = &settings.targets[i].files;
            format!(
                "{}:{}: target files = {:?} match no file under {}",
                settings.path.display(),
                settings.line_of(&format!(
                    "\"{}\"",
                    files.first().cloned().unwrap_or_default()
                )),
                files,
                settings.root.display()
            )
        })
        .collect()
}

/// A `configSource` reference of the file in folder `dir`, as the app's host resolves it:
/// among the tree's files (ignoring case when the exact name is missing), else — in the
/// work tree — on disk (a `.gitignore`d fragment the app still reads), never outside the root.
fn resolve_fragment(
    settings: &Settings,
    tree: &Tree<'_>,
    all: &BTreeSet<String>,
    dir: &str,
    reference: &str,
) -> Result<String, PathError> {
    let rel = config_source(dir, reference)?;
    match resolve_in_list(all, &rel, reference) {
        Err(PathError::Missing { .. }) if matches!(tree, Tree::Work) => {
            let found = paths::resolve_on_disk(&settings.root, &rel, reference)?;
            let root = std::fs::canonicalize(&settings.root).unwrap_or(settings.root.clone());
            match std::fs::canonicalize(&found) {
                Ok(real) if real.starts_with(&root) => Ok(found
                    .strip_prefix(&settings.root)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or(rel)),
                _ => Err(PathError::Outside {
                    reference: reference.to_string(),
                }),
            }
        }
        other => other,
    }
}

/// `Web.<Configuration>.config` / `App.<Configuration>.config` beside a `Web.config` /
/// `App.config` (names compared ignoring case, as Visual Studio and msbuild do).
fn transforms_of(base: &str, listed: &[Listed]) -> Vec<String> {
    let (dir, name) = base.rsplit_once('/').map_or(("", base), |(d, n)| (d, n));
    let lower = name.to_ascii_lowercase();
    let Some(stem) = lower.strip_suffix(".config") else {
        return Vec::new();
    };
    if stem != "web" && stem != "app" {
        return Vec::new();
    }
    listed
        .iter()
        .filter(|l| !l.link)
        .filter_map(|l| {
            let (d, n) = l
                .relative
                .rsplit_once('/')
                .map_or(("", l.relative.as_str()), |(d, n)| (d, n));
            let n = n.to_ascii_lowercase();
            let middle = n
                .strip_prefix(stem)?
                .strip_prefix('.')?
                .strip_suffix(".config")?;
            (d == dir && !middle.is_empty() && !middle.contains('.')).then(|| l.relative.clone())
        })
        .collect()
}

/// A path relative to keyroll.toml's folder as the commit holds it: under `prefix`, that
/// folder's path in the repository ("" at its root).
pub fn in_prefix(prefix: &str, relative: &str) -> String {
    if prefix.is_empty() {
        relative.to_string()
    } else {
        format!("{prefix}/{relative}")
    }
}
