//! Writing files as one transaction (src/write.rs): staging, the check at the instant each
//! file is replaced, rollback, links, ownership, stale staged files, the run lock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyroll::act::write::{self, Expect, FileWrite, WriteError};

/// A scratch folder in memory (/dev/shm) where there is one: the race test creates and
/// renames thousands of files.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn strays(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(".keyroll-"))
        .collect()
}

/// Another program's write: a new file renamed over the old one, as editors and git do.
fn write_by_rename(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("other-tool");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

#[test]
fn atomic_write_replaces_content_and_keeps_mode_owner_and_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.config");
    std::fs::write(&path, b"old").unwrap();
    #[cfg(unix)]
    let (uid, gid) = {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        // As root, give the file away (as a deploy user's file would be); otherwise it
        // stays ours, and must stay ours.
        if rustix_is_root() {
            std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
        }
        let meta = std::fs::metadata(&path).unwrap();
        (meta.uid(), meta.gid())
    };
    write::write_atomic(&path, b"new bytes").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new bytes");
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "owner and group kept");
    }
    assert_eq!(names(dir.path()), ["web.config"]);
}

#[cfg(unix)]
fn rustix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // The owner of a file this process creates is its effective user.
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid() == 0
}

#[test]
fn a_new_file_gets_the_usual_mode_not_a_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyroll.toml");
    write::write_atomic(&path, b"x").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode(),
            std::fs::metadata(&plain).unwrap().permissions().mode()
        );
    }
}

#[test]
fn nothing_changes_when_one_file_cannot_be_staged() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("web.config");
    std::fs::write(&good, b"<configuration/>\r\n").unwrap();
    let missing_dir = dir.path().join("gone").join("web.config");
    let result = write::stage(&[
        FileWrite {
            path: &good,
            expect: Expect::Bytes(b"<configuration/>\r\n"),
            bytes: b"<configuration>new</configuration>\r\n",
        },
        FileWrite {
            path: &missing_dir,
            expect: Expect::Absent,
            bytes: b"x",
        },
    ]);
    let error = result.expect_err("the second file cannot be staged");
    assert!(error.to_string().contains("gone"), "{error}");
    assert_eq!(std::fs::read(&good).unwrap(), b"<configuration/>\r\n");
    assert_eq!(
        names(dir.path()),
        ["web.config"],
        "no staged copy left behind"
    );
}

struct Tree {
    dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
    old: Vec<Vec<u8>>,
    new: Vec<Vec<u8>>,
}

fn tree(count: usize) -> Tree {
    let dir = scratch();
    let mut paths = Vec::new();
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for i in 0..count {
        let sub = dir.path().join(format!("app{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join(format!("{i}.config"));
        let before = format!("<configuration><!-- {i} old --></configuration>\n").into_bytes();
        std::fs::write(&path, &before).unwrap();
        paths.push(path);
        old.push(before);
        new.push(
            format!("<configuration><!-- {i} new, keyroll --></configuration>\n").into_bytes(),
        );
    }
    Tree {
        dir,
        paths,
        old,
        new,
    }
}

impl Tree {
    fn writes(&self) -> Vec<FileWrite<'_>> {
        self.paths
            .iter()
            .zip(self.old.iter().zip(&self.new))
            .map(|(path, (old, new))| FileWrite {
                path,
                expect: Expect::Bytes(old),
                bytes: new,
            })
            .collect()
    }

    fn contents(&self) -> Vec<Vec<u8>> {
        self.paths
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    fn strays(&self) -> Vec<String> {
        (0..7)
            .flat_map(|i| strays(&self.dir.path().join(format!("app{i}"))))
            .collect()
    }
}

#[test]
fn a_file_changed_between_staging_and_rename_rolls_every_file_back() {
    changed_file_rolls_back();
}

/// The same where files cannot be swapped atomically (macOS, Windows): the original is
/// linked aside, checked, then replaced.
#[test]
fn without_an_atomic_swap_a_changed_file_still_rolls_every_file_back() {
    write::without_exchange(changed_file_rolls_back);
    write::without_exchange(|| {
        let t = tree(30);
        write::stage(&t.writes()).unwrap().commit().unwrap();
        assert_eq!(t.contents(), t.new);
        assert_eq!(t.strays(), Vec::<String>::new());
    });
}

fn changed_file_rolls_back() {
    for in_place in [false, true] {
        let t = tree(20);
        let staged = write::stage(&t.writes()).unwrap();
        // Another program edits the 13th file after keyroll read and staged it.
        let theirs = b"<configuration><!-- edited by hand --></configuration>\n";
        if in_place {
            std::fs::write(&t.paths[12], theirs).unwrap();
        } else {
            write_by_rename(&t.paths[12], theirs);
        }
        let error = staged.commit().expect_err("the edit is seen");
        assert!(
            matches!(&error, WriteError::Changed { file } if file.ends_with("12.config")),
            "{error}"
        );
        assert!(error.to_string().contains("nothing changed"), "{error}");
        let now = t.contents();
        for (i, bytes) in now.iter().enumerate() {
            if i == 12 {
                assert_eq!(bytes, theirs, "their edit stays");
            } else {
                assert_eq!(bytes, &t.old[i], "file {i} restored");
            }
        }
        assert_eq!(t.strays(), Vec::<String>::new());
    }
}

#[test]
fn a_file_that_appears_before_it_is_created_rolls_back() {
    let t = tree(3);
    let lock = t.dir.path().join("keyroll.lock");
    let mut writes = t.writes();
    writes.push(FileWrite {
        path: &lock,
        expect: Expect::Absent,
        bytes: b"version = 1\n",
    });
    let staged = write::stage(&writes).unwrap();
    std::fs::write(&lock, b"someone else's").unwrap();
    let error = staged.commit().expect_err("the new file is seen");
    assert!(matches!(error, WriteError::Appeared { .. }), "{error}");
    assert_eq!(t.contents(), t.old);
    assert_eq!(std::fs::read(&lock).unwrap(), b"someone else's");
    assert_eq!(strays(t.dir.path()), Vec::<String>::new());
}

#[test]
fn a_clean_commit_replaces_every_file_and_leaves_nothing() {
    let t = tree(30);
    write::stage(&t.writes()).unwrap().commit().unwrap();
    assert_eq!(t.contents(), t.new);
    assert_eq!(t.strays(), Vec::<String>::new());
}

/// Another writer renames its version of one file over keyroll's at a random moment while
/// keyroll commits. Every round ends either with keyroll's commit whole (the other edit, if
/// it came after, on top) or with an error and every file as it was; never with the other
/// writer's edit silently lost.
#[test]
fn rename_race_every_round_consistent_or_nothing_changed() {
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // How long a commit takes here, so that the other writer's moment spans it.
    let warm_up = tree(40);
    let staged = write::stage(&warm_up.writes()).unwrap();
    let start = std::time::Instant::now();
    staged.commit().unwrap();
    let commit_takes = start.elapsed().as_micros().max(50) as u64;
    let (mut committed, mut refused) = (0, 0);
    for _round in 0..150 {
        let t = tree(40);
        let victim = (next() % 40) as usize;
        let delay = Duration::from_micros(next() % (commit_takes * 3 / 2));
        let theirs =
            format!("<configuration><!-- {victim} edited by another tool --></configuration>\n");
        let staged = write::stage(&t.writes()).unwrap();
        let path = t.paths[victim].clone();
        let start = std::sync::Barrier::new(2);
        let result = std::thread::scope(|s| {
            let other = s.spawn(|| {
                start.wait();
                // Spinning, not sleeping: a sleep's granularity is coarser than a commit.
                let t = std::time::Instant::now();
                while t.elapsed() < delay {
                    std::hint::spin_loop();
                }
                write_by_rename(&path, theirs.as_bytes());
            });
            start.wait();
            let result = staged.commit();
            other.join().unwrap();
            result
        });
        let now = t.contents();
        match result {
            Ok(()) => {
                committed += 1;
                for (i, bytes) in now.iter().enumerate() {
                    if i == victim {
                        // Theirs came after keyroll's rename (so it is there); had it come
                        // before, keyroll would have seen it and refused.
                        assert_eq!(
                            bytes,
                            theirs.as_bytes(),
                            "round committed: their later edit kept"
                        );
                    } else {
                        assert_eq!(bytes, &t.new[i]);
                    }
                }
            }
            Err(WriteError::Changed { file }) => {
                refused += 1;
                assert!(file.ends_with(&format!("/{victim}.config")), "{file}");
                for (i, bytes) in now.iter().enumerate() {
                    if i == victim {
                        assert_eq!(bytes, theirs.as_bytes());
                    } else {
                        assert_eq!(bytes, &t.old[i], "refused round: file {i} unchanged");
                    }
                }
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
        assert_eq!(t.strays(), Vec::<String>::new());
    }
    eprintln!("rename race: {committed} rounds committed, {refused} refused");
    // Both outcomes must have been exercised for the test to mean anything.
    assert!(
        committed > 0 && refused > 0,
        "committed {committed}, refused {refused}"
    );
}

#[cfg(unix)]
#[test]
fn a_link_is_written_through_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("shared")).unwrap();
    let target = dir.path().join("shared/Web.config");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("Web.config");
    std::os::unix::fs::symlink("shared/Web.config", &link).unwrap();
    write::stage(&[FileWrite {
        path: &link,
        expect: Expect::Bytes(b"old"),
        bytes: b"new",
    }])
    .unwrap()
    .commit()
    .unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert_eq!(strays(&dir.path().join("shared")), Vec::<String>::new());
}

#[test]
fn stale_staged_files_are_swept_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dead = {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let own = std::process::id();
    let files = [
        format!(".keyroll-{dead}-aB3dE9.tmp"),
        format!(".keyroll-{own}-aB3dE9.tmp"),
        ".keyroll-Zq81Lm.tmp".to_string(),
        ".keyroll-Old123.tmp".to_string(),
        ".keyroll.lck".to_string(),
        "Web.config".to_string(),
    ];
    for f in &files {
        std::fs::write(d.join(f), b"x").unwrap();
    }
    // A staged file from before names carried a process id, two hours old.
    let old = std::fs::File::options()
        .write(true)
        .open(d.join(".keyroll-Old123.tmp"))
        .unwrap();
    old.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    drop(old);
    let swept = write::sweep_stale([d]);
    let mut removed: Vec<String> = swept
        .removed
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    removed.sort();
    #[cfg(unix)]
    assert_eq!(
        removed,
        [
            format!(".keyroll-{dead}-aB3dE9.tmp"),
            ".keyroll-Old123.tmp".into()
        ]
    );
    #[cfg(not(unix))]
    assert_eq!(removed, [".keyroll-Old123.tmp".to_string()]);
    assert!(swept.failed.is_empty());
    assert!(d.join(format!(".keyroll-{own}-aB3dE9.tmp")).exists());
    assert!(
        d.join(".keyroll-Zq81Lm.tmp").exists(),
        "a fresh file of unknown origin stays"
    );
    assert!(d.join(".keyroll.lck").exists() && d.join("Web.config").exists());
}

#[test]
fn a_second_run_waits_for_the_lock_then_says_who_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = write::RunLock::acquire(dir.path(), Duration::ZERO).unwrap();
    let start = std::time::Instant::now();
    let error = write::RunLock::acquire(dir.path(), Duration::from_millis(300)).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(300));
    let text = error.to_string();
    assert!(
        text.contains("another keyroll apply is running")
            && text.contains(&format!("pid {}", std::process::id()))
            && text.contains(".keyroll.lck"),
        "{text}"
    );
    // Released when dropped: the next run gets it, even while waiting.
    let waiter = std::thread::spawn({
        let dir = dir.path().to_path_buf();
        move || write::RunLock::acquire(&dir, Duration::from_secs(10)).map(|_| ())
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(first);
    waiter.join().unwrap().unwrap();
}

#[test]
fn a_file_deleted_before_its_rename_rolls_every_file_back() {
    for swap in [true, false] {
        let run = || {
            let t = tree(10);
            let staged = write::stage(&t.writes()).unwrap();
            std::fs::remove_file(&t.paths[6]).unwrap();
            let error = staged.commit().expect_err("the deletion is seen");
            assert!(
                matches!(&error, WriteError::Changed { file } if file.ends_with("6.config")),
                "{error}"
            );
            for i in (0..10).filter(|i| *i != 6) {
                assert_eq!(std::fs::read(&t.paths[i]).unwrap(), t.old[i]);
            }
            assert!(!t.paths[6].exists());
            assert_eq!(t.strays(), Vec::<String>::new());
        };
        if swap {
            run();
        } else {
            write::without_exchange(run);
        }
    }
}
