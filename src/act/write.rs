//! Writing files as one transaction, with one writer at a time.
//!
//! - **Staging**: every new file is written beside the one it replaces, named
//!   `.keyroll-<pid>-<random>.tmp`, flushed to disk, with the original's mode (and, on unix,
//!   owner and group where the OS allows). Nothing is replaced until every file is staged.
//! - **Commit**: file by file, the staged copy takes the original's place and the original is
//!   kept under the staged name. Right then, the kept original is compared with the bytes
//!   keyroll read: another program's write since the read makes the whole transaction roll
//!   back (every original put back) and fail, having changed nothing. Once every file is in,
//!   the originals are deleted. On Linux the swap is one `renameat2(RENAME_EXCHANGE)`, so the
//!   check looks at exactly the file that was replaced and no write can slip between the
//!   check and the rename; elsewhere the original is hard-linked aside, checked, then
//!   replaced by a rename.
//! - **Nothing stray**: a process killed mid-run leaves `.keyroll-<pid>-…` files; the next
//!   run removes those of processes no longer running (or older than [`STALE_AFTER`]).
//! - **One writer**: [`RunLock`] is an advisory lock held for the whole `apply`, on a file
//!   inside the git directory (beside keyroll.toml outside a repository), removed when the
//!   run ends.
//!
//! A crash (or `kill -9`) leaves every file old or new, never torn: each replacement is a
//! rename. A crash between two renames leaves some files new and the others old; the next
//! run plans from what is there, so it completes the work.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Staged and kept files start with this, then the process id and `-`.
pub const STAGED_PREFIX: &str = ".keyroll-";
pub const STAGED_SUFFIX: &str = ".tmp";
/// A staged file this old is stale whoever made it: no run takes an hour, and it covers
/// process ids reused since, and systems where keyroll cannot tell whether a process runs.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);
/// The file `apply` locks beside keyroll.lock when keyroll.toml is in no git repository
/// (see [`run_lock_path`]). keyroll.lock itself is replaced by a rename on every run, so a
/// lock held on it would be on a file no longer there.
pub const RUN_LOCK_FILE: &str = ".keyroll.lck";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    #[error(
        "{file} changed on disk since keyroll read it (another program wrote it); every file already replaced was restored: nothing changed"
    )]
    Changed { file: String },
    #[error(
        "{file} appeared on disk since keyroll read the folder (another program wrote it); every file already replaced was restored: nothing changed"
    )]
    Appeared { file: String },
    #[error("{cause}; and restoring {file} failed ({detail}): its original is kept as {kept}")]
    Rollback {
        cause: Box<WriteError>,
        file: String,
        detail: String,
        kept: String,
    },
    #[error(
        "another keyroll apply is running here: {lock_file} is locked{holder}; waited {waited_s} s. Run again when it has finished (or raise --lock-timeout)"
    )]
    Busy {
        lock_file: String,
        holder: String,
        waited_s: u64,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> WriteError + use<> {
    let file = path.display().to_string();
    move |e| WriteError::Io {
        file: file.clone(),
        detail: e.to_string(),
    }
}

/// What a file must hold, at the moment it is replaced, for the write to go ahead.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// Exactly these bytes (what keyroll read and planned from).
    Bytes(&'a [u8]),
    /// No file (keyroll.lock on the first run).
    Absent,
    /// Whatever is there (`init --force`).
    Any,
}

/// One file of a transaction.
#[derive(Debug, Clone, Copy)]
pub struct FileWrite<'a> {
    pub path: &'a Path,
    pub expect: Expect<'a>,
    pub bytes: &'a [u8],
}

/// The file a path names: itself, or the file a symbolic link points to (a link is written
/// through and kept, never replaced by a regular file).
pub fn resolve_link(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

/// Writes one file atomically, whatever it holds (used by `init`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    stage(&[FileWrite {
        path,
        expect: Expect::Any,
        bytes,
    }])?
    .commit()
}

/// Every file of a transaction, staged beside its original and not yet in place. Dropping
/// it deletes the staged copies.
#[derive(Debug)]
pub struct Staged<'a> {
    files: Vec<StagedFile<'a>>,
}

#[derive(Debug)]
struct StagedFile<'a> {
    /// Where the new bytes go (a link resolved).
    path: PathBuf,
    expect: Expect<'a>,
    bytes: &'a [u8],
    temp: tempfile::TempPath,
}

/// Stages every file (on a few threads: nearly all the time is the file system's — creating
/// each file, fsync — not keyroll's). If one cannot be staged, the others are deleted and
/// nothing changes.
pub fn stage<'a>(files: &[FileWrite<'a>]) -> Result<Staged<'a>, WriteError> {
    let staged = parallel_map(files, |file| -> Result<StagedFile<'a>, WriteError> {
        let path = resolve_link(file.path).map_err(io_error(file.path))?;
        let temp = stage_one(&path, file.bytes)?;
        Ok(StagedFile {
            path,
            expect: file.expect,
            bytes: file.bytes,
            temp,
        })
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Staged { files: staged })
}

/// Names new files so that keyroll recognises its own: `.keyroll-<pid>-<random>.tmp`.
fn staged_builder() -> tempfile::Builder<'static, 'static> {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| format!("{STAGED_PREFIX}{}-", std::process::id()));
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix.as_str()).suffix(STAGED_SUFFIX);
    builder
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn stage_one(path: &Path, bytes: &[u8]) -> Result<tempfile::TempPath, WriteError> {
    let io = io_error(path);
    let original = std::fs::metadata(path).ok();
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = staged_builder();
    // A new file gets the usual mode (0666 less the umask), not a temporary file's 0600; a
    // replacement starts private and takes the original's mode below.
    #[cfg(unix)]
    if original.is_none() {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir_of(path)).map_err(&io)?;
    temp.write_all(bytes).map_err(&io)?;
    if let Some(original) = &original {
        // Owner and group first: changing them may clear set-id bits the mode then restores.
        #[cfg(unix)]
        keep_owner(temp.as_file(), original);
        temp.as_file()
            .set_permissions(original.permissions())
            .map_err(&io)?;
    }
    temp.as_file().sync_all().map_err(&io)?;
    // Closed: staging thousands of files holds no descriptors.
    Ok(temp.into_temp_path())
}

/// Gives the staged file the original's owner and group. Only root may give a file away; a
/// user may still set a group they belong to. What the OS refuses stays as created (the
/// writer's): keyroll cannot do better, and it is no reason to leave the key out.
#[cfg(unix)]
fn keep_owner(file: &File, original: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(now) = file.metadata() else { return };
    if now.uid() == original.uid() && now.gid() == original.gid() {
        return;
    }
    if std::os::unix::fs::fchown(file, Some(original.uid()), Some(original.gid())).is_err() {
        let _ = std::os::unix::fs::fchown(file, None, Some(original.gid()));
    }
}

/// How a file was put in place, to undo it.
enum Done {
    /// The original now sits at `kept` (the staged name), ours at `path`.
    Swapped {
        path: PathBuf,
        kept: tempfile::TempPath,
        exchanged: bool,
    },
    /// There was no original: ours was created.
    Created { path: PathBuf },
    /// Replaced without keeping the original (`Expect::Any`).
    Overwritten,
}

impl Staged<'_> {
    /// Puts every staged file in place, each checked against what it must hold at that
    /// moment; on any mismatch or error, restores every file already replaced and fails.
    pub fn commit(self) -> Result<(), WriteError> {
        let mut done: Vec<(Done, &[u8])> = Vec::with_capacity(self.files.len());
        for file in self.files {
            let bytes = file.bytes;
            match put_in_place(file) {
                Ok(d) => done.push((d, bytes)),
                Err(cause) => return Err(roll_back(done, cause)),
            }
        }
        // The commit point: the originals kept for a rollback go (dropping deletes them).
        drop(done);
        Ok(())
    }
}

fn put_in_place(file: StagedFile<'_>) -> Result<Done, WriteError> {
    let StagedFile {
        path,
        expect,
        bytes: _,
        temp,
    } = file;
    let io = io_error(&path);
    match expect {
        Expect::Any => {
            temp.persist(&path).map_err(|e| io(e.error))?;
            Ok(Done::Overwritten)
        }
        Expect::Absent => {
            // A hard link never replaces an existing file: a file that appeared since the
            // read is seen, not overwritten.
            match std::fs::hard_link(&temp, &path) {
                Ok(()) => {
                    drop(temp);
                    Ok(Done::Created { path })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(WriteError::Appeared {
                        file: path.display().to_string(),
                    })
                }
                Err(_) if !path.exists() => {
                    // A file system without hard links.
                    temp.persist(&path).map_err(|e| io(e.error))?;
                    Ok(Done::Created { path })
                }
                Err(_) => Err(WriteError::Appeared {
                    file: path.display().to_string(),
                }),
            }
        }
        Expect::Bytes(expected) => {
            let changed = || WriteError::Changed {
                file: path.display().to_string(),
            };
            let swapped = match exchange(&temp, &path) {
                Ok(swapped) => swapped,
                // Deleted since it was read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(changed()),
                Err(e) => return Err(io(e)),
            };
            if swapped {
                // `temp` now names the file that was at `path` an instant ago.
                let was = std::fs::read(&temp);
                if !was.as_ref().is_ok_and(|was| was == expected) {
                    exchange(&temp, &path).map_err(&io)?;
                    return Err(match was {
                        Err(e) => io(e),
                        Ok(_) => changed(),
                    });
                }
                return Ok(Done::Swapped {
                    path,
                    kept: temp,
                    exchanged: true,
                });
            }
            // No atomic exchange here: keep the original under another name (a hard link,
            // so it is the very file), check it, then rename ours over the path.
            let kept = keep_aside(&path)?;
            let was = std::fs::read(&kept).map_err(&io)?;
            if was != expected {
                return Err(changed());
            }
            temp.persist(&path).map_err(|e| io(e.error))?;
            Ok(Done::Swapped {
                path,
                kept,
                exchanged: false,
            })
        }
    }
}

/// A second name for the file at `path` (its copy where hard links are not supported).
fn keep_aside(path: &Path) -> Result<tempfile::TempPath, WriteError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io = io_error(path);
    let dir = dir_of(path);
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = dir.join(format!(
            "{STAGED_PREFIX}{}-kept{n}{STAGED_SUFFIX}",
            std::process::id()
        ));
        match std::fs::hard_link(path, &name) {
            Ok(()) => return tempfile::TempPath::try_from_path(name).map_err(&io),
            // A stale file of a dead process that had the same id.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WriteError::Changed {
                    file: path.display().to_string(),
                });
            }
            Err(_) => {
                std::fs::copy(path, &name).map_err(&io)?;
                return tempfile::TempPath::try_from_path(name).map_err(&io);
            }
        }
    }
    Err(io(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free name to keep the original under",
    )))
}

thread_local! {
    static NO_EXCHANGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's commits taking the path used where files cannot be swapped
/// atomically (macOS, Windows, some network file systems), so that tests cover it on Linux.
#[doc(hidden)]
pub fn without_exchange<R>(f: impl FnOnce() -> R) -> R {
    NO_EXCHANGE.with(|n| n.set(true));
    let result = f();
    NO_EXCHANGE.with(|n| n.set(false));
    result
}

/// Swaps two existing files atomically. `Ok(false)`: not supported here (not Linux, or a
/// file system without it); the caller falls back.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    if NO_EXCHANGE.with(|n| n.get()) {
        return Ok(false);
    }
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Undoes every replacement, newest first, then returns the error that caused it. A file
/// another program wrote after keyroll replaced it keeps that program's version.
fn roll_back(done: Vec<(Done, &[u8])>, cause: WriteError) -> WriteError {
    for (d, ours) in done.into_iter().rev() {
        let result = match d {
            Done::Swapped {
                path,
                kept,
                exchanged,
            } => restore(&path, kept, exchanged, ours),
            Done::Created { path } => {
                if std::fs::read(&path).is_ok_and(|b| b == ours) {
                    let _ = std::fs::remove_file(&path);
                }
                Ok(())
            }
            Done::Overwritten => Ok(()),
        };
        if let Err((file, detail, kept)) = result {
            return WriteError::Rollback {
                cause: Box::new(cause),
                file,
                detail,
                kept,
            };
        }
    }
    cause
}

fn restore(
    path: &Path,
    kept: tempfile::TempPath,
    exchanged: bool,
    ours: &[u8],
) -> Result<(), (String, String, String)> {
    let failed = |kept: tempfile::TempPath, e: std::io::Error| {
        let name = kept.display().to_string();
        // Keep the original for the person who reads the error.
        let _ = kept.keep();
        (path.display().to_string(), e.to_string(), name)
    };
    if exchanged {
        if let Err(e) = exchange(&kept, path) {
            return Err(failed(kept, e));
        }
        // `kept` now names what was at `path`: ours, unless someone wrote since.
        if std::fs::read(&kept).is_ok_and(|b| b != ours) {
            let _ = exchange(&kept, path);
        }
        Ok(())
    } else {
        if std::fs::read(path).is_ok_and(|b| b != ours) {
            return Ok(());
        }
        kept.persist(path).map_err(|e| failed(e.path, e.error))
    }
}

/// `f` over `items` on up to 8 threads (the work waits on I/O, not on the CPU).
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const WORKERS: usize = 8;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<R>>> =
        std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = f(item);
                    results.lock().expect("no worker panics")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panics")
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

/// The process id in a staged file's name; `Some(None)` for a name keyroll made before
/// names carried it (`.keyroll-XXXXXX.tmp`); `None` for a name that is not keyroll's.
pub fn staged_pid(name: &str) -> Option<Option<u32>> {
    let middle = name
        .strip_prefix(STAGED_PREFIX)?
        .strip_suffix(STAGED_SUFFIX)?;
    match middle.split_once('-') {
        Some((pid, rest)) if !rest.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            Some(pid.parse().ok())
        }
        None if middle.len() == 6 && middle.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(None)
        }
        _ => None,
    }
}

/// Whether a process runs; `None` where keyroll cannot tell.
pub fn process_running(pid: u32) -> Option<bool> {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
        match rustix::process::test_kill_process(pid) {
            Ok(()) | Err(Errno::PERM) => Some(true),
            Err(Errno::SRCH) => Some(false),
            Err(_) => None,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        None
    }
}

/// Staged files left by runs that died (kill -9, power loss).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub removed: Vec<PathBuf>,
    /// Stale files that could not be removed, with why.
    pub failed: Vec<(PathBuf, String)>,
}

/// Removes keyroll's stale staged files from `dirs`: those of a process no longer running,
/// and any older than [`STALE_AFTER`]. Only call it holding the [`RunLock`]: then no other
/// `apply` is writing here, whatever the file's age.
pub fn sweep_stale<'p>(dirs: impl IntoIterator<Item = &'p Path>) -> Swept {
    let mut swept = Swept::default();
    let own = std::process::id();
    let now = SystemTime::now();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(staged_pid) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || pid == Some(own) {
                continue;
            }
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STALE_AFTER);
            let dead = pid.and_then(process_running) == Some(false);
            if old || dead {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => swept.removed.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => swept.failed.push((path, e.to_string())),
                }
            }
        }
    }
    swept
}

/// The advisory lock `apply` holds for its whole run, so that two runs never interleave.
/// It is released, and its file removed, when dropped; when the process dies the OS
/// releases it and the next run takes the file that was left.
///
/// The file is where git never shows it: inside the git directory of the repository
/// keyroll.toml is in (see [`run_lock_path`]), else beside keyroll.toml.
///
/// std's `File::try_lock` (stable since Rust 1.89) is used rather than a crate: it is
/// `flock` on unix and `LockFileEx` on Windows, what `fs4` and `fd-lock` wrap, with
/// nothing to add to the build.
#[derive(Debug)]
pub struct RunLock {
    file: Option<File>,
    pub path: PathBuf,
}

/// The run lock's name inside a git directory (`.git/keyroll.lck`), beside git's own
/// `index.lock`.
pub const RUN_LOCK_IN_GIT_DIR: &str = "keyroll.lck";

/// Where the run lock for keyroll.toml's folder `dir` lives: `keyroll.lck` in the git
/// directory of the repository `dir` is in (a linked worktree's or a submodule's own git
/// directory, which `.git` names when it is a file), where git never lists it; else
/// [`RUN_LOCK_FILE`] in `dir`. One lock per work tree: two keyroll.toml in one repository
/// take turns, which also keeps them from writing a file both name at once.
pub fn run_lock_path(dir: &Path) -> PathBuf {
    match git2::Repository::discover(dir) {
        Ok(repo) if repo.workdir().is_some() => repo.path().join(RUN_LOCK_IN_GIT_DIR),
        // Not in a repository (or a bare one, or one git2 will not open, such as one owned
        // by another user): beside keyroll.toml, under a name the README says to ignore.
        _ => dir.join(RUN_LOCK_FILE),
    }
}

impl RunLock {
    /// Takes the lock for `dir` (keyroll.toml's folder), waiting at most `wait` for another
    /// run to release it.
    pub fn acquire(dir: &Path, wait: Duration) -> Result<RunLock, WriteError> {
        let path = run_lock_path(dir);
        let io = io_error(&path);
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        let mut file = loop {
            let file = open_lock_file(&path).map_err(&io)?;
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock) => {
                        let waited = start.elapsed();
                        if waited >= wait {
                            return Err(WriteError::Busy {
                                lock_file: path.display().to_string(),
                                holder: holder(&path),
                                waited_s: waited.as_secs(),
                            });
                        }
                        std::thread::sleep(pause.min(wait - waited));
                        pause = (pause * 2).min(Duration::from_millis(200));
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
                }
            }
            // The run that held it removes the file as it ends: a run that was waiting on
            // that file now holds a lock on a name no longer there, which a third run would
            // not see. Held only if the name still leads to this file; else start over.
            if still_named(&file, &path) {
                break file;
            }
        };
        // Who holds it, for the message another run shows while it waits.
        let note = format!(
            "keyroll apply, pid {}, since {}\n# The lock keyroll apply holds while it runs; removed when it ends, safe to delete when none runs.\n",
            std::process::id(),
            crate::model::cert::rfc3339(time::OffsetDateTime::now_utc())
        );
        let _ = file.set_len(0);
        let _ = file.write_all(note.as_bytes());
        Ok(RunLock {
            file: Some(file),
            path,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Nothing of keyroll's stays behind. A failed removal is left for the next run,
        // which takes the file as it finds it.
        #[cfg(unix)]
        {
            // Removed while still held: a run waiting on this file sees, once it has the
            // lock, that the name no longer leads to it ([`still_named`]).
            let _ = std::fs::remove_file(&self.path);
            drop(self.file.take());
        }
        #[cfg(not(unix))]
        {
            // Closed first: the file is open without delete sharing, so the removal fails
            // while any other run has it open (waiting for it, or holding it by now), and
            // that run removes it when it ends. A lock never loses its file under it.
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt as _;
        // FILE_SHARE_READ | FILE_SHARE_WRITE, without FILE_SHARE_DELETE: see `Drop`.
        options.share_mode(0x1 | 0x2);
    }
    options.open(path)
}

/// Whether `path` still names the open `file` (unix: same device and inode).
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Elsewhere a file open without delete sharing cannot be removed (see `Drop`).
#[cfg(not(unix))]
fn still_named(_file: &File, _path: &Path) -> bool {
    true
}

fn holder(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .filter(|l| !l.is_empty())
        .map(|l| format!(" (by {l})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_names_are_recognised() {
        let mine = format!(".keyroll-{}-AbC123.tmp", std::process::id());
        assert_eq!(staged_pid(&mine), Some(Some(std::process::id())));
        assert_eq!(staged_pid(".keyroll-AbC123.tmp"), Some(None));
        assert_eq!(staged_pid(".keyroll.lck"), None);
        assert_eq!(staged_pid(".keyroll-12-.tmp"), None);
        assert_eq!(staged_pid("keyroll-12-abc.tmp"), None);
        assert_eq!(staged_pid(".keyroll-toolong1.tmp"), None);
        assert_eq!(staged_pid("Web.config"), None);
    }

    #[test]
    fn this_process_runs_and_a_reaped_child_does_not() {
        assert_ne!(process_running(std::process::id()), Some(false));
        #[cfg(unix)]
        {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            assert_eq!(process_running(pid), Some(false));
        }
    }
}
