//! `scan`'s parallel walker: on a generated tree of a few thousand files (nested
//! `.gitignore`, hidden folders, build output, symlink loops, files that are not UTF-8), every
//! thread count gives the report and JSON of the sequential walk, byte for byte, run after
//! run, and reads exactly the files the walk rules select. Paths that cannot be read fail the
//! scan with the same error, naming each of them in path order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keyroll::load::scan::{KnownCertificates, ScanError, scan_paths_with_threads};
use keyroll::model::rules::RuleSet;

const NORDVALL: &str = "tests/data/configs/nordvall-mvc5-http.config";
const THUMBPRINT: &str = "18145fb6b5d96b3cc34ec7599f12172bb93c68ef";

/// A generated repository and the files a scan of it must read (absolute paths).
struct Tree {
    dir: tempfile::TempDir,
    expected: BTreeSet<PathBuf>,
}

impl Tree {
    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Writes a file the scan must not read.
    fn skipped(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        write(&self.dir.path().join(rel), bytes.as_ref());
    }

    /// Writes a file the scan must read.
    fn read(&mut self, rel: &str, bytes: impl AsRef<[u8]>) {
        let path = self.dir.path().join(rel);
        write(&path, bytes.as_ref());
        self.expected.insert(path);
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// 40 apps of about 80 files each: WIF configs (clean, dirty, duplicated), configs that are
/// UTF-16, not UTF-8 or not well-formed, sources, and configs the walk must skip.
fn generated_tree() -> Tree {
    let nordvall = std::fs::read_to_string(NORDVALL).unwrap();
    let mut tree = Tree {
        dir: tempfile::tempdir().unwrap(),
        expected: BTreeSet::new(),
    };
    tree.skipped(".gitignore", "ignored/\n*.generated.config\n");
    tree.skipped("ignored/Web.config", &nordvall);
    for a in 0..40 {
        let app = format!("src/App{a:02}");
        // A different thumbprint per file, some dirty or lowercase, so every file's findings
        // differ and a file swapped with another shows in the output.
        for c in 0..6 {
            let value = match (a + c) % 4 {
                0 => THUMBPRINT.to_string(),
                1 => format!("\u{200E}{THUMBPRINT}"),
                2 => format!("{:040X}", a * 100 + c),
                _ => format!("{:040x}", a * 100 + c),
            };
            let text = nordvall.replace(THUMBPRINT, &value);
            // File patterns match without regard to case.
            let name = if c == 0 {
                format!("{app}/Web.config")
            } else if c == 5 && a % 2 == 0 {
                format!("{app}/Legacy/WEB.CONFIG")
            } else {
                format!("{app}/Areas/Area{c}/Web.config")
            };
            tree.read(&name, text);
        }
        // Build output, in either case, and hidden files and folders.
        for skipped in ["bin", "obj", "Bin", "OBJ", ".vs", ".hidden/deep"] {
            tree.skipped(&format!("{app}/{skipped}/App.dll.config"), &nordvall);
        }
        tree.skipped(&format!("{app}/.secret.config"), &nordvall);
        // A nested .gitignore, and the root's pattern applied below it.
        tree.skipped(&format!("{app}/.gitignore"), "local/\n");
        tree.skipped(&format!("{app}/local/Web.config"), &nordvall);
        tree.skipped(&format!("{app}/App.generated.config"), &nordvall);
        // Matched by the file pattern but holding nothing to find: read, then dropped.
        tree.skipped(
            &format!("{app}/packages.config"),
            "<packages><package id=\"x\" /></packages>\n",
        );
        // Binary (or UTF-32): read, and reported as `plan` reports it.
        tree.read(&format!("{app}/blob.config"), b"\0\0thumbprint\0");
        // Text keyroll reports rather than reads past.
        match a % 4 {
            0 => {
                let mut utf16 = vec![0xFF, 0xFE];
                utf16.extend(nordvall.encode_utf16().flat_map(|u| u.to_le_bytes()));
                tree.read(&format!("{app}/Utf16.config"), utf16);
            }
            1 => {
                let mut latin1 = nordvall.clone().into_bytes();
                latin1.extend(b"<!-- caf\xE9 -->\n");
                tree.read(&format!("{app}/Latin1.config"), latin1);
            }
            2 => tree.read(
                &format!("{app}/Truncated.config"),
                &nordvall[..nordvall.find(THUMBPRINT).unwrap() + 10],
            ),
            _ => {}
        }
        for f in 0..60 {
            tree.skipped(
                &format!("{app}/Scripts/file{f}.js"),
                format!("// trustedIssuers {f}\n"),
            );
        }
    }
    // configSource into a folder the walk skips: followed all the same.
    tree.read(
        "src/App00/Shared.config",
        "<configuration>\n  <system.identityModel configSource=\"ignored\\identity.config\" />\n</configuration>\n",
    );
    let identity = nordvall
        .split_once("<system.identityModel>")
        .and_then(|(_, rest)| rest.split_once("</system.identityModel>"))
        .map(|(inner, _)| format!("<system.identityModel>{inner}</system.identityModel>\n"))
        .unwrap();
    tree.read("src/App00/ignored/identity.config", identity);
    tree.skipped("src/App00/.gitignore", "ignored/\nlocal/\n");
    #[cfg(unix)]
    {
        let root = tree.root();
        // Symlinks are not followed: a loop is not walked forever, a link to a config in the
        // tree is not read (its target is, where it lies); a dangling link is reported, as
        // `plan` reports it.
        std::os::unix::fs::symlink("..", root.join("src/App01/loop")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("src/App02/Areas/root")).unwrap();
        std::os::unix::fs::symlink("nowhere.config", root.join("src/App03/dangling.config"))
            .unwrap();
        tree.expected.insert(root.join("src/App03/dangling.config"));
        std::os::unix::fs::symlink("Web.config", root.join("src/App04/link.config")).unwrap();
    }
    tree
}

fn scan(paths: &[PathBuf], threads: usize) -> Result<keyroll::load::scan::ScanResult, ScanError> {
    scan_paths_with_threads(
        paths,
        &RuleSet::builtin(),
        &KnownCertificates::default(),
        threads,
    )
}

/// The text report and the JSON, the bytes `keyroll scan` prints.
fn rendered(result: &keyroll::load::scan::ScanResult) -> (String, String) {
    (
        keyroll::render::scan_text(result),
        keyroll::render::scan_json(result),
    )
}

#[test]
fn parallel_scan_prints_the_sequential_walks_report_and_json_on_every_run() {
    let tree = generated_tree();
    let files = walkdir_count(&tree.root());
    assert!(files > 3_000, "{files} files");
    let paths = [tree.root()];
    let reference = scan(&paths, 1).unwrap();
    let read: BTreeSet<PathBuf> = reference.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(read, tree.expected);
    let sorted: Vec<&PathBuf> = reference.files.iter().map(|f| &f.path).collect();
    assert!(sorted.is_sorted(), "files in path order");
    let (text, json) = rendered(&reference);
    // The report is not trivially equal: it holds entries, findings and file problems.
    assert!(reference.entries().count() > 200);
    let codes: BTreeSet<&str> = reference
        .problems()
        .map(|p| p.finding.code.as_str())
        .chain(
            reference
                .entries()
                .flat_map(|e| e.findings.iter().map(|f| f.code.as_str())),
        )
        .collect();
    let mut wanted = vec!["dirty", "lowercase", "malformed", "unsupported-encoding"];
    if cfg!(unix) {
        // The tree's links are made on Unix only.
        wanted.push("unfollowed-link");
    }
    for code in wanted {
        assert!(codes.contains(code), "{code} in {codes:?}");
    }
    for threads in [0, 2, 3, 8, 0, 2, 8] {
        let parallel = scan(&paths, threads).unwrap();
        let (t, j) = rendered(&parallel);
        assert!(t == text, "text report differs with {threads} threads");
        assert!(j == json, "JSON differs with {threads} threads");
    }
}

#[test]
fn a_file_named_beside_its_folder_is_read_once_and_unmatched_names_are_read() {
    let mut tree = generated_tree();
    let root = tree.root();
    // Named explicitly: read although no rule's file pattern matches it.
    let nordvall = std::fs::read_to_string(NORDVALL).unwrap();
    tree.read("notes/trust.xml", &nordvall);
    let paths = [
        root.join("src/App05"),
        root.join("notes/trust.xml"),
        root.join("src"),
        root.join("src/App05/Web.config"),
    ];
    let reference = scan(&paths, 1).unwrap();
    let (text, json) = rendered(&reference);
    let read: Vec<&Path> = reference.files.iter().map(|f| f.path.as_path()).collect();
    let unique: BTreeSet<&Path> = read.iter().copied().collect();
    assert_eq!(read.len(), unique.len(), "each file once: {read:#?}");
    assert!(unique.contains(root.join("notes/trust.xml").as_path()));
    for threads in [0, 2, 8] {
        assert_eq!(
            rendered(&scan(&paths, threads).unwrap()),
            (text.clone(), json.clone())
        );
    }
}

/// Paths that cannot be read fail the scan, whoever meets them first: every thread count
/// names the same paths in the same order. (Tests run as root read a `chmod 000` file, so
/// the unreadable folders are ones whose path is too long to open.)
#[cfg(target_os = "linux")]
#[test]
fn unreadable_folders_fail_the_scan_with_the_same_error_from_every_walk() {
    let tree = generated_tree();
    let root = tree.root();
    let deep_a = too_long_path(&root.join("src/App07"));
    let deep_b = too_long_path(&root.join("src/App31/Areas"));
    let paths = [root.clone()];
    let reference = scan(&paths, 1).unwrap_err();
    let message = reference.to_string();
    let ScanError::Several(errors) = &reference else {
        panic!("two unreadable folders: {message}");
    };
    assert_eq!(errors.len(), 2, "{message}");
    // Each names a folder below the deep chain's start, the first in path order first.
    let named: Vec<String> = errors
        .iter()
        .map(|e| match e {
            ScanError::Unreadable { path, detail } => {
                assert!(detail.contains("too long"), "{detail}");
                path.clone()
            }
            other => panic!("{other}"),
        })
        .collect();
    assert!(named[0].starts_with(deep_a.to_str().unwrap()), "{message}");
    assert!(named[1].starts_with(deep_b.to_str().unwrap()), "{message}");
    for threads in [0, 2, 8, 0] {
        let again = scan(&paths, threads).unwrap_err().to_string();
        assert!(
            again == message,
            "with {threads} threads: {again}\nsequential: {message}"
        );
    }
}

/// Folders nested below `start` until their path is longer than Linux opens (4,096 bytes),
/// made one level at a time relative to the last, which the kernel allows. Returns `start`'s
/// first child.
#[cfg(target_os = "linux")]
fn too_long_path(start: &Path) -> PathBuf {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    std::fs::create_dir_all(start).unwrap();
    let name = "d".repeat(250);
    let mut dir = openat(
        rustix::fs::CWD,
        start,
        OFlags::DIRECTORY | OFlags::RDONLY,
        Mode::empty(),
    )
    .unwrap();
    let mut length = start.as_os_str().len();
    while length <= 4_200 {
        mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(
            &dir,
            name.as_str(),
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
        .unwrap();
        length += 1 + name.len();
    }
    start.join(&name)
}

fn walkdir_count(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            count += walkdir_count(&entry.path());
        } else {
            count += 1;
        }
    }
    count
}

/// The walk that asks a file's name first (Unix, more than one thread) against the `ignore`
/// crate's sequential walker, on random trees: folders and files (hidden, build output,
/// look-alike names), `.gitignore` and `.ignore` files in random folders with lines drawn from
/// what trips matchers up (negations, anchors, folder-only, `**`, whitelisted hidden names,
/// everything then nothing), a `.git/info/exclude`, a worktree's `.git` file naming a git
/// folder with a `commondir`, ignore files in the root's parent folders, and the root named
/// with a trailing slash. Both must read the same files and report the same.
#[cfg(unix)]
mod random_trees {
    use super::*;
    use proptest::prelude::*;

    const DIRS: &[&str] = &["a", "b", "c", ".h", "bin", "Obj", "a.b"];
    const FILES: &[&str] = &[
        "Web.config",
        "x.config",
        ".hidden.config",
        "App.CONFIG",
        "notes.txt",
        "web.config.bak",
    ];
    const LINES: &[&str] = &[
        "*.config",
        "!Web.config",
        "a/",
        "/b",
        "b",
        "**/c",
        "!c/",
        ".h",
        "!.h",
        "!.hidden.config",
        "x.*",
        "!x.config",
        "*",
        "!*/",
        "a/**/Web.config",
        "# a comment",
        "",
        "[ab]/",
        "Web.Config",
        "/Web.config",
        "c/*.config",
        "!/a/x.config",
        "\\!x.config",
        "*.CONFIG",
        "a.b",
        "bin",
    ];

    #[derive(Debug, Clone)]
    enum Item {
        File(Vec<usize>, usize),
        Ignore(Vec<usize>, bool, Vec<usize>),
    }

    fn item() -> impl Strategy<Value = Item> {
        let dirs = proptest::collection::vec(0..DIRS.len(), 0..4);
        prop_oneof![
            4 => (dirs.clone(), 0..FILES.len()).prop_map(|(d, f)| Item::File(d, f)),
            1 => (dirs, any::<bool>(), proptest::collection::vec(0..LINES.len(), 1..4))
                .prop_map(|(d, git, l)| Item::Ignore(d, git, l)),
        ]
    }

    fn lines(picked: &[usize]) -> String {
        picked.iter().map(|&i| format!("{}\n", LINES[i])).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(160))]
        #[test]
        fn the_name_first_walk_reads_what_the_ignore_walker_reads(
            items in proptest::collection::vec(item(), 1..40),
            parent_lines in proptest::collection::vec(0..LINES.len(), 0..3),
            exclude_lines in proptest::collection::vec(0..LINES.len(), 0..3),
            worktree_lines in proptest::collection::vec(0..LINES.len(), 0..3),
            trailing_slash in any::<bool>(),
        ) {
            let nordvall = std::fs::read_to_string(NORDVALL).unwrap();
            let top = tempfile::tempdir().unwrap();
            let root = top.path().join("up/repo");
            std::fs::create_dir_all(&root).unwrap();
            // Rules in the root's parent folder, matched on absolute paths.
            if !parent_lines.is_empty() {
                write(&top.path().join("up/.gitignore"), lines(&parent_lines).as_bytes());
            }
            if !exclude_lines.is_empty() {
                write(&root.join(".git/info/exclude"), lines(&exclude_lines).as_bytes());
            }
            if !worktree_lines.is_empty() {
                // A worktree: `.git` is a file naming the git folder, whose `commondir`
                // names the shared folder holding info/exclude.
                let git_dir = top.path().join("gd");
                write(&git_dir.join("commondir"), b"../common\n");
                write(
                    &top.path().join("common/info/exclude"),
                    lines(&worktree_lines).as_bytes(),
                );
                write(
                    &root.join("a/.git"),
                    format!("gitdir: {}\n", git_dir.display()).as_bytes(),
                );
            }
            for item in &items {
                match item {
                    Item::File(dirs, f) => {
                        let mut path = root.clone();
                        for &d in dirs {
                            path.push(DIRS[d]);
                        }
                        path.push(FILES[*f]);
                        write(&path, nordvall.as_bytes());
                    }
                    Item::Ignore(dirs, git, picked) => {
                        let mut path = root.clone();
                        for &d in dirs {
                            path.push(DIRS[d]);
                        }
                        path.push(if *git { ".gitignore" } else { ".ignore" });
                        write(&path, lines(picked).as_bytes());
                    }
                }
            }
            let named = if trailing_slash {
                PathBuf::from(format!("{}/", root.display()))
            } else {
                root.clone()
            };
            let paths = [named];
            let reference = scan(&paths, 1);
            let walked = scan(&paths, 2);
            match (reference, walked) {
                (Ok(reference), Ok(walked)) => {
                    let files = |r: &keyroll::load::scan::ScanResult| -> Vec<PathBuf> {
                        r.files.iter().map(|f| f.path.clone()).collect()
                    };
                    prop_assert_eq!(files(&walked), files(&reference));
                    prop_assert_eq!(rendered(&walked), rendered(&reference));
                }
                (reference, walked) => prop_assert_eq!(
                    walked.err().map(|e| e.to_string()),
                    reference.err().map(|e| e.to_string())
                ),
            }
        }
    }
}

/// `keyroll scan` as users run it, on a relative path (`.`, `repo`, `./repo`, `repo/`) with
/// ignore rules in the folder above: every thread count prints what the one-thread walk
/// (the `ignore` crate's) prints.
#[test]
fn scan_on_relative_paths_prints_the_same_for_every_thread_count() {
    let tree = generated_tree();
    let top = tree.root();
    // The generated tree becomes `top/repo`; rules above it apply to absolute paths.
    let repo = top.join("repo");
    std::fs::create_dir(&repo).unwrap();
    for entry in std::fs::read_dir(&top).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "repo" {
            std::fs::rename(entry.path(), repo.join(entry.file_name())).unwrap();
        }
    }
    write(&top.join(".gitignore"), b"App03/\n**/Areas/Area2/\n");
    let run = |cwd: &Path, path: &str, threads: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyroll"))
            .current_dir(cwd)
            .args(["scan", "--format", "json", "--threads", threads, path])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    for (cwd, path) in [
        (repo.as_path(), "."),
        (top.as_path(), "repo"),
        (top.as_path(), "./repo"),
        (top.as_path(), "repo/"),
    ] {
        let reference = run(cwd, path, "1");
        assert!(
            reference.1.contains("\"entries\""),
            "{path}: {}",
            reference.1
        );
        assert!(
            !reference.1.contains("App03"),
            "the folder above's rule applies"
        );
        for threads in ["0", "2", "3"] {
            assert_eq!(
                run(cwd, path, threads),
                reference,
                "{path} with {threads} threads"
            );
        }
    }
}

/// A folder named through a symbolic link is walked as the `ignore` walker walks it.
#[cfg(unix)]
#[test]
fn a_linked_folder_scans_as_the_ignore_walker_scans_it() {
    let tree = generated_tree();
    let link = tempfile::tempdir().unwrap();
    let linked = link.path().join("linked");
    std::os::unix::fs::symlink(tree.root(), &linked).unwrap();
    for named in [
        linked.clone(),
        PathBuf::from(format!("{}/", linked.display())),
    ] {
        let reference = scan(std::slice::from_ref(&named), 1).map(|r| rendered(&r));
        let walked = scan(std::slice::from_ref(&named), 2).map(|r| rendered(&r));
        assert_eq!(
            walked.as_ref().map_err(|e| e.to_string()),
            reference.as_ref().map_err(|e| e.to_string()),
            "{}",
            named.display()
        );
    }
}
