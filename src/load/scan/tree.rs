//! The walk over a folder on Unix: the files a rule may read, skipping what ripgrep skips.
//!
//! The `ignore` crate's walker (ripgrep's) decides every entry of every folder: it makes a
//! path, matches it against the ignore rules and checks whether it is hidden before the
//! caller's filter sees its name. A repository of 100,000 files holds a few thousand a rule
//! reads, so most of that work decides files nobody asked for (three quarters of the walk's
//! own CPU on bench/run's tree). This walk asks the name first and applies the same rules,
//! with the crate's own matchers (`ignore::gitignore::Gitignore`), only to folders and to the
//! files whose name a rule reads:
//! - `.ignore` before `.gitignore` before `.git/info/exclude` before the global excludes file,
//!   each decided by the deepest folder whose file has a matching line (a `!` line
//!   whitelists); the walked folders first, then the root's own parent folders, matched on the
//!   absolute path; ignore rules apply with or without a repository, across nested ones;
//! - a name beginning with `.` is hidden unless a rule whitelists it;
//! - symbolic links below the root are not followed (a link with a wanted name is handed
//!   over as one, for the caller to report where it leads); a folder that cannot be
//!   listed, or an entry whose type cannot be read, is an error naming it; an ignore file that
//!   cannot be read or holds a bad line is passed over, as the crate does.
//!
//! Elsewhere (Windows marks hidden files by attribute) the crate's walker runs; it is also
//! the reference `tests/scan_walk.rs` holds this walk to, on generated trees.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The ignore files of one folder, and its parent's.
struct Rules {
    ignore: Gitignore,
    git: Gitignore,
    exclude: Gitignore,
    parent: Option<Arc<Rules>>,
}

impl Rules {
    fn is_empty(&self) -> bool {
        self.ignore.is_empty() && self.git.is_empty() && self.exclude.is_empty()
    }

    /// The rules of `dir`, given which ignore files its listing holds (None: look for each).
    fn of(dir: &Path, parent: Option<Arc<Rules>>, listed: Option<&Listed>) -> Rules {
        let ignore = if listed.is_none_or(|l| l.ignore) {
            read_ignore(dir, dir, ".ignore")
        } else {
            Gitignore::empty()
        };
        let git = if listed.is_none_or(|l| l.gitignore) {
            read_ignore(dir, dir, ".gitignore")
        } else {
            Gitignore::empty()
        };
        let exclude = if listed.is_none_or(|l| l.git) {
            let git_type = dir.join(".git").metadata().ok().map(|m| m.file_type());
            match git_common_dir(dir, git_type) {
                Some(git_dir) => read_ignore(dir, &git_dir, "info/exclude"),
                None => Gitignore::empty(),
            }
        } else {
            Gitignore::empty()
        };
        Rules {
            ignore,
            git,
            exclude,
            parent,
        }
    }
}

/// Which ignore files a folder's listing holds.
#[derive(Default)]
struct Listed {
    ignore: bool,
    gitignore: bool,
    git: bool,
}

/// One ignore file, matched relative to `dir`. A file that is missing or cannot be read, a
/// bad line, a set that does not build: passed over, as the `ignore` crate does.
fn read_ignore(dir: &Path, dir_of_file: &Path, name: &str) -> Gitignore {
    let path = dir_of_file.join(name);
    if !path.exists() {
        return Gitignore::empty();
    }
    let mut builder = GitignoreBuilder::new(dir);
    let _ = builder.add(path);
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

/// The git folder holding `info/exclude` for a folder with a `.git` (a worktree's `.git`
/// file names its git folder, whose `commondir` names the shared one), as the `ignore` crate
/// finds it.
fn git_common_dir(dir: &Path, git_type: Option<std::fs::FileType>) -> Option<PathBuf> {
    use std::io::BufRead;
    let git = dir.join(".git");
    if !git_type.is_some_and(|t| t.is_file()) {
        return Some(git);
    }
    let first_line = |path: &Path| -> Option<String> {
        let file = std::fs::File::open(path).ok()?;
        std::io::BufReader::new(file).lines().next()?.ok()
    };
    let line = first_line(&git)?;
    let real = PathBuf::from(line.strip_prefix("gitdir: ")?);
    let common = first_line(&real.join("commondir"))?;
    Some(if common.starts_with('.') {
        real.join(common)
    } else {
        PathBuf::from(common)
    })
}

/// What every folder's matching shares: the root's parent folders and the global excludes.
struct Above {
    /// The root's parent folders' rules (deepest first), matched on absolute paths.
    parents: Option<(PathBuf, Arc<Rules>)>,
    global: Gitignore,
}

impl Above {
    fn of(root: &Path) -> Above {
        let parents = std::fs::canonicalize(root).ok().and_then(|absolute| {
            let mut chain: Option<Arc<Rules>> = None;
            let mut any = false;
            let ancestors: Vec<&Path> = absolute.ancestors().skip(1).collect();
            for dir in ancestors.into_iter().rev() {
                let rules = Rules::of(dir, chain.take(), None);
                any |= !rules.is_empty();
                chain = Some(Arc::new(rules));
            }
            Some((absolute.clone(), chain?)).filter(|_| any)
        });
        let global = match std::env::current_dir() {
            Ok(cwd) => GitignoreBuilder::new(cwd).build_global().0,
            Err(_) => Gitignore::empty(),
        };
        Above { parents, global }
    }

    /// Whether `path` (below a folder whose rules are `rules`; `rel` below the root) is
    /// skipped: ignored, or hidden and not whitelisted.
    fn skips(&self, rules: &Rules, path: &Path, rel: &Path, is_dir: bool) -> bool {
        let path = strip_dot_slash(path);
        // Some(true): ignored, Some(false): whitelisted, per kind of ignore file.
        let mut found: [Option<bool>; 3] = [None; 3];
        let mut first = |chain: &Rules, path: &Path| {
            let mut node = Some(chain);
            while let Some(rules) = node {
                for (slot, matcher) in
                    found
                        .iter_mut()
                        .zip([&rules.ignore, &rules.git, &rules.exclude])
                {
                    if slot.is_none() {
                        *slot = verdict(matcher.matched(path, is_dir));
                    }
                }
                node = rules.parent.as_deref();
            }
        };
        first(rules, path);
        if let Some((absolute, parents)) = &self.parents {
            first(parents, &absolute.join(rel));
        }
        let [ignore, git, exclude] = found;
        match ignore
            .or(git)
            .or(exclude)
            .or_else(|| verdict(self.global.matched(path, is_dir)))
        {
            Some(ignored) => ignored,
            None => path
                .file_name()
                .is_some_and(|name| name.as_encoded_bytes().first() == Some(&b'.')),
        }
    }
}

fn verdict<T>(m: Match<T>) -> Option<bool> {
    match m {
        Match::None => None,
        Match::Ignore(_) => Some(true),
        Match::Whitelist(_) => Some(false),
    }
}

/// `ignore`'s own: a leading `./` is dropped before matching.
fn strip_dot_slash(path: &Path) -> &Path {
    let bytes = path.as_os_str().as_encoded_bytes();
    match bytes.strip_prefix(b"./") {
        // SAFETY: split after an ASCII prefix of an `OsStr`'s own encoding.
        Some(rest) => Path::new(unsafe { OsStr::from_encoded_bytes_unchecked(rest) }),
        None => path,
    }
}

/// A folder to list: its path as walked, its path below the root, its parent's rules.
struct Work {
    dir: PathBuf,
    rel: PathBuf,
    rules: Option<Arc<Rules>>,
}

/// Folders waiting, and how many are being listed (the walk ends when both are none).
struct Queue {
    state: Mutex<(Vec<Work>, usize)>,
    ready: Condvar,
}

/// Walks `root` on `threads` threads, calling `file` with each regular file or symbolic
/// link (the flag: a link, which is not followed) whose name `wanted` accepts and the rules
/// keep, and `failed` with each folder or entry that cannot be read (its path and the error).
pub(super) fn walk(
    root: &Path,
    threads: usize,
    wanted: &(dyn Fn(&OsStr) -> bool + Sync),
    skipped_dir: &(dyn Fn(&OsStr) -> bool + Sync),
    file: &(dyn Fn(PathBuf, bool) + Sync),
    failed: &(dyn Fn(&Path, std::io::Error) + Sync),
) {
    // The root is walked even when named through a link (links below it are not followed).
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return,
        Err(e) => return failed(root, e),
    }
    let above = Above::of(root);
    let queue = Queue {
        state: Mutex::new((
            vec![Work {
                dir: root.to_path_buf(),
                rel: PathBuf::new(),
                rules: None,
            }],
            0,
        )),
        ready: Condvar::new(),
    };
    let run = || {
        while let Some(work) = next(&queue) {
            // Done with this folder even if listing it panics: the other threads then finish
            // instead of waiting for it, and the panic reaches the caller.
            let _listing = Listing(&queue);
            let more = list(&work, &above, wanted, skipped_dir, file, failed);
            queue
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .extend(more);
        }
    };
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(12))
    } else {
        threads
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(run);
        }
        run();
    });
}

/// A folder being listed: when dropped, it is done, and waiting threads look again (for the
/// folders it found, or for the end of the walk).
struct Listing<'q>(&'q Queue);

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1 -= 1;
        self.0.ready.notify_all();
    }
}

/// The next folder to list, or None when every folder has been listed.
fn next(queue: &Queue) -> Option<Work> {
    let mut state = queue.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(work) = state.0.pop() {
            state.1 += 1;
            return Some(work);
        }
        if state.1 == 0 {
            return None;
        }
        state = queue.ready.wait(state).unwrap_or_else(|p| p.into_inner());
    }
}

/// Lists one folder: its wanted files to `file`, its subfolders to walk returned.
fn list(
    work: &Work,
    above: &Above,
    wanted: &(dyn Fn(&OsStr) -> bool + Sync),
    skipped_dir: &(dyn Fn(&OsStr) -> bool + Sync),
    file: &(dyn Fn(PathBuf, bool) + Sync),
    failed: &(dyn Fn(&Path, std::io::Error) + Sync),
) -> Vec<Work> {
    let entries = match std::fs::read_dir(&work.dir) {
        Ok(entries) => entries,
        Err(e) => {
            failed(&work.dir, e);
            return Vec::new();
        }
    };
    let mut listed = Listed::default();
    // Name, is a folder, is a symbolic link.
    let mut kept: Vec<(std::ffi::OsString, bool, bool)> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                failed(&work.dir, e);
                continue;
            }
        };
        let name = entry.file_name();
        match name.as_encoded_bytes() {
            b".ignore" => listed.ignore = true,
            b".gitignore" => listed.gitignore = true,
            b".git" => listed.git = true,
            _ => {}
        }
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                failed(&work.dir.join(&name), e);
                continue;
            }
        };
        if file_type.is_dir() {
            if !skipped_dir(&name) {
                kept.push((name, true, false));
            }
        } else if (file_type.is_file() || file_type.is_symlink()) && wanted(&name) {
            // A link is handed over unfollowed: the caller says where it leads when that
            // is somewhere keyroll will not go, as `plan` does.
            kept.push((name, false, file_type.is_symlink()));
        }
    }
    let own = Rules::of(&work.dir, work.rules.clone(), Some(&listed));
    // A folder without ignore files matches as its parent does: share the parent's.
    let rules = match (own.is_empty(), &work.rules) {
        (true, Some(parent)) => parent.clone(),
        _ => Arc::new(own),
    };
    let mut more = Vec::new();
    for (name, is_dir, is_link) in kept {
        let path = work.dir.join(&name);
        let rel = work.rel.join(&name);
        if above.skips(&rules, &path, &rel, is_dir) {
            continue;
        }
        if is_dir {
            more.push(Work {
                dir: path,
                rel,
                rules: Some(rules.clone()),
            });
        } else {
            file(path, is_link);
        }
    }
    more
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic while listing one folder reaches the caller; the other threads do not wait
    /// for that folder forever.
    #[test]
    fn a_panic_on_one_thread_ends_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..20 {
            let sub = dir.path().join(format!("d{d}"));
            std::fs::create_dir_all(sub.join("deeper")).unwrap();
            std::fs::write(sub.join("Web.config"), "x").unwrap();
            std::fs::write(sub.join("deeper/Web.config"), "x").unwrap();
        }
        let root = dir.path().to_path_buf();
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let walked = std::panic::catch_unwind(|| {
                walk(
                    &root,
                    2,
                    &|_| true,
                    &|_| false,
                    &|path, _| {
                        if path.parent().is_some_and(|p| p.ends_with("d7")) {
                            panic!("reading {}", path.display());
                        }
                    },
                    &|_, _| {},
                )
            });
            let _ = done.send(walked.is_err());
        });
        let panicked = ended
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the walk ends");
        assert!(panicked, "the panic reaches the caller");
    }
}
