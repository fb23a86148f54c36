//! The SQL a `[[database]]` decision becomes: one statement per row change, each idempotent
//! (an insert only where the row is missing, a delete of a row that is gone does nothing) and
//! each delete guarded so that it happens only while the table still holds a key the issuer
//! publishes and that is valid now; then a check that fails the transaction unless every
//! added key is there and a current key is. Names are quoted per dialect; values are
//! literals, never built from anything but thumbprints, tenant IDs, entityIDs and the rows
//! read.

use time::OffsetDateTime;

use super::database::{RowChange, RowChangeKind, RowsFrom};
use crate::load::IssuerKeys;
use crate::model::cert::rfc3339;
use crate::model::database::{DatabaseSettings, Dialect, Layout};
use crate::model::thumbprint::Thumbprint;

/// A value as a comment may hold it: printable ASCII kept, anything else (a pasted U+200E, a
/// line break that would end the comment) written as `\u{...}`.
pub fn comment_safe(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        }
    }
    out
}

struct Sql<'a> {
    d: Dialect,
    layout: &'a Layout,
    /// K2: the issuer URIs the rows of this issuer carry (its entityIDs).
    entity_ids: Vec<String>,
}

impl Sql<'_> {
    fn table(&self) -> String {
        self.d.table(&self.layout.table)
    }

    fn column(&self) -> String {
        self.d.quote(&self.layout.thumbprint_column)
    }

    fn list(&self, values: &[String]) -> String {
        values
            .iter()
            .map(|v| self.d.literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `AND <issuer column> IN (...)` for K2, whose table holds every issuer's rows.
    fn scope(&self, alias: &str) -> String {
        match &self.layout.k2 {
            Some(k2) => format!(
                " AND {alias}{} IN ({})",
                self.d.quote(&k2.issuer_column),
                self.list(&self.entity_ids)
            ),
            None => String::new(),
        }
    }

    /// `SELECT ... WHERE NOT EXISTS`: MySQL wants a FROM, which DUAL gives.
    fn dual(&self) -> &'static str {
        if self.d == Dialect::Mysql {
            " FROM DUAL"
        } else {
            ""
        }
    }

    /// A condition on the table itself, usable in a DELETE from it: MySQL refuses a
    /// subquery on the table being changed unless it is a derived table (materialised
    /// first), so there it is wrapped.
    fn exists_in_table(&self, condition: &str) -> String {
        let inner = format!("SELECT 1 FROM {} WHERE {condition}", self.table());
        if self.d == Dialect::Mysql {
            format!("EXISTS (SELECT 1 FROM ({inner}) AS keyroll_kept)")
        } else {
            format!("EXISTS ({inner})")
        }
    }

    fn has_current(&self, current: &[String]) -> String {
        self.exists_in_table(&format!(
            "{} IN ({}){}",
            self.column(),
            self.list(current),
            self.scope("")
        ))
    }

    fn insert_missing(&self, table: &str, column: &str, value: &str) -> String {
        let (t, c, v) = (
            self.d.table(table),
            self.d.quote(column),
            self.d.literal(value),
        );
        format!(
            "INSERT INTO {t} ({c}) SELECT {v}{} WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE {c} = {v});",
            self.dual()
        )
    }

    /// Deletes the rows equal to `value` while a current key stays. `exact`: only a row
    /// holding these very characters (a pasted row): SQL Server's and MySQL's usual
    /// collations ignore case and trailing spaces, and may give a character such as U+200E
    /// no weight, so a plain `=` would delete the clean row of the same key with it.
    fn delete_guarded(&self, value: &str, current: &[String], exact: bool) -> Vec<String> {
        let guard = self.has_current(current);
        let v = self.d.literal(value);
        let equals = |column: String| -> String {
            match (exact, self.d) {
                (true, Dialect::Mssql) => format!("{column} COLLATE Latin1_General_BIN2 = {v}"),
                (true, Dialect::Mysql) => {
                    format!("CAST({column} AS BINARY) = CAST({v} AS BINARY)")
                }
                // PostgreSQL and SQLite compare exactly already.
                _ => format!("{column} = {v}"),
            }
        };
        let mut out = Vec::new();
        if let Some(k2) = &self.layout.k2 {
            // The realm mappings of the rows going first, while their IDs can be found.
            out.push(format!(
                "DELETE FROM {realm} WHERE {rid} IN (SELECT {id} FROM {t} WHERE {same}{scope}) AND {guard};",
                realm = self.d.table(&k2.realm_table),
                rid = self.d.quote(&k2.realm_issuer_column),
                id = self.d.quote(&k2.id_column),
                t = self.table(),
                same = equals(self.column()),
                scope = self.scope(""),
            ));
        }
        out.push(format!(
            "DELETE FROM {} WHERE {}{} AND {guard};",
            self.table(),
            equals(self.column()),
            self.scope("")
        ));
        out
    }

    /// K2: the issuer's row duplicated with the new thumbprint (the lowest-ID row of the
    /// issuer is the template), then the template's realm mappings for the new row.
    fn k2_insert(&self, value: &str) -> Vec<String> {
        let Some(k2) = &self.layout.k2 else {
            return Vec::new();
        };
        let d = self.d;
        let (t, c, id, v) = (
            self.table(),
            self.column(),
            d.quote(&k2.id_column),
            d.literal(value),
        );
        let template = format!(
            "(SELECT MIN(i.{id}) FROM {t} i WHERE i.{c} <> {v}{})",
            self.scope("i.")
        );
        let copied: Vec<String> = k2.copy_columns.iter().map(|n| d.quote(n)).collect();
        let copied_from: Vec<String> = copied.iter().map(|n| format!("o.{n}")).collect();
        let row = format!(
            "INSERT INTO {t} ({}, {c}) SELECT {}, {v} FROM {t} o WHERE o.{id} = {template} AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{c} = {v}{});",
            copied.join(", "),
            copied_from.join(", "),
            self.scope("x.")
        );
        let realm = d.table(&k2.realm_table);
        let rid = d.quote(&k2.realm_issuer_column);
        let realm_columns: Vec<String> = k2.realm_columns.iter().map(|n| d.quote(n)).collect();
        let same_realm: Vec<String> = realm_columns
            .iter()
            .map(|n| format!("x.{n} = r.{n}"))
            .collect();
        let mappings = format!(
            "INSERT INTO {realm} ({rid}, {}) SELECT n.{id}, {} FROM {realm} r JOIN {t} n ON n.{c} = {v}{} WHERE r.{rid} = {template} AND NOT EXISTS (SELECT 1 FROM {realm} x WHERE x.{rid} = n.{id} AND {});",
            realm_columns.join(", "),
            realm_columns
                .iter()
                .map(|n| format!("r.{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.scope("n."),
            same_realm.join(" AND ")
        );
        vec![row, mappings]
    }

    /// Fails the transaction unless every added key is in the table and a current key is.
    fn check(&self, added: &[String], current: &[String]) -> String {
        let mut conditions = vec![format!(
            "EXISTS (SELECT 1 FROM {} WHERE {} IN ({}){})",
            self.table(),
            self.column(),
            self.list(current),
            self.scope("")
        )];
        for value in added {
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM {} WHERE {} = {}{})",
                self.table(),
                self.column(),
                self.d.literal(value),
                self.scope("")
            ));
        }
        let condition = conditions.join(" AND ");
        let message = "keyroll: the table would not hold every key this migration adds and a key the issuer publishes; rolled back";
        match self.d {
            Dialect::Mssql => format!(
                "IF NOT ({condition})\nBEGIN\n    RAISERROR(N'{message}', 16, 1);\n    ROLLBACK TRANSACTION;\n    RETURN;\nEND;"
            ),
            Dialect::Postgres => {
                // The body is dollar-quoted: its tag must not occur in it, or a value in the
                // condition (an entityID from metadata holding `$$`) would end the body and
                // run what follows as statements of its own.
                let body = format!(
                    "BEGIN IF NOT ({condition}) THEN RAISE EXCEPTION '{message}'; END IF; END"
                );
                let tag = dollar_tag(&body);
                format!("DO {tag}{body}{tag};")
            }
            // Neither has a statement that raises outside a stored program. MySQL and
            // MariaDB: a scalar subquery with two rows fails the statement, and with it the
            // migration run.
            Dialect::Mysql => format!(
                "SELECT CASE WHEN {condition} THEN 1 ELSE (SELECT 1 UNION ALL SELECT 2) END AS keyroll_check;"
            ),
            // SQLite: a failing statement leaves the transaction open, and the sqlite3 shell
            // (without -bail) would go on to COMMIT. A NOT NULL conflict resolved by ROLLBACK
            // ends the transaction itself, so the COMMIT after it has nothing to commit.
            Dialect::Sqlite => format!(
                "CREATE TEMP TABLE IF NOT EXISTS keyroll_check (every_added_key_and_a_current_key_in_the_table INTEGER NOT NULL);\nINSERT OR ROLLBACK INTO keyroll_check SELECT CASE WHEN {condition} THEN 1 END;"
            ),
        }
    }
}

/// A PostgreSQL dollar-quote tag (`$keyroll$`, `$keyroll1$`, …) that `body` does not hold.
fn dollar_tag(body: &str) -> String {
    (0..)
        .map(|n: u32| {
            if n == 0 {
                "$keyroll$".to_string()
            } else {
                format!("$keyroll{n}$")
            }
        })
        .find(|tag| !body.contains(tag.as_str()))
        .expect("some tag is free")
}

/// The statements for a decision's changes, each preceded by a comment saying why.
pub fn statements(
    db: &DatabaseSettings,
    layout: &Layout,
    keys: &IssuerKeys,
    changes: &[RowChange],
    current: &[Thumbprint],
) -> Vec<String> {
    let sql = Sql {
        d: db.dialect,
        layout,
        entity_ids: keys.entity_ids.iter().cloned().collect(),
    };
    let current: Vec<String> = current.iter().map(Thumbprint::to_upper_hex).collect();
    let mut out = Vec::new();
    let mut added = Vec::new();
    for change in changes {
        let comment = format!(
            "-- {} {}: {}",
            match change.kind {
                RowChangeKind::Add => "add",
                RowChangeKind::Remove => "remove",
                RowChangeKind::RemoveJunk => "remove pasted",
                RowChangeKind::AddTenant => "add tenant",
            },
            comment_safe(&change.value),
            comment_safe(&change.why)
        );
        let body: Vec<String> = match change.kind {
            RowChangeKind::AddTenant => match &layout.tenants {
                Some((table, column)) => vec![sql.insert_missing(table, column, &change.value)],
                None => Vec::new(),
            },
            RowChangeKind::Add => {
                added.push(change.value.clone());
                if layout.k2.is_some() {
                    sql.k2_insert(&change.value)
                } else {
                    vec![sql.insert_missing(
                        &layout.table,
                        &layout.thumbprint_column,
                        &change.value,
                    )]
                }
            }
            RowChangeKind::Remove => sql.delete_guarded(&change.value, &current, false),
            RowChangeKind::RemoveJunk => sql.delete_guarded(&change.value, &current, true),
        };
        out.push(format!("{comment}\n{}", body.join("\n")));
    }
    if !out.is_empty() {
        out.push(format!(
            "-- check: every added key and a current key of the issuer are in the table\n{}",
            sql.check(&added, &current)
        ));
    }
    out
}

/// What the migration file says of itself before its SQL.
pub struct Header<'a> {
    pub db: &'a DatabaseSettings,
    pub issuer: &'a str,
    pub keys: &'a IssuerKeys,
    pub changes: &'a [RowChange],
    pub from: RowsFrom,
    pub now: OffsetDateTime,
}

/// The migration file: comments naming the issuer, its metadata's SHA-256, the keys and
/// why; then the statements in one transaction.
pub fn migration_text(header: &Header<'_>, statements: &[String]) -> String {
    let db = header.db;
    let mut text = format!(
        "-- keyroll migration for database \"{}\" ({}{}), issuer \"{}\"\n-- written {}; one transaction; running it again changes nothing.\n",
        db.name,
        db.preset.map_or("custom table", |p| p.as_str()),
        format_args!(", {}", db.dialect.as_str()),
        comment_safe(header.issuer),
        rfc3339(header.now),
    );
    for source in &header.keys.sources {
        text.push_str(&format!(
            "-- metadata {} sha256 {}\n",
            comment_safe(&crate::model::secret::redact_urls(&source.source)),
            source.sha256
        ));
    }
    text.push_str(&format!(
        "-- rows known from: {}\n",
        match header.from {
            RowsFrom::Live => "the table itself (url_env)",
            RowsFrom::Lock => "keyroll.lock (keyroll's merged migrations)",
            RowsFrom::Nothing => "nothing yet: every published key is inserted where missing",
        }
    ));
    if db.preset == Some(crate::model::database::Preset::K2ClaimIssuer) {
        text.push_str("-- K2 reads this table at start: restart the K2 service after this runs.\n");
    }
    if db.preset == Some(crate::model::database::Preset::Vs2013TenantRegistry) {
        text.push_str(
            "-- DatabaseIssuerNameRegistry reads these rows on each sign-in; no restart needed.\n",
        );
    }
    let _ = header.changes;
    let (begin, commit) = match db.dialect {
        Dialect::Mssql => (
            "SET XACT_ABORT ON;\nBEGIN TRANSACTION;",
            "COMMIT TRANSACTION;",
        ),
        Dialect::Mysql => ("START TRANSACTION;", "COMMIT;"),
        Dialect::Postgres | Dialect::Sqlite => ("BEGIN;", "COMMIT;"),
    };
    text.push('\n');
    text.push_str(begin);
    text.push_str("\n\n");
    for statement in statements {
        text.push_str(statement);
        text.push_str("\n\n");
    }
    text.push_str(commit);
    text.push('\n');
    text
}
