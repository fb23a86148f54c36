//! The checks of keyroll.toml's `[[database]]` targets (their types: model/database.rs).

use super::{Settings, SettingsError, TextAt};

impl Settings {
    /// Every `[[database]]` has a unique usable name, names defined issuers, a migrations
    /// folder inside the repository and plain SQL names.
    pub(super) fn check_databases(
        &self,
        names: &std::collections::BTreeSet<&str>,
        text_at: &TextAt<'_>,
    ) -> Result<(), SettingsError> {
        use crate::model::database::{identifier_problem, name_problem};
        let mut seen = std::collections::BTreeSet::new();
        for (index, db) in self.databases.iter().enumerate() {
            let table = text_at
                .text
                .match_indices("[[database]]")
                .nth(index)
                .map_or(0, |(at, _)| at);
            let at = |needle: &str| {
                text_at.text[table..]
                    .find(needle)
                    .map_or(table, |p| table + p)
            };
            let fail = |needle: &str, detail: String| Err(text_at.error(at(needle), detail));
            if let Some(why) = name_problem(&db.name) {
                return fail("name", format!("database name {:?} {why}", db.name));
            }
            if !seen.insert(db.name.as_str()) {
                return fail("name", format!("database \"{}\" is defined twice", db.name));
            }
            if db.issuers.is_empty() {
                return fail(
                    "issuers",
                    format!("database \"{}\" names no issuer", db.name),
                );
            }
            for name in &db.issuers {
                if !names.contains(name.as_str()) {
                    return fail(
                        &format!("\"{name}\""),
                        format!(
                            "database \"{}\" names issuer \"{name}\", which no [[issuer]] defines",
                            db.name
                        ),
                    );
                }
            }
            let folder = std::path::Path::new(&db.migrations);
            if db.migrations.trim().is_empty()
                || folder.is_absolute()
                || folder
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return fail(
                    "migrations",
                    format!(
                        "database \"{}\": migrations = {:?} must be a folder inside the repository (relative, no \"..\")",
                        db.name, db.migrations
                    ),
                );
            }
            if let Err(detail) = db.layout() {
                return fail("[[database]]", format!("database \"{}\" {detail}", db.name));
            }
            for sql_name in db.names() {
                if let Some(why) = identifier_problem(&sql_name) {
                    return fail(
                        &sql_name,
                        format!("database \"{}\": {sql_name:?} {why}", db.name),
                    );
                }
            }
            if let Some(var) = &db.url_env
                && (var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return fail(
                    "url_env",
                    format!(
                        "database \"{}\": url_env {var:?} is not an environment variable name",
                        db.name
                    ),
                );
            }
        }
        Ok(())
    }
}
