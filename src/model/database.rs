//! `[[database]]` targets: tables that hold trusted thumbprints (seed 001's Visual Studio 2013
//! tenant registry, seed 000's K2 `ClaimIssuer`), their SQL dialect and the names of their
//! tables and columns. Pure data and identifier quoting; the decision is in
//! `decide/database.rs`, the live connection in `load/database.rs`.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// SQL Server (T-SQL): what the VS2013 template and K2 run on.
    #[default]
    Mssql,
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    Sqlite,
}

impl Dialect {
    /// Whether a stored value equals `wanted` as the database itself compares them (and so
    /// as the app's query matches it): exactly in PostgreSQL and SQLite; ignoring case and
    /// trailing spaces in SQL Server and MySQL/MariaDB, whose default collations do (PAD
    /// SPACE).
    pub fn stored_equals(self, stored: &str, wanted: &str) -> bool {
        match self {
            Dialect::Mssql | Dialect::Mysql => {
                stored.trim_end_matches(' ').eq_ignore_ascii_case(wanted)
            }
            Dialect::Postgres | Dialect::Sqlite => stored == wanted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Mssql => "mssql",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// One identifier, quoted so case and reserved words are kept.
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::Mssql => format!("[{}]", name.replace(']', "]]")),
            Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// A table name as keyroll.toml writes it (`Schema.Table` or `Table`), quoted. SQL Server
    /// puts an unqualified name in `dbo`, as EF does; the other dialects use the name as EF
    /// created it, with no schema unless one is given.
    pub fn table(self, name: &str) -> String {
        let parts: Vec<&str> = name.split('.').collect();
        match (self, parts.as_slice()) {
            (Dialect::Mssql, [table]) => format!("{}.{}", self.quote("dbo"), self.quote(table)),
            _ => parts
                .iter()
                .map(|p| self.quote(p))
                .collect::<Vec<_>>()
                .join("."),
        }
    }

    /// A string literal: quotes doubled (and backslashes, which MySQL treats as escapes).
    pub fn literal(self, value: &str) -> String {
        let mut text = value.replace('\'', "''");
        if self == Dialect::Mysql {
            text = text.replace('\\', "\\\\");
        }
        match self {
            Dialect::Mssql => format!("N'{text}'"),
            _ => format!("'{text}'"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Visual Studio 2013's "Organizational Accounts" template: `IssuingAuthorityKeys (Id)`
    /// and `Tenants (Id)`, read by its `DatabaseIssuerNameRegistry`.
    Vs2013TenantRegistry,
    /// K2's `[Identity].[ClaimIssuer]`: one row per (issuer, thumbprint), realm mappings in
    /// `[Identity].[ClaimRealmIssuer]`.
    K2ClaimIssuer,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Vs2013TenantRegistry => "vs2013-tenant-registry",
            Preset::K2ClaimIssuer => "k2-claim-issuer",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Unique; names the target in messages and migration files.
    pub name: String,
    pub preset: Option<Preset>,
    #[serde(default)]
    pub dialect: Dialect,
    pub issuers: Vec<String>,
    /// Folder (relative to keyroll.toml) that migration files are added to.
    pub migrations: String,
    /// Environment variable holding a connection URL, for the live rows and `db` commands.
    pub url_env: Option<String>,
    /// The table of thumbprints (`Schema.Table` or `Table`).
    pub table: Option<String>,
    pub thumbprint_column: Option<String>,
    /// VS2013: the tenants table and its column, and the tenant's ID (default: the last
    /// path segment of the issuer's entityID, as the template's `RefreshKeys` takes it).
    pub tenants_table: Option<String>,
    pub tenant_column: Option<String>,
    pub tenant: Option<String>,
    /// K2: the issuer table's key column, the column holding the issuer URI (its rows for
    /// this issuer are found by the entityID), the columns copied to a duplicated row, the
    /// realm mapping table, its column pointing at the issuer row and the columns copied.
    pub id_column: Option<String>,
    pub issuer_column: Option<String>,
    pub copy_columns: Option<Vec<String>>,
    pub realm_table: Option<String>,
    pub realm_issuer_column: Option<String>,
    pub realm_columns: Option<Vec<String>>,
}

/// The names a target's SQL uses, the preset's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub table: String,
    pub thumbprint_column: String,
    pub tenants: Option<(String, String)>,
    pub k2: Option<K2Layout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K2Layout {
    pub id_column: String,
    pub issuer_column: String,
    pub copy_columns: Vec<String>,
    pub realm_table: String,
    pub realm_issuer_column: String,
    pub realm_columns: Vec<String>,
}

/// K2's defaults. `Identity.AddIssuer` documents Name, Issuer, Thumbprint, Description, Uri
/// and UseForLogin; the key column and the realm table's columns are not published, so
/// these are assumptions the README lists and keyroll.toml can override.
pub const K2_COPY_COLUMNS: [&str; 5] = ["Name", "Issuer", "Description", "Uri", "UseForLogin"];

impl DatabaseSettings {
    pub fn layout(&self) -> Result<Layout, String> {
        let given = |value: &Option<String>, default: &str| {
            value.clone().unwrap_or_else(|| default.to_string())
        };
        // SQL Server and PostgreSQL have schemas; in MySQL and SQLite a dotted name would
        // address another database, so K2's schema is dropped there.
        let k2_schema = |table: &str| match self.dialect {
            Dialect::Mssql | Dialect::Postgres => format!("Identity.{table}"),
            Dialect::Mysql | Dialect::Sqlite => table.to_string(),
        };
        match self.preset {
            Some(Preset::Vs2013TenantRegistry) => Ok(Layout {
                table: given(&self.table, "IssuingAuthorityKeys"),
                thumbprint_column: given(&self.thumbprint_column, "Id"),
                tenants: Some((
                    given(&self.tenants_table, "Tenants"),
                    given(&self.tenant_column, "Id"),
                )),
                k2: None,
            }),
            Some(Preset::K2ClaimIssuer) => Ok(Layout {
                table: self.table.clone().unwrap_or_else(|| k2_schema("ClaimIssuer")),
                thumbprint_column: given(&self.thumbprint_column, "Thumbprint"),
                tenants: None,
                k2: Some(K2Layout {
                    id_column: given(&self.id_column, "ID"),
                    issuer_column: given(&self.issuer_column, "Issuer"),
                    copy_columns: self.copy_columns.clone().unwrap_or_else(|| {
                        K2_COPY_COLUMNS.iter().map(|c| c.to_string()).collect()
                    }),
                    realm_table: self
                        .realm_table
                        .clone()
                        .unwrap_or_else(|| k2_schema("ClaimRealmIssuer")),
                    realm_issuer_column: given(&self.realm_issuer_column, "IssuerID"),
                    realm_columns: self
                        .realm_columns
                        .clone()
                        .unwrap_or_else(|| vec!["RealmID".to_string()]),
                }),
            }),
            None => match (&self.table, &self.thumbprint_column) {
                (Some(table), Some(column)) => Ok(Layout {
                    table: table.clone(),
                    thumbprint_column: column.clone(),
                    tenants: None,
                    k2: None,
                }),
                _ => Err("needs `preset` (\"vs2013-tenant-registry\" or \"k2-claim-issuer\"), or both `table` and `thumbprint_column`".into()),
            },
        }
    }

    /// Every name the SQL will hold, for the settings check.
    pub fn names(&self) -> Vec<String> {
        let Ok(layout) = self.layout() else {
            return Vec::new();
        };
        let mut names = vec![layout.table.clone(), layout.thumbprint_column.clone()];
        if let Some((t, c)) = &layout.tenants {
            names.extend([t.clone(), c.clone()]);
        }
        if let Some(k2) = &layout.k2 {
            names.extend([
                k2.id_column.clone(),
                k2.issuer_column.clone(),
                k2.realm_table.clone(),
                k2.realm_issuer_column.clone(),
            ]);
            names.extend(k2.copy_columns.iter().cloned());
            names.extend(k2.realm_columns.iter().cloned());
        }
        names
    }
}

/// Why a target's name or identifier is refused: names go into file names and SQL.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some("may hold only ASCII letters, digits, '-' and '_' (it names migration files)")
    } else {
        None
    }
}

/// Table and column names: letters, digits, `_`, `$`, with `.` between a schema and a table;
/// quoting would handle more, but a name outside these is far likelier a typo.
pub fn identifier_problem(name: &str) -> Option<&'static str> {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if name.split('.').count() > 2 || !name.split('.').all(ok) {
        Some("is not a plain SQL name (letters, digits, '_', '$'; `Schema.Table` at most)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_per_dialect_and_mssql_defaults_to_dbo() {
        assert_eq!(
            Dialect::Mssql.table("IssuingAuthorityKeys"),
            "[dbo].[IssuingAuthorityKeys]"
        );
        assert_eq!(
            Dialect::Mssql.table("Identity.ClaimIssuer"),
            "[Identity].[ClaimIssuer]"
        );
        assert_eq!(
            Dialect::Postgres.table("IssuingAuthorityKeys"),
            "\"IssuingAuthorityKeys\""
        );
        assert_eq!(Dialect::Mysql.table("Tenants"), "`Tenants`");
        assert_eq!(Dialect::Mysql.literal("a'b\\"), "'a''b\\\\'");
        assert_eq!(Dialect::Mssql.literal("x'"), "N'x'''");
    }
}
