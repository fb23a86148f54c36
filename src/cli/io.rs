//! Output helpers every command shares: what reaches stdout or a runner's command file is
//! redacted ([`keyroll::model::secret::redact`]) on every path.

use anyhow::{Context as _, Result};
use std::io::Write as _;

/// Appends `text`, redacted, to `path` (created if missing): how every command writes the
/// Actions runner's command files (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`), which the
/// runner keeps and shows; so no token or URL password that reached the text by an error
/// message or an echoing server is written there.
pub fn append(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(keyroll::model::secret::redact(text).as_bytes()))
        .with_context(|| format!("appending to {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn appended_text_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        super::append(&file, "a=ghs_stored_secret_0042\n").unwrap();
        super::append(&file, "b=https://x:y@h/\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "a=***\nb=https://***@h/\n"
        );
    }
}
