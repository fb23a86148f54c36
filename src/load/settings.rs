//! keyroll.toml read from disk. Its format and checks are [`crate::model::settings`]'s.

use std::path::Path;

use crate::model::settings::{Settings, SettingsError};

impl Settings {
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Io {
            file: path.display().to_string(),
            detail: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{e}. Run `keyroll init --metadata URL` to write one, or point to it with --config PATH"
                )
            } else {
                e.to_string()
            },
        })?;
        Settings::parse(path, &text)
    }
}
