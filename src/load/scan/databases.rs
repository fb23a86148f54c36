//! Registries whose trusted keys live in a database, found in the repository's sources so
//! that `scan` never reports such an app as "0 trusted thumbprints, nothing to do":
//! - Visual Studio 2013's "Organizational Accounts" template: a class deriving from
//!   `ValidatingIssuerNameRegistry` that reads `IssuingAuthorityKeys` (seed 001), its EF
//!   `DbContext` and connection string name, an EF migration creating the table, and the
//!   `issuerNameRegistry type` in a config naming the class;
//! - K2's `[Identity].[ClaimIssuer]` table in the repository's SQL scripts (seed 000).
//!
//! Text search, not a C# parser: the template's shapes are fixed, and a miss is a finding
//! that does not appear, never a wrong edit (keyroll writes nothing from these).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Larger sources are not read for these patterns (generated code, data dumps).
const MAX_SOURCE: u64 = 2 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseKind {
    Vs2013TenantRegistry,
    K2ClaimIssuer,
}

impl DatabaseKind {
    pub fn preset(&self) -> &'static str {
        match self {
            DatabaseKind::Vs2013TenantRegistry => "vs2013-tenant-registry",
            DatabaseKind::K2ClaimIssuer => "k2-claim-issuer",
        }
    }
}

/// One database-held registry, where the repository shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseRegistry {
    pub kind: DatabaseKind,
    /// The file and 1-based line that show it (the registry class, or the K2 script).
    pub file: PathBuf,
    pub line: u32,
    /// The registry's class name (VS2013).
    pub class: Option<String>,
    pub table: String,
    /// The DbContext's connection string name, when its code is in the repository.
    pub connection: Option<String>,
    /// Where the connection string name was found.
    pub context: Option<(PathBuf, u32)>,
    /// An EF migration creating the table.
    pub migration: Option<(PathBuf, u32)>,
    /// Config files whose `issuerNameRegistry type` names the class, with the line.
    pub configs: Vec<(PathBuf, u32)>,
    /// `ida:FederationMetadataLocation` from those configs: the metadata the app reads.
    pub metadata_location: Option<String>,
}

impl DatabaseRegistry {
    /// The scan finding's text.
    pub fn message(&self) -> String {
        let connection = match (&self.connection, &self.context) {
            (Some(name), Some((file, line))) => {
                format!("connection string {name:?}, {}:{line}", file.display())
            }
            _ => "connection string unknown: the DbContext is not in the repository".into(),
        };
        match self.kind {
            DatabaseKind::Vs2013TenantRegistry => format!(
                "issuer name registry {} trusts the thumbprints in database table {} ({connection}); it refreshes them only when the app starts, so a key roll between restarts breaks sign-in (ID4175). keyroll keeps the table in step through a [[database]] target with preset = \"vs2013-tenant-registry\" (keyroll init writes one)",
                self.class.as_deref().unwrap_or("?"),
                self.table
            ),
            DatabaseKind::K2ClaimIssuer => format!(
                "K2 trusts the thumbprints in database table {} (one row per issuer and thumbprint); keyroll keeps it in step through a [[database]] target with preset = \"k2-claim-issuer\" (keyroll init writes one)",
                self.table
            ),
        }
    }
}

fn line_of(text: &str, offset: usize) -> u32 {
    text[..offset].matches('\n').count() as u32 + 1
}

/// Whether a file of this name may be a source the search reads (`*.cs`, `*.sql`,
/// `*.config`, any case): the scan's walk hands such files to [`source`].
pub(super) fn wanted(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    [&b".cs"[..], b".sql", b".config"].iter().any(|ext| {
        name.len() > ext.len() && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext)
    })
}

/// `path`'s text, when it is a source of a kind searched here holding one of its markers.
/// Every `.cs`, `.sql` and `.config` file of the walk is read, but kept only when it holds a
/// marker the search needs: a solution's thousands of sources are not all held as text and
/// searched several times over (a 100,000-file tree took a second; ripgrep reads it in
/// 65 ms).
pub(super) fn source(path: &Path) -> Option<(PathBuf, String)> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())?;
    let markers: &[&str] = match ext.as_str() {
        "cs" => &["IssuingAuthorityKeys"],
        "config" => &["<issuerNameRegistry"],
        "sql" => &["[Identity].[ClaimIssuer]", "Identity.ClaimIssuer"],
        _ => return None,
    };
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > MAX_SOURCE {
        return None;
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize + 1);
    file.take(MAX_SOURCE).read_to_end(&mut bytes).ok()?;
    // The markers are ASCII: found in the bytes exactly when found in the lossy text.
    markers
        .iter()
        .any(|m| memchr::memmem::find(&bytes, m.as_bytes()).is_some())
        .then(|| {
            (
                path.to_path_buf(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
}

fn class_deriving(text: &str, base: &str) -> Option<(String, usize)> {
    let mut from = 0;
    while let Some(p) = text[from..].find("class ").map(|p| from + p) {
        from = p + 6;
        let rest = &text[from..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if let Some(bases) = after.strip_prefix(':') {
            let first = bases
                .trim_start()
                .split(|c: char| c == ',' || c == '{' || c.is_whitespace())
                .next()
                .unwrap_or_default();
            if first.rsplit('.').next() == Some(base) && !name.is_empty() {
                return Some((name, p));
            }
        }
    }
    None
}

/// The connection string name a `DbContext` passes to its base: `base("Name")` or
/// `base("name=Name")`.
fn connection_name(text: &str) -> Option<(String, usize)> {
    let p = text.find(": base(\"").or_else(|| text.find(":base(\""))?;
    let start = text[p..].find('"')? + p + 1;
    let end = text[start..].find('"')? + start;
    let raw = &text[start..end];
    let name = raw
        .strip_prefix("name=")
        .or_else(|| raw.strip_prefix("Name="))
        .unwrap_or(raw);
    Some((name.to_string(), p))
}

/// `issuerNameRegistry type="Namespace.Class, Assembly"` in a config: the class's simple
/// name and the line.
fn registry_types(text: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = text[from..].find("<issuerNameRegistry").map(|p| from + p) {
        from = p + 1;
        let end = text[p..].find('>').map_or(text.len(), |e| p + e);
        let tag = &text[p..end];
        if let Some(t) = tag.find("type=") {
            let value = tag[t + 5..].trim_start_matches(['"', '\'']);
            let class = value
                .split([',', '"', '\''])
                .next()
                .unwrap_or_default()
                .trim();
            let simple = class.rsplit('.').next().unwrap_or(class).to_string();
            out.push((simple, line_of(text, p)));
        }
    }
    out
}

fn metadata_location(text: &str) -> Option<String> {
    let p = text.find("\"ida:FederationMetadataLocation\"")?;
    let rest = &text[p..];
    let v = rest.find("value=")? + 6;
    let quote = rest[v..].chars().next()?;
    let value: String = rest[v + 1..].chars().take_while(|c| *c != quote).collect();
    (!value.is_empty()).then_some(value)
}

/// Finds the database-held registries under `roots`.
/// The database-held registries `files` (the scan walk's [`source`]s) show.
pub fn find(mut files: Vec<(PathBuf, String)>) -> Vec<DatabaseRegistry> {
    // The walk's threads met them in any order.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    let is = |path: &Path, ext: &str| {
        path.extension()
            .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case(ext))
    };
    let mut found = Vec::new();
    let context = files
        .iter()
        .filter(|(p, t)| is(p, "cs") && t.contains("IssuingAuthorityKeys"))
        .find_map(|(p, t)| {
            class_deriving(t, "DbContext")?;
            let (name, at) = connection_name(t)?;
            Some((name, p.clone(), line_of(t, at)))
        });
    let migration = files
        .iter()
        .filter(|(p, _)| is(p, "cs"))
        .find_map(|(p, t)| {
            let at = t.find("\"dbo.IssuingAuthorityKeys\"")?;
            t.contains("CreateTable(")
                .then(|| (p.clone(), line_of(t, at)))
        });
    for (path, text) in files.iter().filter(|(p, _)| is(p, "cs")) {
        let Some((class, at)) = class_deriving(text, "ValidatingIssuerNameRegistry") else {
            continue;
        };
        if !text.contains("IssuingAuthorityKeys") {
            continue;
        }
        let configs: Vec<(PathBuf, u32, Option<String>)> = files
            .iter()
            .filter(|(p, _)| is(p, "config"))
            .flat_map(|(p, t)| {
                registry_types(t)
                    .into_iter()
                    .filter(|(c, _)| *c == class)
                    .map(|(_, line)| (p.clone(), line, metadata_location(t)))
                    .collect::<Vec<_>>()
            })
            .collect();
        found.push(DatabaseRegistry {
            kind: DatabaseKind::Vs2013TenantRegistry,
            file: path.clone(),
            line: line_of(text, at),
            class: Some(class),
            table: "IssuingAuthorityKeys".into(),
            connection: context.as_ref().map(|c| c.0.clone()),
            context: context.as_ref().map(|c| (c.1.clone(), c.2)),
            migration: migration.clone(),
            metadata_location: configs.iter().find_map(|c| c.2.clone()),
            configs: configs.into_iter().map(|(p, l, _)| (p, l)).collect(),
        });
    }
    // The template's EF migration alone (the registry class elsewhere, or renamed) still
    // shows the table.
    if found.is_empty()
        && let Some((file, line)) = &migration
    {
        found.push(DatabaseRegistry {
            kind: DatabaseKind::Vs2013TenantRegistry,
            file: file.clone(),
            line: *line,
            class: None,
            table: "IssuingAuthorityKeys".into(),
            connection: context.as_ref().map(|c| c.0.clone()),
            context: context.as_ref().map(|c| (c.1.clone(), c.2)),
            migration: None,
            configs: Vec::new(),
            metadata_location: None,
        });
    }
    for (path, text) in files.iter().filter(|(p, _)| is(p, "sql")) {
        let at = ["[Identity].[ClaimIssuer]", "Identity.ClaimIssuer"]
            .iter()
            .find_map(|n| text.find(n));
        if let Some(at) = at {
            found.push(DatabaseRegistry {
                kind: DatabaseKind::K2ClaimIssuer,
                file: path.clone(),
                line: line_of(text, at),
                class: None,
                table: "[Identity].[ClaimIssuer]".into(),
                connection: None,
                context: None,
                migration: None,
                configs: Vec::new(),
                metadata_location: None,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_shapes_are_read() {
        let cs = "namespace A.Utils\n{\n    public class DatabaseIssuerNameRegistry : ValidatingIssuerNameRegistry\n    {";
        assert_eq!(
            class_deriving(cs, "ValidatingIssuerNameRegistry"),
            Some((
                "DatabaseIssuerNameRegistry".into(),
                cs.find("class ").unwrap()
            ))
        );
        let ctx = "public class TenantDbContext : DbContext\n{\n    public TenantDbContext()\n        : base(\"name=TenantsConnection\")\n";
        assert_eq!(connection_name(ctx).unwrap().0, "TenantsConnection");
        let config = "<x>\n<issuerNameRegistry type=\"A.Utils.DatabaseIssuerNameRegistry, A\" />\n<add key=\"ida:FederationMetadataLocation\" value=\"https://login.windows.net/t/FederationMetadata/2007-06/FederationMetadata.xml\" />";
        assert_eq!(
            registry_types(config),
            vec![("DatabaseIssuerNameRegistry".to_string(), 2)]
        );
        assert!(
            metadata_location(config)
                .unwrap()
                .starts_with("https://login.windows.net/t/")
        );
    }
}
