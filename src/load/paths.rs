//! configSource paths found on disk with Windows' case rules. The rules for joining and
//! matching names are [`crate::model::paths`]'s.

use std::path::{Path, PathBuf};

use crate::model::paths::PathError;

/// Resolves `relative` under `root` on disk one component at a time: the exact name when
/// it exists, else the single entry of that folder equal to it ignoring case.
pub fn resolve_on_disk(root: &Path, relative: &str, reference: &str) -> Result<PathBuf, PathError> {
    let mut current = root.to_path_buf();
    for part in relative.split('/') {
        let exact = current.join(part);
        if std::fs::symlink_metadata(&exact).is_ok() {
            current = exact;
            continue;
        }
        let wanted = part.to_lowercase();
        let names: Vec<String> = std::fs::read_dir(&current)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.to_lowercase() == wanted)
                    .collect()
            })
            .unwrap_or_default();
        match names.as_slice() {
            [one] => current = current.join(one),
            [first, second, ..] => {
                return Err(PathError::Ambiguous {
                    reference: reference.to_string(),
                    first: current.join(first).display().to_string(),
                    second: current.join(second).display().to_string(),
                });
            }
            [] => {
                return Err(PathError::Missing {
                    reference: reference.to_string(),
                });
            }
        }
    }
    if current.is_file() {
        Ok(current)
    } else {
        Err(PathError::Missing {
            reference: reference.to_string(),
        })
    }
}

/// Why keyroll does not read what a symbolic link leads to, when that is not a regular file
/// (`real` is the link's target, resolved): a folder, or a FIFO, socket or device, which
/// opening could block or never end. `scan` and `plan` refuse such a link in these words.
pub fn not_a_file(real: &Path) -> Option<String> {
    let meta = std::fs::metadata(real).ok()?;
    if meta.is_file() {
        None
    } else if meta.is_dir() {
        Some(format!(
            "is a symbolic link to the folder {}, not a file; keyroll does not read it",
            real.display()
        ))
    } else {
        Some(format!(
            "is a symbolic link to {}, which is no regular file (a FIFO, socket or device); keyroll does not read it",
            real.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_disk_folders_differing_in_case() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("App/Configuration")).unwrap();
        std::fs::write(
            dir.path().join("App/Configuration/identityModel.config"),
            "x",
        )
        .unwrap();
        let found =
            resolve_on_disk(dir.path(), "App/configuration/identitymodel.config", "r").unwrap();
        assert_eq!(
            found,
            dir.path().join("App/Configuration/identityModel.config")
        );
        assert!(matches!(
            resolve_on_disk(dir.path(), "App/other.config", "r"),
            Err(PathError::Missing { .. })
        ));
    }
}
