//! Step 3, act (work tree): `apply` writes the plan's files and keyroll.lock. Files the
//! plan could not handle are not in it, so one file's error never blocks the others; the
//! caller still exits non-zero when the plan has errors.

use std::path::{Path, PathBuf};

use crate::patch::{self, PatchError};
use crate::plan::Plan;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("{path} changed on disk since it was read; nothing written")]
    ChangedOnDisk { path: String },
    #[error(transparent)]
    Write(#[from] PatchError),
}

/// What `apply` wrote.
#[derive(Debug, Default)]
pub struct Applied {
    pub files: Vec<PathBuf>,
    pub lock: bool,
}

pub fn lock_path(settings: &Settings) -> PathBuf {
    settings.root.join(crate::lock::FILE_NAME)
}

/// Writes every file of the plan, each atomically, all or none: every file is checked
/// unchanged since it was read before any is written. Then keyroll.lock, which records
/// only what reached the configs.
pub fn apply(plan: &Plan, settings: &Settings) -> Result<Applied, ActError> {
    for file in &plan.files {
        let current = std::fs::read(&file.path).map_err(|e| PatchError::Io {
            file: file.path.display().to_string(),
            detail: e.to_string(),
        })?;
        if current != file.encoding.encode(&file.before) {
            return Err(ActError::ChangedOnDisk {
                path: file.path.display().to_string(),
            });
        }
    }
    let stored: Vec<Vec<u8>> = plan
        .files
        .iter()
        .map(|f| f.encoding.encode(&f.after))
        .collect();
    let writes: Vec<(&Path, &[u8])> = plan
        .files
        .iter()
        .zip(&stored)
        .map(|(f, bytes)| (f.path.as_path(), bytes.as_slice()))
        .collect();
    patch::write_many_atomic(&writes)?;
    let mut applied = Applied {
        files: plan.files.iter().map(|f| f.path.clone()).collect(),
        lock: false,
    };
    if plan.lock_changed() {
        patch::write_atomic(&lock_path(settings), plan.lock_after.to_toml().as_bytes())?;
        applied.lock = true;
    }
    Ok(applied)
}
