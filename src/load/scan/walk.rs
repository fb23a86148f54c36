//! Walking paths for `keyroll scan`: which files to read, `configSource` followed on disk.
//!
//! The walk runs on every core (the `ignore` crate's parallel walker, as ripgrep's): each
//! walker thread reads, filters and parses the files it finds. Threads finish in any order,
//! so everything they return is put in a fixed order afterwards (display path, then error
//! text) before duplicates are dropped and `configSource` references followed: the result
//! and the errors are the same on every run and for every thread count.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;
use crate::model::paths::PathError;
use crate::model::rules::RuleSet;

/// Follows a file's `configSource` references on disk, under the nearest repository root.
/// `absolute` is the file's canonical path.
fn resolve_config_sources_on_disk(file: &mut ConfigFile, absolute: &Path) {
    // Most files delegate nothing: no repository root to look up, no path to resolve.
    if file.config_source_refs.is_empty() {
        return;
    }
    let root = repository_root_of_canonical(absolute);
    let dir = absolute
        .parent()
        .and_then(|d| d.strip_prefix(&root).ok())
        .map(|d| d.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    let file_dir = file.path.parent().unwrap_or(Path::new("")).to_path_buf();
    for at in std::mem::take(&mut file.config_source_refs) {
        let resolved = crate::model::paths::config_source(&dir, &at.reference)
            .and_then(|rel| crate::load::paths::resolve_on_disk(&root, &rel, &at.reference))
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
    repository_root_of_canonical(&absolute)
}

fn repository_root_of_canonical(absolute: &Path) -> PathBuf {
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
/// skipped), on every core; reads every file a rule applies to, and follows `configSource`
/// references. A path named explicitly is read even if no rule's file pattern matches it.
///
/// Files come back in path order. A path that cannot be read or walked fails the scan; every
/// such path is named, in path order.
pub fn scan_paths(
    paths: &[PathBuf],
    rules: &RuleSet,
    known: &KnownCertificates,
) -> Result<ScanResult, ScanError> {
    scan_paths_with_threads(paths, rules, known, 0)
}

/// [`scan_paths`] with a chosen number of walker threads: 0 lets the walker choose (one per
/// core), 1 walks sequentially on this thread: the reference the parallel walk is tested
/// against, as both must give the same result.
pub fn scan_paths_with_threads(
    paths: &[PathBuf],
    rules: &RuleSet,
    known: &KnownCertificates,
    threads: usize,
) -> Result<ScanResult, ScanError> {
    let reader = Reader {
        rules,
        known,
        needles: prefilter_needles(rules),
        names: std::sync::Arc::new(FileNames::new(rules)),
    };
    // A path named on the command line must exist: nothing is walked otherwise.
    let mut roots = Vec::new();
    let mut missing = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) => roots.push((path, meta.is_file())),
            Err(e) => missing.push(unreadable(path, e)),
        }
    }
    if !missing.is_empty() {
        return Err(ScanError::of(missing));
    }

    let found = Found::default();
    for (path, is_file) in roots {
        if is_file {
            found.add(reader.read(path, None));
        } else {
            walk(path, threads, &reader, &found);
        }
    }
    let (mut reads, mut errors, sources) = found.into_inner();

    // Threads return files in any order: sort them before a duplicate (the same file reached
    // by two paths named on the command line) is dropped, so the same path is kept each time.
    reads.sort_by_cached_key(|read| PathOrder::of(&read.file.path));
    let mut seen: HashSet<PathBuf> = HashSet::with_capacity(reads.len());
    let mut result = ScanResult::default();
    let mut follow: VecDeque<PathBuf> = VecDeque::new();
    for read in reads {
        if seen.insert(read.canonical) {
            follow.extend(read.file.config_sources.iter().cloned());
            result.files.push(read.file);
        }
    }
    // `configSource` targets the walk did not read (build output, ignored, or matched by no
    // rule's file pattern), and theirs in turn. Few, so read here, in order.
    while let Some(path) = follow.pop_front() {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.contains(&canonical) {
            continue;
        }
        match reader.read(&path, Some(canonical.clone())) {
            Ok(Some(read)) => {
                seen.insert(read.canonical);
                follow.extend(read.file.config_sources.iter().cloned());
                result.files.push(read.file);
            }
            Ok(None) => {
                seen.insert(canonical);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ScanError::of(errors));
    }
    report_databases(&mut result, super::databases::find(sources));
    result
        .files
        .sort_by_cached_key(|file| PathOrder::of(&file.path));
    Ok(result)
}

/// Walks one folder, handing each file a rule applies to to `reader` on the walker's thread.
fn walk(root: &Path, threads: usize, reader: &Reader, found: &Found) {
    // The walker follows no symlink, so below the root's real path each path it yields is
    // real already: no per-file `canonicalize` (a `readlink` per path component).
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let read = |path: &Path, is_link: bool| {
        if is_link {
            if !path.file_name().is_some_and(|n| reader.names.matches(n)) {
                return;
            }
            return found.add(reader.link(path, root, &real_root));
        }
        // The database search's sources (`*.cs`, `*.sql`, `*.config`) come from this walk
        // too: one listing of the tree, not two.
        let name = path.file_name().unwrap_or_default();
        if super::databases::wanted(name) {
            found.source(path);
        }
        if !reader.names.matches(name) {
            return;
        }
        let real = path
            .strip_prefix(root)
            .map(|below| real_root.join(below))
            .ok();
        found.add(reader.read(path, real));
    };
    // On Unix, the walk that asks a name before anything else (tree.rs); one thread keeps
    // the `ignore` crate's sequential walker, the reference the tests hold it to.
    #[cfg(unix)]
    if threads != 1 {
        let names = &reader.names;
        return super::tree::walk(
            root,
            threads,
            &|name| names.matches(name) || super::databases::wanted(name),
            &is_skipped_dir,
            &|path, is_link| read(&path, is_link),
            &|path, e| found.fail(unreadable(path, innermost(&e))),
        );
    }
    let names = reader.names.clone();
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .require_git(false)
        .threads(threads)
        .filter_entry(move |entry| match entry.file_type() {
            Some(t) if t.is_dir() => !is_skipped_dir(entry.file_name()),
            // Settled here, not in the visitor: a file dropped by the filter is never queued
            // for a walker thread (a queue push and pop for each of a tree's files).
            Some(t) if t.is_file() || t.is_symlink() => {
                names.matches(entry.file_name()) || super::databases::wanted(entry.file_name())
            }
            _ => true,
        });
    let visit = |entry: Result<ignore::DirEntry, ignore::Error>| match entry {
        Ok(entry) => match entry.file_type() {
            Some(t) if t.is_file() => read(entry.path(), false),
            // Not followed (the walker follows no link): reported when it leads out of
            // the folder or nowhere, as on the other walk.
            Some(t) if t.is_symlink() => read(entry.path(), true),
            _ => {}
        },
        // Kept to report, not to stop the walk: which error a thread meets first varies.
        Err(e) => found.fail(walk_error(root, e)),
    };
    if threads == 1 {
        builder.build().for_each(visit);
    } else {
        builder.build_parallel().run(|| {
            Box::new(|entry| {
                visit(entry);
                ignore::WalkState::Continue
            })
        });
    }
}

/// A key that sorts paths exactly as `Path`'s own order (component by component), compared
/// as plain bytes: thousands of files are sorted twice per scan, and comparing `Path`s parses
/// both into components at each of the sort's comparisons.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PathOrder {
    /// Each component as a tag in `Component`'s order (root, `.`, `..`, a name) then, for a
    /// name, its bytes; each component ends with a zero byte, which no Unix name holds, so a
    /// name sorts before every longer name it begins.
    #[cfg(unix)]
    Bytes(Vec<u8>),
    /// Elsewhere (drive prefixes, two separators) the path itself.
    #[cfg_attr(unix, allow(dead_code))]
    Path(PathBuf),
}

impl PathOrder {
    fn of(path: &Path) -> Self {
        #[cfg(unix)]
        {
            use std::path::Component;
            let mut key = Vec::with_capacity(path.as_os_str().len() + 8);
            for component in path.components() {
                match component {
                    // No prefix on Unix; kept in `Component`'s order all the same.
                    Component::Prefix(_) => return PathOrder::Path(path.to_path_buf()),
                    Component::RootDir => key.push(1),
                    Component::CurDir => key.push(2),
                    Component::ParentDir => key.push(3),
                    Component::Normal(name) => {
                        key.push(4);
                        key.extend_from_slice(name.as_encoded_bytes());
                    }
                }
                key.push(0);
            }
            PathOrder::Bytes(key)
        }
        #[cfg(not(unix))]
        PathOrder::Path(path.to_path_buf())
    }
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> ScanError {
    ScanError::Unreadable {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Build output: never walked into (any ASCII case).
fn is_skipped_dir(name: &std::ffi::OsStr) -> bool {
    SKIPPED_DIRS.iter().any(|d| name.eq_ignore_ascii_case(d))
}

/// The innermost cause of an error: what went wrong, without the wrappers that name the
/// path again.
fn innermost<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> &'e (dyn std::error::Error + 'static) {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause
}

/// The path the walker could not list or read, and why. The sequential and the parallel
/// walker wrap the same I/O error in path and depth differently; this message is the same.
fn walk_error(root: &Path, e: ignore::Error) -> ScanError {
    let mut path = None;
    let mut err = &e;
    loop {
        match err {
            ignore::Error::WithPath {
                path: p,
                err: inner,
            } => {
                path.get_or_insert(p.as_path());
                err = inner;
            }
            ignore::Error::WithDepth { err: inner, .. }
            | ignore::Error::WithLineNumber { err: inner, .. } => err = inner,
            _ => break,
        }
    }
    let path = path.unwrap_or(root);
    // The sequential walker's I/O error wraps one that names the path again: the innermost
    // error says what went wrong.
    let cause: &(dyn std::error::Error + 'static) = match err {
        ignore::Error::Io(io) => io,
        other => other,
    };
    unreadable(path, innermost(cause))
}

/// What reading one file needs; shared by the walker threads.
struct Reader<'a> {
    rules: &'a RuleSet,
    known: &'a KnownCertificates,
    needles: aho_corasick::AhoCorasick,
    /// Shared with the walker's entry filter, which must own what it holds.
    names: std::sync::Arc<FileNames>,
}

/// The file names some rule applies to, tested for every file walked. A pattern `*.ext`
/// (every built-in rule's) is a suffix compared without regard to ASCII case; any other
/// pattern goes to the rule's glob.
struct FileNames {
    suffixes: Vec<String>,
    globbed: Vec<std::sync::Arc<crate::model::rules::Rule>>,
}

impl FileNames {
    fn new(rules: &RuleSet) -> Self {
        let mut suffixes: Vec<String> = Vec::new();
        let mut globbed = Vec::new();
        for rule in &rules.rules {
            let rule_suffixes: Option<Vec<&str>> =
                rule.spec.files.iter().map(|p| plain_suffix(p)).collect();
            match rule_suffixes {
                Some(more) => suffixes.extend(more.into_iter().map(str::to_string)),
                None => globbed.push(rule.clone()),
            }
        }
        suffixes.sort_unstable();
        suffixes.dedup();
        FileNames { suffixes, globbed }
    }

    fn matches(&self, name: &std::ffi::OsStr) -> bool {
        let bytes = name.as_encoded_bytes();
        self.suffixes.iter().any(|suffix| {
            bytes.len() >= suffix.len()
                && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
        }) || (!self.globbed.is_empty() && {
            let name = name.to_string_lossy();
            self.globbed.iter().any(|rule| rule.applies_to_file(&name))
        })
    }
}

/// `ext` of a pattern `*ext` whose glob, case-insensitive, matches exactly the names ending
/// in `ext` in any ASCII case: `ext` holds no glob syntax, and only ASCII characters that
/// no other character folds to (Unicode folds K (U+212A) to k and ſ (U+017F) to s).
fn plain_suffix(pattern: &str) -> Option<&str> {
    let suffix = pattern.strip_prefix('*')?;
    let plain = |c: char| {
        (c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '+' | '=' | '@'))
            && !matches!(c, 'k' | 'K' | 's' | 'S')
    };
    suffix.chars().all(plain).then_some(suffix)
}

/// A file read and parsed, with its canonical path (to read each file once).
struct Read {
    canonical: PathBuf,
    file: ConfigFile,
}

impl Reader<'_> {
    /// Reads and parses `path`, or None when it cannot hold an entry (none of the words an
    /// entry needs).
    /// `real` is the file's canonical path when the caller knows it.
    fn read(&self, path: &Path, real: Option<PathBuf>) -> Result<Option<Read>, ScanError> {
        let bytes = read_small(path).map_err(|e| unreadable(path, e))?;
        // UTF-16 holds zero bytes but is text: it reaches the parser, which reads it. Any
        // other file with a zero byte (UTF-32, binary) is one a rule names that no one can
        // read as XML: the parser reports it, as `plan` does, rather than the scan passing
        // over it without a word (its needles would not match, spread over zero bytes).
        let relevant = match TextEncoding::decode_utf16(&bytes) {
            _ if TextEncoding::is_utf32(&bytes) => true,
            Some((_, text)) => self.needles.is_match(&text) || text.contains(&0),
            None => is_binary(&bytes) || self.needles.is_match(&bytes),
        };
        if !relevant {
            return Ok(None);
        }
        let canonical = real
            .unwrap_or_else(|| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
        let display = clean_display_path(path);
        let mut file = parse_config(&display, bytes, self.rules, self.known);
        resolve_config_sources_on_disk(&mut file, &canonical);
        Ok(Some(Read { canonical, file }))
    }
}

impl Reader<'_> {
    /// A symbolic link the walk met (links are not followed). One that leads out of the
    /// folder walked (`real_root`, canonical), to nothing, or to what is no regular file, is
    /// reported as `plan` reports such a target file: an error naming the file and where it leads, never a silent
    /// skip. One that stays inside leads to a file read as `plan` reads it, under the
    /// target's own path (`root` joined with where it lies below `real_root`): the walk may
    /// never read that file itself (a name no rule matches, an ignored or build folder), and
    /// reached both ways it is one file.
    fn link(&self, path: &Path, root: &Path, real_root: &Path) -> Result<Option<Read>, ScanError> {
        let why = match std::fs::canonicalize(path) {
            Err(_) => "is a symbolic link to a file that does not exist".to_string(),
            // A folder, FIFO or device is never opened (the walk opens regular files only).
            Ok(real) => match crate::load::paths::not_a_file(&real) {
                Some(why) => why,
                None => match real.strip_prefix(real_root) {
                    Ok(below) => return self.read(&root.join(below), Some(real.clone())),
                    Err(_) => format!(
                        "is a symbolic link to {}, outside the folder scanned; keyroll does not read or write outside it",
                        real.display()
                    ),
                },
            },
        };
        let display = clean_display_path(path);
        let problem = FileProblem {
            file: display.clone(),
            line: 1,
            column: 1,
            finding: Finding::new(Code::UnfollowedLink, Severity::Error, why),
        };
        Ok(Some(Read {
            canonical: path.to_path_buf(),
            file: ConfigFile::unread(display, vec![problem]),
        }))
    }
}

/// What the walker threads found, gathered in whatever order they finish.
#[derive(Default)]
struct Found {
    reads: Mutex<Vec<Read>>,
    errors: Mutex<Vec<ScanError>>,
    /// Sources showing a database-held registry ([`super::databases`]), met on the same walk.
    sources: Mutex<Vec<(PathBuf, String)>>,
}

impl Found {
    fn add(&self, read: Result<Option<Read>, ScanError>) {
        match read {
            Ok(Some(read)) => self
                .reads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(read),
            Ok(None) => {}
            Err(e) => self.fail(e),
        }
    }

    fn fail(&self, e: ScanError) {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    /// A source file the database search may need (read only if its name says so).
    fn source(&self, path: &Path) {
        if let Some(kept) = super::databases::source(path) {
            self.sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(kept);
        }
    }

    fn into_inner(self) -> (Vec<Read>, Vec<ScanError>, Vec<(PathBuf, String)>) {
        (
            self.reads.into_inner().unwrap_or_else(|p| p.into_inner()),
            self.errors.into_inner().unwrap_or_else(|p| p.into_inner()),
            self.sources.into_inner().unwrap_or_else(|p| p.into_inner()),
        )
    }
}

/// The whole file, as `std::fs::read`, without asking its size first: configs are small, and
/// that `statx` was one of five system calls per file on a walk of thousands.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    /// `File`'s own `read_to_end` asks the size first; through this, reads until the end.
    struct Plain(std::fs::File);
    impl Read for Plain {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    let mut bytes = Vec::with_capacity(16 * 1024);
    Plain(std::fs::File::open(path)?).read_to_end(&mut bytes)?;
    bytes.shrink_to_fit();
    Ok(bytes)
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

/// A database-held registry is a finding where the repository shows it: on each config whose
/// `issuerNameRegistry` names it, else on the source that defines it (a file with no
/// thumbprint of its own, listed for the finding only).
fn report_databases(result: &mut ScanResult, found: Vec<super::databases::DatabaseRegistry>) {
    for registry in &found {
        let finding = Finding::new(
            Code::DatabaseRegistry,
            Severity::Warning,
            registry.message(),
        );
        let mut places: Vec<(PathBuf, u32)> = registry.configs.clone();
        if places.is_empty() {
            places.push((registry.file.clone(), registry.line));
        }
        for (path, line) in places {
            let problem = FileProblem {
                file: path.clone(),
                line,
                column: 1,
                finding: finding.clone(),
            };
            match result.files.iter_mut().find(|f| f.path == path) {
                Some(file) => file.problems.push(problem),
                None => result.files.push(ConfigFile::unread(path, vec![problem])),
            }
        }
    }
    result.databases = found;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    proptest::proptest! {
        /// The sort key orders paths exactly as `Path` does, on paths made of the pieces that
        /// tell the two apart: separators (doubled, trailing), `.`, `..`, a root, names that
        /// begin one another, and bytes on either side of `/` and of the zero terminator.
        #[test]
        fn path_order_is_paths_order(
            a in "(/)?((\\.|\\.\\.|a|ab|a\\.b|-|\\x01|a\\x01|é|b)(//?))*(a|b|ab|\\.)?",
            b in "(/)?((\\.|\\.\\.|a|ab|a\\.b|-|\\x01|a\\x01|é|b)(//?))*(a|b|ab|\\.)?",
        ) {
            let (a, b) = (Path::new(&a), Path::new(&b));
            proptest::prop_assert_eq!(PathOrder::of(a).cmp(&PathOrder::of(b)), a.cmp(b));
        }
    }

    fn rules_with_files(patterns: &[&str]) -> RuleSet {
        let text = include_str!("../../../rules/appsettings.toml")
            .replace("files = [\"*.config\"]", &format!("files = {patterns:?}"));
        RuleSet {
            rules: vec![Arc::new(
                crate::model::rules::parse_rule("test", &text).unwrap(),
            )],
        }
    }

    #[test]
    fn plain_suffixes_are_the_patterns_whose_glob_is_an_ascii_case_suffix() {
        assert_eq!(plain_suffix("*.config"), Some(".config"));
        assert_eq!(plain_suffix("*.Config"), Some(".Config"));
        for globbed in [
            "web.config",
            "*.c?nfig",
            "*.[cC]onfig",
            "*.{config,xml}",
            "**/x",
        ] {
            assert_eq!(plain_suffix(globbed), None, "{globbed}");
        }
        // Unicode case folding makes these match more than ASCII case does.
        assert_eq!(plain_suffix("*.sk"), None);
        assert_eq!(plain_suffix("*.XS"), None);
    }

    /// The fast path decides as the rule's glob does, name by name.
    #[test]
    fn file_names_match_exactly_what_the_rules_globs_match() {
        let names = [
            "Web.config",
            "WEB.CONFIG",
            "app.Config",
            ".config",
            "config",
            "web.config.bak",
            "web.configx",
            "App.dll.config",
            "trust.xml",
            "TRUST.XML",
            "web.cönfig",
            "Web.config\u{feff}",
            "mask.sk",
            "mask.\u{212A}",
        ];
        for patterns in [
            &["*.config"][..],
            &["*.CONFIG", "*.xml"],
            &["web.config"],
            &["*.config", "trust.?ml"],
            &["*.k"],
        ] {
            let rules = rules_with_files(patterns);
            let fast = FileNames::new(&rules);
            for name in names {
                assert_eq!(
                    fast.matches(std::ffi::OsStr::new(name)),
                    rules.applies_to_file(name),
                    "{name} with {patterns:?}"
                );
            }
        }
    }
}
