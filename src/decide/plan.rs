//! The plan: what keyroll decided, as data. [`crate::decide`] builds it once, purely, from
//! what [`crate::load`] read; `plan` renders it, `apply` writes it ([`crate::act`]), `pr`
//! publishes one slice of it per issuer ([`Plan::for_issuer`]). Nothing else decides.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

use crate::decide::patch::Change;
use crate::model::cert::rfc3339;
use crate::model::lock::Lock;
use crate::model::settings::format_duration;
use crate::model::thumbprint::Thumbprint;

/// What a change does to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Add,
    Remove,
    Normalize,
    Dedupe,
    /// A single-value setting (appSettings) switched to another key.
    Replace,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Add => "add",
            ChangeKind::Remove => "remove",
            ChangeKind::Normalize => "normalize",
            ChangeKind::Dedupe => "dedupe",
            ChangeKind::Replace => "replace",
        }
    }
}

/// Who a change is for: an issuer's rollover, or hygiene (what WIF needs to load or match
/// the file, whoever's key it is).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    Issuer(String),
    Hygiene,
}

/// Why a change is made: data, rendered by reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Published and to be trusted.
    Published {
        since: OffsetDateTime,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        not_yet_valid: bool,
    },
    GraceElapsed {
        missing_since: OffsetDateTime,
        grace: time::Duration,
    },
    ExpiredUnpublished {
        not_after: OffsetDateTime,
    },
    /// Not published by any configured issuer, not in keyroll.lock (`keep_unknown = false`).
    Unknown,
    /// Characters WIF does not strip (the entry never matched).
    Pasted {
        what: String,
    },
    /// Once cleaned, the entry equals an earlier one.
    PastedDuplicate {
        what: String,
        of_line: u32,
    },
    /// Equal to an earlier entry after WIF's normalization: WIF refuses the file.
    Duplicate {
        of_line: u32,
    },
    /// Spaces or lowercase, rewritten only under `[policy] tidy = true`.
    Untidy {
        what: String,
    },
    /// A single-value setting whose key left the metadata: switched to the current key.
    SingleValueRoll {
        old: Thumbprint,
    },
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Published { .. } => "published",
            Reason::GraceElapsed { .. } => "grace-elapsed",
            Reason::ExpiredUnpublished { .. } => "expired-unpublished",
            Reason::Unknown => "unknown",
            Reason::Pasted { .. } => "pasted",
            Reason::PastedDuplicate { .. } => "pasted-duplicate",
            Reason::Duplicate { .. } => "duplicate",
            Reason::Untidy { .. } => "untidy",
            Reason::SingleValueRoll { .. } => "single-value-roll",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Published {
                since,
                not_before,
                not_after,
                not_yet_valid,
            } => {
                write!(
                    f,
                    "published in metadata since {}, valid from {} to {}",
                    rfc3339(*since),
                    rfc3339(*not_before),
                    rfc3339(*not_after)
                )?;
                if *not_yet_valid {
                    f.write_str(" (not yet valid: the issuer will switch to it later)")?;
                }
                Ok(())
            }
            Reason::GraceElapsed {
                missing_since,
                grace,
            } => write!(
                f,
                "absent from metadata since {}, grace of {} elapsed",
                rfc3339(*missing_since),
                format_duration(*grace)
            ),
            Reason::ExpiredUnpublished { not_after } => write!(
                f,
                "expired on {} and no longer published",
                rfc3339(*not_after)
            ),
            Reason::Unknown => f.write_str(
                "not published by any configured issuer and not in keyroll.lock (keep_unknown = false)",
            ),
            Reason::Pasted { what } => write!(f, "{what} (WIF never matched it)"),
            Reason::PastedDuplicate { what, of_line } => {
                write!(f, "{what}; once cleaned it duplicates line {of_line}")
            }
            Reason::Duplicate { of_line } => write!(
                f,
                "duplicate of line {of_line} (WIF refuses to load duplicate keys)"
            ),
            Reason::Untidy { what } => write!(f, "{what} (policy tidy = true)"),
            Reason::SingleValueRoll { old } => write!(
                f,
                "{old} left the metadata and this setting holds one key: LOCKOUT WINDOW — tokens signed with the old key fail once this deploys, tokens signed with the new one fail until it does"
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlannedChange {
    pub kind: ChangeKind,
    pub owner: Owner,
    /// The issuer whose pull request carries this change (see [`Plan::for_issuer`]).
    pub published_with: Option<String>,
    /// Line of the entry changed; for an addition, of the registry it goes into.
    pub line: u32,
    pub thumbprint: Option<Thumbprint>,
    pub reason: Reason,
    /// The app cannot trust old and new key at once while this change deploys.
    pub lockout_window: bool,
    /// What else a reviewer should know (for an addition: which `name` and why).
    pub note: Option<String>,
    pub change: Change,
}

impl PlannedChange {
    pub fn issuer(&self) -> Option<&str> {
        match &self.owner {
            Owner::Issuer(name) => Some(name),
            Owner::Hygiene => None,
        }
    }
}

impl Serialize for PlannedChange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("PlannedChange", 10)?;
        st.serialize_field("action", &self.kind)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("thumbprint", &self.thumbprint)?;
        st.serialize_field("issuer", &self.issuer())?;
        st.serialize_field(
            "owner",
            match self.owner {
                Owner::Issuer(_) => "issuer",
                Owner::Hygiene => "hygiene",
            },
        )?;
        st.serialize_field("published_with", &self.published_with)?;
        st.serialize_field("reason", &self.reason.to_string())?;
        st.serialize_field("reason_code", self.reason.code())?;
        st.serialize_field("lockout_window", &self.lockout_window)?;
        st.serialize_field("note", &self.note)?;
        st.end()
    }
}

#[derive(Debug, Clone)]
pub struct FilePlan {
    /// Where the file is written by `apply`.
    pub path: PathBuf,
    /// The path relative to keyroll.toml's folder, with `/`: what reports show.
    pub display: String,
    pub changes: Vec<PlannedChange>,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
    /// Per issuer: the file with only the changes that issuer's pull request carries.
    pub slices: BTreeMap<String, Vec<u8>>,
    /// How the file is stored: `before`, `after` and `slices` are its UTF-8 text, encoded
    /// back with [`crate::load::scan::TextEncoding::encode`] when written.
    pub encoding: crate::load::scan::TextEncoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    Valid,
    NotYetValid,
    /// Within `warn_expiring` of its end.
    Expiring,
    Expired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Valid => "valid",
            KeyStatus::NotYetValid => "not-yet-valid",
            KeyStatus::Expiring => "expiring",
            KeyStatus::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAction {
    Add,
    Keep,
    Remove,
    /// Published but not trusted: expired, not yet valid, or withdrawn by a `<remove>`.
    Ignore,
    /// No target file trusts it.
    None,
}

impl KeyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAction::Add => "add",
            KeyAction::Keep => "keep",
            KeyAction::Remove => "remove",
            KeyAction::Ignore => "ignore",
            KeyAction::None => "none",
        }
    }
}

/// What keyroll knows of one key of one issuer, and what the plan does with it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    pub sha1: Thumbprint,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub published: bool,
    pub status: KeyStatus,
    pub first_seen: Option<String>,
    pub missing_since: Option<String>,
    /// When the grace period after `missing_since` ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_end: Option<String>,
    /// When keyroll removes the key: this run, or a later one at the grace period's end or
    /// the certificate's expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal: Option<String>,
    pub action: KeyAction,
    pub reason: String,
}

pub use crate::model::source::{DocumentSignature, SourceInfo};

#[derive(Debug, Clone, Serialize)]
pub struct IssuerReport {
    pub name: String,
    /// The run accepted that none of the keys seen before is published any more.
    pub identity_change: bool,
    pub sources: Vec<SourceInfo>,
    pub entity_ids: Vec<String>,
    pub error: Option<String>,
    pub keys: Vec<KeyReport>,
}

/// Something keyroll could not do for one file or one issuer. It never blocks the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("issuer {issuer}: {detail}")]
    Issuer { issuer: String, detail: String },
    #[error("{file}:{line}:{column}: {code}: {detail}; nothing is changed in this file")]
    Unreadable {
        file: String,
        line: u32,
        column: u32,
        code: String,
        detail: String,
    },
    #[error(
        "{file}:{line}: lockout guard: after these changes the registry would trust no key that issuer {issuer} publishes and that is valid now; nothing written for this file"
    )]
    Lockout {
        file: String,
        line: u32,
        issuer: String,
    },
    #[error(
        "{file}: {count} registries could take issuer {issuer}'s keys and none trusts one yet; set `dialect` or `authority` on the target"
    )]
    AmbiguousRegistry {
        file: String,
        issuer: String,
        count: usize,
    },
    #[error(
        "{file}:{line}: the setting holds {old}, which issuer {issuer} no longer publishes, and the issuer publishes no key valid now to replace it with"
    )]
    NoReplacement {
        file: String,
        line: u32,
        issuer: String,
        old: Thumbprint,
    },
    #[error("database \"{database}\": {detail}; nothing is changed in this table")]
    Database { database: String, detail: String },
    #[error(
        "database \"{database}\": lockout guard: after these changes the table would hold no key that issuer {issuer} publishes and that is valid now; nothing is changed in this table"
    )]
    DatabaseLockout { database: String, issuer: String },
    #[error("{0}")]
    Patch(String),
    #[error("{0}")]
    Time(String),
    #[error("federated domain {domain}: {detail}")]
    Federation { domain: String, detail: String },
}

impl PlanError {
    /// The file the error is about, when it is about one.
    pub fn file(&self) -> Option<&str> {
        match self {
            PlanError::Unreadable { file, .. }
            | PlanError::Lockout { file, .. }
            | PlanError::AmbiguousRegistry { file, .. }
            | PlanError::NoReplacement { file, .. } => Some(file),
            _ => None,
        }
    }
}

impl Serialize for PlanError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub now: OffsetDateTime,
    pub issuers: Vec<IssuerReport>,
    pub files: Vec<FilePlan>,
    /// `[[database]]` targets with changes, per (database, issuer): decide/database.rs.
    pub databases: Vec<super::database::DatabasePlan>,
    /// Things left alone that a reader should know (unknown entries, placeholders).
    pub notes: Vec<String>,
    /// Likely mistakes that stop nothing (a target glob that matches no file).
    pub warnings: Vec<String>,
    /// What keyroll could not do; every other file's changes still stand.
    pub errors: Vec<PlanError>,
    pub lock_before: Lock,
    pub lock_after: Lock,
    /// Per target file (as displayed), the issuers its targets name: which pull requests an
    /// error about that file concerns.
    pub issuers_of_file: BTreeMap<String, Vec<String>>,
    /// Each `[[federated_domain]]`: Entra ID's copy of its issuer's keys
    /// ([`crate::decide::federation`]).
    pub federation: Vec<crate::decide::federation::DomainReport>,
}

impl Plan {
    pub fn lock_changed(&self) -> bool {
        self.lock_before != self.lock_after
    }

    /// Files to change, or keyroll.lock to change in more than its documents' first-seen
    /// records (those ride along; see [`Lock::same_but_documents`]).
    pub fn has_changes(&self) -> bool {
        !self.files.is_empty()
            || !self.databases.is_empty()
            || !self.lock_before.same_but_documents(&self.lock_after)
    }

    /// The part of the plan one issuer's pull request publishes: its rollover changes, the
    /// hygiene changes that travel with it, and its own table of keyroll.lock.
    pub fn for_issuer(&self, issuer: &str) -> IssuerSlice<'_> {
        let files = self
            .files
            .iter()
            .filter_map(|f| {
                let after = f.slices.get(issuer)?;
                Some(SliceFile {
                    plan: f,
                    changes: f
                        .changes
                        .iter()
                        .filter(|c| c.published_with.as_deref() == Some(issuer))
                        .collect(),
                    after: after.clone(),
                })
            })
            .collect();
        let mut lock_after = self.lock_before.clone();
        lock_after.take_issuer_from(&self.lock_after, issuer);
        IssuerSlice {
            report: self.issuers.iter().find(|r| r.name == issuer),
            files,
            databases: self
                .databases
                .iter()
                .filter(|d| d.issuer == issuer)
                .collect(),
            lock_before: &self.lock_before,
            lock_after,
            errors: self
                .errors
                .iter()
                .filter(|e| match e {
                    PlanError::Issuer { issuer: i, .. } => i == issuer,
                    PlanError::DatabaseLockout { issuer: i, .. } => i == issuer,
                    _ => false,
                })
                .collect(),
            file_errors: self
                .errors
                .iter()
                .filter(|e| {
                    e.file().is_some_and(|f| {
                        self.issuers_of_file
                            .get(f)
                            .is_some_and(|names| names.iter().any(|n| n == issuer))
                    })
                })
                .collect(),
        }
    }
}

/// One issuer's part of a plan.
#[derive(Debug)]
pub struct IssuerSlice<'a> {
    pub report: Option<&'a IssuerReport>,
    pub files: Vec<SliceFile<'a>>,
    pub databases: Vec<&'a super::database::DatabasePlan>,
    pub lock_before: &'a Lock,
    pub lock_after: Lock,
    pub errors: Vec<&'a PlanError>,
    /// Errors of files the issuer's keys are trusted in (the file could not be decided).
    pub file_errors: Vec<&'a PlanError>,
}

impl IssuerSlice<'_> {
    pub fn lock_changed(&self) -> bool {
        *self.lock_before != self.lock_after
    }

    pub fn has_changes(&self) -> bool {
        !self.files.is_empty()
            || !self.databases.is_empty()
            || !self.lock_before.same_but_documents(&self.lock_after)
    }
}

#[derive(Debug)]
pub struct SliceFile<'a> {
    pub plan: &'a FilePlan,
    pub changes: Vec<&'a PlannedChange>,
    pub after: Vec<u8>,
}
