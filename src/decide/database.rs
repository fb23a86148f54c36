//! `[[database]]` targets, decided by the same rollover policy as files
//! ([`IssuerView::verdict`]: add on publish, keep through the grace period, remove after),
//! with the same lockout guard; the result is SQL (decide/sql.rs), published as a migration
//! file or run by `db apply`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

use super::keys::{IssuerView, Ledger, Verdict};
use super::plan::{KeyAction, PlanError, Reason};
use super::sql;
use crate::load::database::{Live, LiveTable};
use crate::load::{Inputs, IssuerKeys};
use crate::model::database::{DatabaseSettings, Layout, Preset};
use crate::model::thumbprint::{self, Thumbprint};

/// Where the rows a decision started from came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowsFrom {
    /// Read from the table through `url_env`.
    Live,
    /// keyroll.lock: what keyroll's merged migrations put there.
    Lock,
    /// Neither: every published key is inserted, idempotently.
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowChangeKind {
    Add,
    Remove,
    /// A row holding pasted characters: deleted (its clean form is added if wanted).
    RemoveJunk,
    /// VS2013: the tenant row the registry also requires.
    AddTenant,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowChange {
    pub kind: RowChangeKind,
    /// The value as stored or to be stored (40 uppercase hex digits, or the junk as found).
    pub value: String,
    pub thumbprint: Option<Thumbprint>,
    pub why: String,
    /// For a published key the table lacks: when it is expected to sign tokens (its
    /// NotBefore plus AD FS's 5-day promotion threshold) and the whole days until then
    /// (negative: already past).
    pub primary_by: Option<String>,
    pub days_left: Option<i64>,
}

/// AD FS promotes its next certificate 5 days after generating it (CertificatePromotionThreshold).
pub const PROMOTION_DAYS: i64 = 5;

/// One `[[database]]` target's decision for one of its issuers.
#[derive(Debug, Clone, Serialize)]
pub struct DatabasePlan {
    pub database: String,
    pub issuer: String,
    pub dialect: &'static str,
    pub preset: Option<&'static str>,
    pub rows_from: RowsFrom,
    /// The thumbprints the table holds for the issuer before and after the changes.
    pub rows_before: Vec<String>,
    pub rows_after: Vec<String>,
    pub changes: Vec<RowChange>,
    /// Published keys the table lacks and will not get yet (e.g. not yet valid under
    /// `add_not_yet_valid = false`), with why.
    pub notes: Vec<String>,
    /// The SQL statements, in order, inside one transaction.
    pub statements: Vec<String>,
    /// The migration file `apply` adds and `pr` commits.
    pub migration: Migration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Migration {
    #[serde(skip)]
    pub path: PathBuf,
    /// Relative to keyroll.toml's folder, with `/`.
    pub display: String,
    pub text: String,
}

impl DatabasePlan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Decides every `[[database]]` target. Changes go into `plans`, the rows kept into the
/// ledger (so keyroll.lock keeps those keys' history), errors into `errors`. Returns, per
/// (issuer, database), the rows to record in keyroll.lock.
pub fn decide_all(
    inputs: &Inputs,
    views: &BTreeMap<&str, IssuerView<'_>>,
    now: OffsetDateTime,
    ledger: &mut Ledger,
    plans: &mut Vec<DatabasePlan>,
    errors: &mut Vec<PlanError>,
) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut record = BTreeMap::new();
    for db in &inputs.settings.databases {
        let live = inputs.databases.get(&db.name).unwrap_or(&Live::Off);
        if let Live::Failed(detail) = live {
            errors.push(PlanError::Database {
                database: db.name.clone(),
                detail: detail.clone(),
            });
            continue;
        }
        let layout = match db.layout() {
            Ok(layout) => layout,
            Err(detail) => {
                errors.push(PlanError::Database {
                    database: db.name.clone(),
                    detail,
                });
                continue;
            }
        };
        for (index, issuer) in db.issuers.iter().enumerate() {
            // An issuer that failed to load or to prove its identity is in the plan's
            // errors already; its rows are left as they are.
            let Some(view) = views.get(issuer.as_str()) else {
                continue;
            };
            let target = Target {
                inputs,
                db,
                layout: &layout,
                view,
                // Rows no issuer of this target knows are decided once, with the first; and
                // not at all while an issuer of the table failed to load (its rows would look
                // unknown, and it may be the only key it has there).
                owns_unknown: index == 0
                    && db.issuers.iter().all(|o| views.contains_key(o.as_str())),
                others: db
                    .issuers
                    .iter()
                    .filter(|o| *o != issuer)
                    .filter_map(|o| views.get(o.as_str()))
                    .collect(),
                now,
            };
            match target.decide(live, ledger) {
                Ok(plan) => {
                    record.insert(
                        (issuer.clone(), db.name.clone()),
                        plan.rows_after.iter().cloned().collect(),
                    );
                    if plan.has_changes() {
                        plans.push(plan);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }
    unique_versions(plans);
    record
}

/// Every migration of a run has the run's time as its version; a migration tool (Flyway)
/// refuses two files with one version in a folder, and two issuers whose names differ only
/// in punctuation (`a.b`, `a-b`) would even get one file name. Where a folder gets more than
/// one file, each gets its own version: `V<time>_1__…`, `V<time>_2__…`, in plan order.
fn unique_versions(plans: &mut [DatabasePlan]) {
    let folder = |p: &DatabasePlan| {
        p.migration
            .display
            .rsplit_once('/')
            .map_or(String::new(), |(f, _)| f.to_string())
    };
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for p in plans.iter() {
        *count.entry(folder(p)).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for p in plans.iter_mut() {
        let f = folder(p);
        if count[&f] < 2 {
            continue;
        }
        let n = seen.entry(f).or_default();
        *n += 1;
        let rename = |name: &str| name.replacen("__keyroll_", &format!("_{n}__keyroll_"), 1);
        let file = p
            .migration
            .path
            .file_name()
            .and_then(|f| f.to_str())
            .map(rename);
        if let Some(file) = file {
            p.migration.path.set_file_name(file);
        }
        let (dir, name) = p.migration.display.rsplit_once('/').unwrap_or(("", ""));
        p.migration.display = format!("{dir}/{}", rename(name));
    }
}

struct Target<'a> {
    inputs: &'a Inputs,
    db: &'a DatabaseSettings,
    layout: &'a Layout,
    view: &'a IssuerView<'a>,
    owns_unknown: bool,
    others: Vec<&'a IssuerView<'a>>,
    now: OffsetDateTime,
}

/// A row as the decision sees it.
struct Row {
    value: String,
    clean: Option<Thumbprint>,
    /// What a person pasted in with it (U+200E, spaces, lowercase is fine: SQL Server's
    /// default collation ignores case, .NET prints uppercase).
    junk: Option<String>,
}

impl Target<'_> {
    fn issuer(&self) -> &str {
        &self.view.settings.name
    }

    fn keys(&self) -> &IssuerKeys {
        self.view.keys
    }

    /// The rows this issuer's decision starts from.
    fn rows(&self, live: &Live) -> (RowsFrom, Vec<Row>, Option<Vec<String>>) {
        match live {
            Live::Read(table) => (RowsFrom::Live, self.live_rows(table), table.tenants.clone()),
            _ => {
                let locked = self
                    .inputs
                    .lock
                    .records
                    .get(self.issuer())
                    .and_then(|r| r.databases.get(&self.db.name));
                match locked {
                    Some(rows) => (
                        RowsFrom::Lock,
                        rows.iter()
                            .map(|value| Row {
                                value: value.clone(),
                                clean: value.parse().ok(),
                                junk: None,
                            })
                            .collect(),
                        None,
                    ),
                    None => (RowsFrom::Nothing, Vec::new(), None),
                }
            }
        }
    }

    /// What a stored value is to the app: the key it matches, and why the row is junk (to be
    /// deleted by its stored value, its clean form added) when the app's own comparison does
    /// not match it. The app compares the stored text with the 40 uppercase hexadecimal
    /// digits WIF computes: exactly in PostgreSQL and SQLite; in SQL Server and MySQL/MariaDB
    /// their default collations ignore case and trailing spaces (PAD SPACE), so such a row
    /// does match, and must not be deleted and inserted again (the insert would find it, and
    /// the delete's guard would count the very row it deletes).
    fn stored_form(&self, value: &str) -> (Option<Thumbprint>, Option<String>) {
        let report = thumbprint::check(value);
        let clean = report.thumbprint();
        if let Some(t) = clean
            && self.db.dialect.stored_equals(value, &t.to_upper_hex())
        {
            return (clean, None);
        }
        let mut junk: Vec<String> = report
            .removed
            .iter()
            .map(|n| format!("contains {n}"))
            .collect();
        if junk.is_empty() && clean.is_some() {
            junk.push(
                "is not stored as the 40 uppercase hexadecimal digits the app compares with".into(),
            );
        }
        (clean, (!junk.is_empty()).then(|| junk.join("; ")))
    }

    /// The live rows that are this issuer's: K2 rows by their issuer URI; otherwise every
    /// row but those another issuer of this target knows (and unknown rows only for the
    /// first issuer).
    fn live_rows(&self, table: &LiveTable) -> Vec<Row> {
        let mut rows = Vec::new();
        for row in &table.rows {
            if self.layout.k2.is_some() {
                let ours = row
                    .issuer
                    .as_deref()
                    .is_some_and(|i| self.keys().entity_ids.contains(i));
                if !ours {
                    continue;
                }
            }
            let (clean, junk) = self.stored_form(&row.value);
            if self.layout.k2.is_none() {
                let known_here = clean.is_some_and(|t| self.view.knows(&t));
                let known_elsewhere =
                    clean.is_some_and(|t| self.others.iter().any(|o| o.knows(&t)));
                if !known_here && (known_elsewhere || !self.owns_unknown) {
                    continue;
                }
            }
            rows.push(Row {
                value: row.value.clone(),
                clean,
                junk,
            });
        }
        rows
    }

    fn decide(&self, live: &Live, ledger: &mut Ledger) -> Result<DatabasePlan, PlanError> {
        let (rows_from, rows, tenants) = self.rows(live);
        let present: BTreeSet<Thumbprint> = rows
            .iter()
            .filter(|r| r.junk.is_none())
            .filter_map(|r| r.clean)
            .collect();
        let mut changes = junk_changes(&rows);
        let mut notes = Vec::new();
        let after = self.key_changes(&present, ledger, &mut changes, &mut notes);
        self.guard(&after)?;
        if let Some(tenant) = self.tenant_to_add(tenants.as_deref(), rows_from) {
            changes.push(RowChange {
                kind: RowChangeKind::AddTenant,
                why: "the registry trusts a key only for a tenant it knows".into(),
                thumbprint: None,
                primary_by: None,
                days_left: None,
                value: tenant,
            });
        }
        ledger.trusts(self.issuer(), after.iter().copied());
        changes.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
        let current: Vec<Thumbprint> = after
            .iter()
            .copied()
            .filter(|t| self.view.is_current(t, self.now))
            .collect();
        let statements = sql::statements(self.db, self.layout, self.keys(), &changes, &current);
        let migration = self.migration(&changes, &statements, rows_from);
        Ok(DatabasePlan {
            database: self.db.name.clone(),
            issuer: self.issuer().to_string(),
            dialect: self.db.dialect.as_str(),
            preset: self.db.preset.map(Preset::as_str),
            rows_from,
            rows_before: rows.iter().map(|r| r.value.clone()).collect(),
            rows_after: after.iter().map(Thumbprint::to_upper_hex).collect(),
            changes,
            notes,
            statements,
            migration,
        })
    }

    /// Each published or present key's verdict as row changes; returns the rows after them.
    fn key_changes(
        &self,
        present: &BTreeSet<Thumbprint>,
        ledger: &mut Ledger,
        changes: &mut Vec<RowChange>,
        notes: &mut Vec<String>,
    ) -> BTreeSet<Thumbprint> {
        let settings = &self.inputs.settings;
        let mut after: BTreeSet<Thumbprint> = present.clone();
        let candidates: BTreeSet<Thumbprint> = present
            .iter()
            .copied()
            .chain(self.keys().published.keys().copied())
            .collect();
        for t in candidates {
            let here = present.contains(&t);
            let verdict = self.view.verdict(&t, settings, self.now);
            if here && !matches!(verdict, Verdict::Drop(_)) {
                ledger.record(
                    self.issuer(),
                    t,
                    KeyAction::Keep,
                    format!("database {} trusts it", self.db.name),
                );
            }
            match verdict {
                Verdict::Want(reason) => {
                    if !here {
                        after.insert(t);
                        let why = reason_text(&reason);
                        ledger.record(
                            self.issuer(),
                            t,
                            KeyAction::Add,
                            format!("database {}: add", self.db.name),
                        );
                        let primary = self.keys().published.get(&t).map(|c| {
                            super::keys::plus(c.not_before, time::Duration::days(PROMOTION_DAYS))
                        });
                        changes.push(RowChange {
                            kind: RowChangeKind::Add,
                            value: t.to_upper_hex(),
                            thumbprint: Some(t),
                            why,
                            primary_by: primary.map(crate::model::cert::rfc3339),
                            days_left: primary.map(|p| (p - self.now).whole_days()),
                        });
                    }
                }
                Verdict::KeepOnly(why) | Verdict::Ignore(why) => {
                    if !here && self.keys().published.contains_key(&t) {
                        notes.push(format!("{t}: {why}; not added"));
                    }
                }
                Verdict::Drop(reason) => {
                    // A table with no issuer column is shared: a row another issuer of it
                    // still keeps (the same certificate, published by both) stays.
                    let kept_by = self
                        .layout
                        .k2
                        .is_none()
                        .then(|| {
                            self.others.iter().find(|o| {
                                o.knows(&t)
                                    && !matches!(
                                        o.verdict(&t, settings, self.now),
                                        Verdict::Drop(_)
                                    )
                            })
                        })
                        .flatten();
                    if let (true, Some(other)) = (here, kept_by) {
                        notes.push(format!(
                            "{t}: kept: issuer {} still trusts it, and the table is shared",
                            other.settings.name
                        ));
                    } else if here
                        && !(matches!(reason, Reason::Unknown) && settings.policy.keep_unknown)
                    {
                        after.remove(&t);
                        ledger.record(
                            self.issuer(),
                            t,
                            KeyAction::Remove,
                            format!("database {}: remove", self.db.name),
                        );
                        changes.push(RowChange {
                            kind: RowChangeKind::Remove,
                            value: t.to_upper_hex(),
                            thumbprint: Some(t),
                            why: reason_text(&reason),
                            primary_by: None,
                            days_left: None,
                        });
                    }
                }
            }
        }
        after
    }

    /// The lockout guard, as for files: after the changes the table must trust a key the
    /// issuer publishes and that is valid now.
    fn guard(&self, after: &BTreeSet<Thumbprint>) -> Result<(), PlanError> {
        if after.iter().any(|t| self.view.is_current(t, self.now)) {
            return Ok(());
        }
        Err(PlanError::DatabaseLockout {
            database: self.db.name.clone(),
            issuer: self.issuer().to_string(),
        })
    }

    /// VS2013's tenant row, when the table is read live and lacks it, or when nothing is
    /// known (the insert is idempotent). The tenant is keyroll.toml's `tenant`, else the
    /// last path segment of the issuer's entityID (what the template's `RefreshKeys` stores).
    fn tenant_to_add(&self, live: Option<&[String]>, from: RowsFrom) -> Option<String> {
        self.layout.tenants.as_ref()?;
        let tenant = self
            .db
            .tenant
            .clone()
            .or_else(|| self.keys().entity_ids.iter().find_map(|id| tenant_of(id)))?;
        match (live, from) {
            (Some(ids), _) => {
                // As the app compares (see `stored_form`).
                let held = |i: &String| self.db.dialect.stored_equals(i, &tenant);
                (!ids.iter().any(held)).then_some(tenant)
            }
            (None, RowsFrom::Nothing) => Some(tenant),
            (None, _) => None,
        }
    }

    fn migration(&self, changes: &[RowChange], statements: &[String], from: RowsFrom) -> Migration {
        let stamp = self
            .now
            .format(time::macros::format_description!(
                "[year][month][day][hour][minute][second]"
            ))
            .unwrap_or_default();
        let slug: String = self
            .issuer()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let file = format!("V{stamp}__keyroll_{}_{slug}.sql", self.db.name);
        let folder = self.db.migrations.trim_end_matches('/');
        let display = format!("{folder}/{file}");
        let text = sql::migration_text(
            &sql::Header {
                db: self.db,
                issuer: self.issuer(),
                keys: self.keys(),
                changes,
                from,
                now: self.now,
            },
            statements,
        );
        Migration {
            path: self.inputs.settings.root.join(folder).join(file),
            display,
            text,
        }
    }
}

/// Rows holding pasted characters or no thumbprint at all: deleted (the clean form is
/// added by its key's own verdict when wanted).
fn junk_changes(rows: &[Row]) -> Vec<RowChange> {
    rows.iter()
        .filter(|r| r.junk.is_some() || r.clean.is_none())
        .map(|row| RowChange {
            kind: RowChangeKind::RemoveJunk,
            value: row.value.clone(),
            thumbprint: row.clean,
            primary_by: None,
            days_left: None,
            why: match (&row.junk, row.clean) {
                (Some(junk), Some(t)) => {
                    format!("{junk}: never equals {t}, so the registry never matches it")
                }
                _ => "is not a SHA-1 thumbprint".into(),
            },
        })
        .collect()
}

fn reason_text(reason: &Reason) -> String {
    use crate::model::cert::rfc3339;
    match reason {
        Reason::Published {
            since,
            not_before,
            not_after,
            not_yet_valid,
        } => format!(
            "published since {}, valid {} to {}{}",
            rfc3339(*since),
            rfc3339(*not_before),
            rfc3339(*not_after),
            if *not_yet_valid {
                " (not yet valid: added early)"
            } else {
                ""
            }
        ),
        Reason::GraceElapsed {
            missing_since,
            grace,
        } => format!(
            "absent from the metadata since {}; grace of {} elapsed",
            rfc3339(*missing_since),
            crate::model::settings::format_duration(*grace)
        ),
        Reason::ExpiredUnpublished { not_after } => {
            format!("expired on {} and no longer published", rfc3339(*not_after))
        }
        Reason::Unknown => {
            "not published by the issuer and not in keyroll.lock (keep_unknown = false)".into()
        }
        other => other.code().to_string(),
    }
}

/// The tenant an entityID names in its last path segment (`https://sts.windows.net/<id>/`):
/// a tenant ID or a domain name. Entra ID's multi-tenant metadata names `{tenantid}` there,
/// which is no tenant at all.
fn tenant_of(entity_id: &str) -> Option<String> {
    // The path after `scheme://host`: the host itself is no tenant.
    let (_, rest) = entity_id.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let last = path.split('/').rfind(|s| !s.is_empty())?;
    let tenant = last
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    tenant.then(|| last.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tenant_an_entity_id_names() {
        use super::tenant_of;
        assert_eq!(
            tenant_of("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into())
        );
        assert_eq!(
            tenant_of("https://sts.windows.net/contoso.onmicrosoft.com"),
            Some("contoso.onmicrosoft.com".into())
        );
        assert_eq!(tenant_of("https://sts.windows.net/{tenantid}/"), None);
        assert_eq!(tenant_of("urn:contoso"), None);
        assert_eq!(tenant_of("https://sts.windows.net//"), None);
    }
}
