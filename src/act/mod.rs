//! Step 3, act (work tree): `apply` writes the plan's files and keyroll.lock as one
//! transaction ([`crate::act::write`]): every file is checked, at the instant it is replaced, to
//! still hold what the plan was made from; one that does not rolls every replacement back.
//! Files the plan could not handle are not in it, so one file's error never blocks the
//! others; the caller still exits non-zero when the plan has errors.
//!
//! The caller holds the [`RunLock`](crate::act::write::RunLock) from before it loads the inputs
//! until the writes are done, so two runs never plan from, or write over, each other.

pub mod dashboard;
pub mod database;
pub mod discover;
pub mod entra;
pub mod git;
pub mod github;
pub mod init;
pub mod onboard;
pub mod pr;
pub mod saved;
pub mod write;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::decide::plan::Plan;
use crate::load::Inputs;
use crate::model::lock::{Lock, LockError};
use crate::model::settings::Settings;
use write::{Expect, FileWrite, Swept, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("{path} changed on disk since it was read; nothing written")]
    ChangedOnDisk { path: String },
    #[error(
        "{path} is a symbolic link to {target}, outside {root}; keyroll does not write outside the repository (nothing written)"
    )]
    LinkOutside {
        path: String,
        target: String,
        root: String,
    },
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What `apply` wrote, and the stale staged files it removed.
#[derive(Debug, Default)]
pub struct Applied {
    pub files: Vec<PathBuf>,
    pub lock: bool,
    pub swept: Swept,
}

pub fn lock_path(settings: &Settings) -> PathBuf {
    settings.root.join(crate::model::lock::FILE_NAME)
}

/// keyroll.lock's bytes as they are now (None: no file).
pub fn read_lock_bytes(settings: &Settings) -> Result<Option<Vec<u8>>, ActError> {
    let path = lock_path(settings);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ActError::Io {
            file: path.display().to_string(),
            detail: e.to_string(),
        }),
    }
}

/// The folders keyroll may have staged files in: every target's and keyroll.toml's.
pub fn sweep_dirs(inputs: &Inputs) -> BTreeSet<PathBuf> {
    let mut dirs: BTreeSet<PathBuf> = inputs
        .targets
        .iter()
        .filter_map(|t| t.path.parent().map(Path::to_path_buf))
        .collect();
    dirs.insert(inputs.settings.root.clone());
    for db in &inputs.settings.databases {
        dirs.insert(inputs.settings.root.join(&db.migrations));
    }
    dirs
}

/// Writes every file of the plan and then keyroll.lock, which records only what reached the
/// configs, as one transaction: all or nothing.
pub fn write_plan(plan: &Plan, inputs: &Inputs) -> Result<Applied, ActError> {
    let settings = &inputs.settings;
    let lock_file = lock_path(settings);
    // As stored: a UTF-16 file is compared and written in UTF-16, with its BOM.
    let stored: Vec<(Vec<u8>, Vec<u8>)> = plan
        .files
        .iter()
        .map(|f| (f.encoding.encode(&f.before), f.encoding.encode(&f.after)))
        .collect();
    let mut writes: Vec<FileWrite<'_>> = plan
        .files
        .iter()
        .zip(&stored)
        .map(|(f, (before, after))| FileWrite {
            path: &f.path,
            expect: Expect::Bytes(before),
            bytes: after,
        })
        .collect();
    // A migration is a new file: written only where none is (a second apply in the same
    // second would otherwise overwrite the first's file). Its folder is made first.
    for db in &plan.databases {
        if let Some(folder) = db.migration.path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| ActError::Io {
                file: folder.display().to_string(),
                detail: e.to_string(),
            })?;
        }
        writes.push(FileWrite {
            path: &db.migration.path,
            expect: Expect::Absent,
            bytes: db.migration.text.as_bytes(),
        });
    }
    let lock_before = read_lock_bytes(settings)?;
    let lock_after = plan.lock_after.to_toml().into_bytes();
    if plan.lock_changed() {
        // The plan was made from the lock as parsed; the file must still say the same.
        let now = match &lock_before {
            Some(bytes) => Lock::parse(&lock_file, &String::from_utf8_lossy(bytes))?,
            None => Lock::default(),
        };
        if now != plan.lock_before {
            return Err(ActError::ChangedOnDisk {
                path: lock_file.display().to_string(),
            });
        }
        writes.push(FileWrite {
            path: &lock_file,
            expect: lock_before.as_deref().map_or(Expect::Absent, Expect::Bytes),
            bytes: &lock_after,
        });
    }
    transact(&settings.root, &writes, &sweep_dirs(inputs))
}

/// Removes stale staged files from `dirs`, then writes `writes` as one transaction. Every
/// path must stay inside `root` (a link is written through, so its target must too).
pub fn transact(
    root: &Path,
    writes: &[FileWrite<'_>],
    dirs: &BTreeSet<PathBuf>,
) -> Result<Applied, ActError> {
    let swept = write::sweep_stale(dirs.iter().map(PathBuf::as_path));
    let real_root = std::fs::canonicalize(root).map_err(|e| ActError::Io {
        file: root.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    for w in writes {
        let resolved = write::resolve_link(w.path).map_err(|e| ActError::Io {
            file: w.path.display().to_string(),
            detail: e.to_string(),
        })?;
        if resolved != w.path && !resolved.starts_with(&real_root) {
            return Err(ActError::LinkOutside {
                path: w.path.display().to_string(),
                target: resolved.display().to_string(),
                root: root.display().to_string(),
            });
        }
        // Two plan entries for one file (a link and its target) would each replace it.
        if !seen.insert(resolved.clone()) {
            return Err(ActError::Io {
                file: w.path.display().to_string(),
                detail: format!(
                    "is {} under another name, planned twice; nothing written",
                    resolved.display()
                ),
            });
        }
    }
    write::stage(writes)?.commit()?;
    let lock_name = std::ffi::OsStr::new(crate::model::lock::FILE_NAME);
    let lock_file = root.join(lock_name);
    Ok(Applied {
        files: writes
            .iter()
            .filter(|w| w.path != lock_file)
            .map(|w| w.path.to_path_buf())
            .collect(),
        lock: writes.iter().any(|w| w.path == lock_file),
        swept,
    })
}
