//! keyroll.lock read from disk, and checked against what this run loaded. Its format and
//! parsing are [`crate::model::lock`]'s.

use std::path::Path;

use crate::load::LoadedIssuer;
use crate::model::lock::{Lock, LockError, LockProblem};
use crate::model::settings::Settings;

impl Lock {
    /// A missing lock file is an empty lock: the first run.
    pub fn load(path: &Path) -> Result<Self, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(e) => Err(LockError::Io {
                file: path.display().to_string(),
                detail: e.to_string(),
            }),
        }
    }

    /// [`Lock::check_against`] with keyroll.toml's issuers and every certificate they publish.
    pub fn check_loaded(&self, settings: &Settings, issuers: &[LoadedIssuer]) -> Vec<LockProblem> {
        let defined: Vec<&str> = settings.issuers.iter().map(|i| i.name.as_str()).collect();
        self.check_against(
            &defined,
            issuers
                .iter()
                .filter_map(|i| i.keys.as_ref().ok())
                .flat_map(|k| k.published.values().map(|c| c.as_ref())),
        )
    }
}
