//! `keyroll.toml`: the repository's issuers, target files, rollover policy and PR settings.
//! Unknown keys and wrong types are errors naming the key and line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::Duration;

use crate::model::source::KeyUse;

mod database;
mod federated;
pub use federated::*;

pub const FILE_NAME: &str = "keyroll.toml";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: {detail}")]
    Io { file: String, detail: String },
    #[error("{file}:{line}:{column}: {detail}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        detail: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(rename = "issuer", default)]
    pub issuers: Vec<IssuerSettings>,
    #[serde(rename = "target", default)]
    pub targets: Vec<TargetSettings>,
    /// Tables holding trusted thumbprints (`[[database]]`, model/database.rs).
    #[serde(rename = "database", default)]
    pub databases: Vec<crate::model::database::DatabaseSettings>,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub pr: PrSettings,
    /// Domains federated to an issuer, whose copy of its keys Entra ID holds (`keyroll entra`).
    #[serde(rename = "federated_domain", default)]
    pub federated_domains: Vec<FederatedDomain>,
    /// The folder holding keyroll.toml: target globs and metadata paths are relative to it.
    #[serde(skip)]
    pub root: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
    /// The file's text, to name lines in later errors.
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    pub name: String,
    /// URLs or paths (relative to keyroll.toml).
    pub metadata: Vec<String>,
    #[serde(default)]
    pub kind: SourceKind,
    /// A document naming another entity aborts this issuer.
    pub entity_id: Option<String>,
    /// Written into new entries' `name`; default: the name the file already uses, else the entityID.
    pub issuer_name: Option<String>,
    #[serde(default = "default_uses")]
    pub uses: Vec<UseSetting>,
    /// Whether a SAML / WS-Federation document must carry a valid signature by a key this
    /// issuer is already trusted with before keyroll acts on it.
    #[serde(default)]
    pub signature: SignatureMode,
    /// SHA-1 thumbprints of certificates whose signature is trusted regardless of history.
    #[serde(default)]
    pub signers: Vec<String>,
    /// Accept RSA-SHA1 signatures and SHA-1 digests (AD FS may still sign with them) and
    /// 1024-bit signing keys.
    #[serde(default)]
    pub allow_sha1: bool,
    /// How long after its NotBefore AD FS makes a new certificate primary
    /// (CertificatePromotionThreshold, 5 days by default): when Entra ID must hold it.
    pub promotion_threshold: Option<DurationSetting>,
}

/// `[[issuer]] signature = "required" | "if-present" | "off"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMode {
    /// An unsigned document is refused.
    Required,
    /// A signed document must verify, by a trusted signer; an unsigned one is accepted.
    #[default]
    IfPresent,
    /// Signatures are reported, never enforced.
    Off,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Auto,
    Saml,
    Jwks,
    Openid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UseSetting {
    Signing,
    Encryption,
}

fn default_uses() -> Vec<UseSetting> {
    vec![UseSetting::Signing]
}

impl IssuerSettings {
    /// Whether a published key's uses count for this issuer (no `use` counts as both).
    pub fn counts(&self, uses: &std::collections::BTreeSet<KeyUse>) -> bool {
        uses.iter().any(|u| match u {
            KeyUse::Unspecified => true,
            KeyUse::Signing => self.uses.contains(&UseSetting::Signing),
            KeyUse::Encryption => self.uses.contains(&UseSetting::Encryption),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// Globs relative to keyroll.toml's folder, e.g. `src/**/Web.config`.
    pub files: Vec<String>,
    /// Restrict to one dialect (rule name).
    pub dialect: Option<String>,
    /// Which issuers these files trust.
    pub issuers: Vec<String>,
    /// For ValidatingIssuerNameRegistry: which `<authority name=…>` tracks the issuers.
    pub authority: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Add keys published but not yet valid (AD FS publishes the next key ~20 days ahead).
    pub add_not_yet_valid: bool,
    /// How long a key stays trusted after it left the metadata.
    pub remove_after: DurationSetting,
    /// Remove a key at once once its certificate expired and it is no longer published.
    pub remove_expired: bool,
    /// Leave entries keyroll cannot attribute to any issuer alone (reported either way).
    pub keep_unknown: bool,
    pub warn_expiring: DurationSetting,
    /// Also rewrite entries that load and match but are untidy (spaced, lowercase). Entries
    /// that never match (dirty) or stop the app loading (duplicates) are always fixed.
    pub tidy: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            add_not_yet_valid: true,
            remove_after: DurationSetting(Duration::days(7)),
            remove_expired: true,
            keep_unknown: true,
            warn_expiring: DurationSetting(Duration::days(30)),
            tidy: false,
        }
    }
}

/// `"7d"`, `"36h"`, `"90m"`, or a whole number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSetting(pub Duration);

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Days(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Days(days) if (0..=MAX_DURATION_DAYS).contains(&days) => {
                Ok(DurationSetting(Duration::days(days)))
            }
            Raw::Days(days) if days > MAX_DURATION_DAYS => Err(serde::de::Error::custom(
                format!("{days} days is longer than {MAX_DURATION_DAYS} days (100 years)"),
            )),
            Raw::Days(_) => Err(serde::de::Error::custom("a duration cannot be negative")),
            Raw::Text(text) => parse_duration(&text).map(DurationSetting).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "\"{text}\" is not a duration like \"7d\", \"36h\" or \"90m\" of at most 100 years"
                ))
            }),
        }
    }
}

/// The longest duration keyroll accepts (100 years): longer ones are mistakes, and would
/// overflow date arithmetic.
pub const MAX_DURATION_DAYS: i64 = 36_525;

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let seconds_per = match unit.trim() {
        "d" | "day" | "days" => 86_400,
        "h" | "hour" | "hours" => 3_600,
        "m" | "min" | "minutes" => 60,
        _ => return None,
    };
    let seconds = n.checked_mul(seconds_per)?;
    (seconds <= MAX_DURATION_DAYS * 86_400).then(|| Duration::seconds(seconds))
}

/// A duration as a person writes it, in the largest unit that states it exactly, singular
/// for one: "1 day", "36 hours", "90 minutes" (never "1 hours", nor 90 minutes rounded down
/// to "1 hours").
pub fn format_duration(d: Duration) -> String {
    let seconds = d.whole_seconds();
    let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(per, _)| seconds % per == 0)
        .map_or((seconds, "second"), |(per, unit)| (seconds / per, unit));
    format!("{n} {unit}{}", if n.abs() == 1 { "" } else { "s" })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrSettings {
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub draft: bool,
    pub branch_prefix: String,
    pub base: Option<String>,
    pub author_name: String,
    pub author_email: String,
    /// `owner/name`; default: `--repo`, else `GITHUB_REPOSITORY`, else the origin remote.
    pub repository: Option<String>,
    /// GitHub Enterprise Server API, `https://HOST/api/v3`; default: `GITHUB_API_URL`, else
    /// `https://api.github.com`.
    pub api_url: Option<String>,
    /// How the branch's commit is made: through GitHub's API (signed by GitHub: Verified) or
    /// with git and pushed.
    pub commits: CommitMode,
}

/// `[pr] commits = "auto" | "api" | "git"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitMode {
    /// `api` with a GitHub App installation token (`ghs_…`, which the workflow's
    /// `GITHUB_TOKEN` is), `git` with any other: only an App's API commits are signed.
    #[default]
    Auto,
    Api,
    Git,
}

impl CommitMode {
    /// The mode a run uses with `token` (its text, when there is one).
    pub fn resolve(self, token: Option<&str>) -> CommitMode {
        match self {
            CommitMode::Auto if token.is_some_and(|t| t.starts_with("ghs_")) => CommitMode::Api,
            CommitMode::Auto => CommitMode::Git,
            other => other,
        }
    }
}

impl Default for PrSettings {
    fn default() -> Self {
        PrSettings {
            labels: Vec::new(),
            reviewers: Vec::new(),
            team_reviewers: Vec::new(),
            assignees: Vec::new(),
            draft: false,
            branch_prefix: "keyroll/".into(),
            base: None,
            author_name: "keyroll[bot]".into(),
            author_email: "keyroll[bot]@users.noreply.github.com".into(),
            repository: None,
            api_url: None,
            commits: CommitMode::Auto,
        }
    }
}

impl Settings {
    pub fn parse(path: &Path, text: &str) -> Result<Self, SettingsError> {
        let text_at = TextAt {
            file: path.display().to_string(),
            text,
        };
        let mut settings: Settings = toml::from_str(text)
            .map_err(|e| text_at.error(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        settings.path = path.to_path_buf();
        settings.text = text.to_string();
        settings.root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let names = settings.check_issuers(&text_at)?;
        settings.check_targets(&names, &text_at)?;
        settings.check_databases(&names, &text_at)?;
        settings.check_branches(&text_at)?;
        settings.check_federated_domains(&names, &text_at)?;
        Ok(settings)
    }

    /// Every issuer has a usable, unique name, a metadata source, well-formed signers and
    /// some `uses`. Returns the names, for the targets to be checked against.
    fn check_issuers(
        &self,
        text_at: &TextAt<'_>,
    ) -> Result<std::collections::BTreeSet<&str>, SettingsError> {
        let at = |offset, detail| text_at.error(offset, detail);
        let offset_of = |needle: &str| text_at.offset_of(needle);
        let mut names = std::collections::BTreeSet::new();
        for (index, issuer) in self.issuers.iter().enumerate() {
            if let Some(why) = issuer_name_problem(&issuer.name) {
                return Err(at(
                    text_at.issuer_at(index, &issuer.name),
                    format!("issuer name {:?} {why}", issuer.name),
                ));
            }
            if !names.insert(issuer.name.as_str()) {
                return Err(at(
                    offset_of(&format!("\"{}\"", issuer.name)),
                    format!("issuer \"{}\" is defined twice", issuer.name),
                ));
            }
            if issuer.metadata.is_empty() {
                return Err(at(
                    offset_of(&format!("\"{}\"", issuer.name)),
                    format!("issuer \"{}\" lists no metadata source", issuer.name),
                ));
            }
            for signer in &issuer.signers {
                if signer
                    .parse::<crate::model::thumbprint::Thumbprint>()
                    .is_err()
                    || signer.trim().len() != 40
                {
                    return Err(at(
                        offset_of(signer),
                        format!(
                            "issuer \"{}\": signer \"{signer}\" is not a 40-hex-digit SHA-1 thumbprint",
                            issuer.name
                        ),
                    ));
                }
            }
            if issuer.uses.is_empty() {
                return Err(at(
                    offset_of("uses"),
                    format!("issuer \"{}\": `uses` is empty", issuer.name),
                ));
            }
        }
        Ok(names)
    }

    /// Every target names defined issuers and holds globs that compile.
    fn check_targets(
        &self,
        names: &std::collections::BTreeSet<&str>,
        text_at: &TextAt<'_>,
    ) -> Result<(), SettingsError> {
        for target in &self.targets {
            for name in &target.issuers {
                if !names.contains(name.as_str()) {
                    return Err(text_at.error(
                        text_at.offset_of(&format!("\"{name}\"")),
                        format!("target names issuer \"{name}\", which no [[issuer]] defines"),
                    ));
                }
            }
            for glob in &target.files {
                if let Err(e) = globset::Glob::new(glob) {
                    return Err(
                        text_at.error(text_at.offset_of(glob), format!("bad glob {glob}: {e}"))
                    );
                }
            }
        }
        Ok(())
    }

    /// The branch prefix, and the branch each issuer's pull request gets from it.
    fn check_branches(&self, text_at: &TextAt<'_>) -> Result<(), SettingsError> {
        let at = |offset, detail| text_at.error(offset, detail);
        if self.pr.branch_prefix.is_empty() || self.pr.branch_prefix.contains(' ') {
            return Err(at(
                text_at.offset_of("branch_prefix"),
                "branch_prefix must be non-empty and contain no spaces".into(),
            ));
        }
        // Every issuer's branch is a name git accepts, and no two issuers share one: the
        // second would force-push over the first's open pull request.
        let prefix = &self.pr.branch_prefix;
        if !valid_branch(&format!("{prefix}x")) {
            return Err(at(
                text_at.offset_of("branch_prefix"),
                format!(
                    "branch_prefix {prefix:?} does not make valid git branch names (git's ref-name rules: no \"..\", no space, no \"~^:?*[\\\" or control characters, no leading \"/\", no component starting with \".\" or ending in \".lock\")"
                ),
            ));
        }
        let mut branches: std::collections::BTreeMap<String, &str> = Default::default();
        for (index, issuer) in self.issuers.iter().enumerate() {
            let branch = self.branch_name(&issuer.name);
            let issuer_at = text_at.issuer_at(index, &issuer.name);
            if !valid_branch(&branch) {
                return Err(at(
                    issuer_at,
                    format!(
                        "issuer {:?} gives the branch {branch:?}, which git refuses as a branch name; rename the issuer",
                        issuer.name
                    ),
                ));
            }
            if let Some(first) = branches.insert(branch.clone(), &issuer.name) {
                return Err(at(
                    issuer_at,
                    format!(
                        "issuers {first:?} and {:?} both get the branch {branch:?} (names are lowercased and every character but letters, digits, '.' and '_' becomes '-'); rename one of them",
                        issuer.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The branch of an issuer's pull request: `branch_prefix` + the name lowercased, every
    /// character but ASCII letters, digits, `.` and `_` turned into `-`.
    pub fn branch_name(&self, issuer: &str) -> String {
        let slug: String = issuer
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("{}{}", self.pr.branch_prefix, slug.trim_matches('-'))
    }

    /// The line of keyroll.toml where `needle` first appears (1 when it does not).
    pub fn line_of(&self, needle: &str) -> usize {
        self.text
            .find(needle)
            .map_or(1, |at| self.text[..at].matches('\n').count() + 1)
    }

    pub fn issuer(&self, name: &str) -> Option<&IssuerSettings> {
        self.issuers.iter().find(|i| i.name == name)
    }

    /// A metadata source as written, resolved against keyroll.toml's folder when a path.
    pub fn resolve_source(&self, source: &str) -> String {
        if crate::model::source::is_url(source)
            || Path::new(source).is_absolute()
            || self.root == Path::new(".")
        {
            source.to_string()
        } else {
            self.root.join(source).display().to_string()
        }
    }
}

/// keyroll.toml's text, to point an error at the line and column of what it is about.
struct TextAt<'t> {
    file: String,
    text: &'t str,
}

impl TextAt<'_> {
    fn error(&self, offset: usize, detail: String) -> SettingsError {
        let before = &self.text[..offset.min(self.text.len())];
        SettingsError::Invalid {
            file: self.file.clone(),
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            detail,
        }
    }

    /// Where the index-th table with this header starts.
    fn table_at(&self, header: &str, index: usize) -> usize {
        self.text
            .match_indices(header)
            .nth(index)
            .map_or(0, |(at, _)| at)
    }

    /// The first place `needle` occurs, else the start.
    fn offset_of(&self, needle: &str) -> usize {
        self.text.find(needle).unwrap_or(0)
    }

    /// Where the index-th [[issuer]] table writes its name.
    fn issuer_at(&self, index: usize, name: &str) -> usize {
        let text = self.text;
        let table = text
            .match_indices("[[issuer]]")
            .nth(index)
            .map_or(0, |(at, _)| at);
        text[table..]
            .find(&toml_string(name))
            .or_else(|| text[table..].find(name))
            .map_or(table, |p| table + p)
    }
}

/// Why an issuer name is refused: it names branches, lock tables and PR titles, so it must
/// be something a person can read and that cannot climb out of a folder or ref namespace.
fn issuer_name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("is empty")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator ('/' or '\\')")
    } else if name.contains("..") {
        Some("contains \"..\"")
    } else if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        Some("contains a control or invisible character")
    } else if name.trim() != name {
        Some("starts or ends with white space")
    } else {
        None
    }
}

/// Characters that print as nothing (format characters such as U+200E, U+FEFF).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// Whether git accepts `refs/heads/<branch>`: git-check-ref-format's rules. Checked here,
/// not through libgit2, whose first call initializes OpenSSL (a quarter of a `plan` over a
/// thousand configs); a property test holds this to libgit2's answer.
pub fn valid_branch(branch: &str) -> bool {
    let forbidden = |c: char| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    };
    !branch.is_empty()
        && !branch.contains("..")
        && !branch.contains("@{")
        && !branch.ends_with('.')
        && !branch.chars().any(forbidden)
        && branch
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

/// How a string is written in TOML (basic string), to find it in the file's text.
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {

    #[test]
    fn commits_auto_means_the_api_only_with_an_app_installation_token() {
        use super::CommitMode::*;
        assert_eq!(
            Auto.resolve(Some("ghs_16C7e42F292c6912E7710c838347Ae178B4a")),
            Api
        );
        assert_eq!(Auto.resolve(Some("ghp_personal")), Git);
        assert_eq!(Auto.resolve(Some("github_pat_11ABC")), Git);
        assert_eq!(Auto.resolve(None), Git);
        assert_eq!(Api.resolve(None), Api);
        assert_eq!(Git.resolve(Some("ghs_x")), Git);
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit_singular_for_one() {
        for (text, shown) in [
            ("1d", "1 day"),
            ("7d", "7 days"),
            ("1h", "1 hour"),
            ("36h", "36 hours"),
            ("24h", "1 day"),
            ("1m", "1 minute"),
            ("90m", "90 minutes"),
            ("120m", "2 hours"),
            ("0d", "0 days"),
        ] {
            assert_eq!(
                format_duration(parse_duration(text).unwrap()),
                shown,
                "{text}"
            );
        }
        assert_eq!(format_duration(Duration::seconds(1)), "1 second");
        assert_eq!(format_duration(Duration::seconds(61)), "61 seconds");
    }

    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// The hand-written rules answer as libgit2 does, on names made of the characters
        /// the rules are about.
        #[test]
        fn branch_names_are_judged_as_libgit2_judges_them(
            branch in "[a./@{}~^:?*\\\\\\[ locké\t\u{7f}-]{0,12}"
        ) {
            proptest::prop_assert_eq!(
                valid_branch(&branch),
                git2::Reference::is_valid_name(&format!("refs/heads/{branch}")),
                "{:?}", branch
            );
        }
    }

    #[test]
    fn branch_names_git_refuses() {
        for bad in [
            "",
            "a..b",
            "a@{b",
            "a.",
            "a/",
            "/a",
            "a//b",
            ".a",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a b",
            "a~b",
            "a^b",
            "a:b",
            "a?b",
            "a*b",
            "a[b",
            "a\\b",
            "a\u{7f}",
            "a\tb",
        ] {
            assert!(!valid_branch(bad), "{bad:?}");
            assert!(
                !git2::Reference::is_valid_name(&format!("refs/heads/{bad}")),
                "{bad:?}"
            );
        }
        for good in [
            "keyroll/adfs",
            "@",
            "a.b",
            "a@b",
            "a/b.c",
            "ünï",
            "a-lock",
            "a.locks",
        ] {
            assert!(valid_branch(good), "{good:?}");
        }
    }

    #[test]
    fn defaults_and_durations() {
        let s = Settings::parse(
            Path::new("repo/keyroll.toml"),
            "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n[[target]]\nfiles = [\"**/Web.config\"]\nissuers = [\"adfs\"]\n[policy]\nremove_after = \"36h\"\n",
        )
        .unwrap();
        assert_eq!(s.policy.remove_after.0, Duration::hours(36));
        assert!(s.policy.add_not_yet_valid && s.policy.keep_unknown);
        assert_eq!(s.issuers[0].uses, [UseSetting::Signing]);
        assert_eq!(s.pr.branch_prefix, "keyroll/");
        assert_eq!(
            s.resolve_source("md.xml"),
            Path::new("repo").join("md.xml").display().to_string()
        );
    }

    #[test]
    fn federated_domains_are_checked_where_they_are_written() {
        let base = "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n";
        let domain = |extra: &str| {
            format!(
                "\n[[federated_domain]]\ndomain = \"contoso.com\"\nissuer = \"adfs\"\ntenant = \"t\"\nclient_id = \"c\"\n{extra}"
            )
        };
        let parse = |text: String| Settings::parse(Path::new("keyroll.toml"), &text);
        let ok = parse(format!("{base}{}", domain(""))).unwrap();
        assert_eq!(
            ok.federated_domains[0].graph_url,
            "https://graph.microsoft.com"
        );
        assert_eq!(ok.issuers[0].promotion_threshold(), Duration::days(5));
        let err = parse(format!("{base}{}{}", domain(""), domain("")))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("keyroll.toml:12:1: federated_domain \"contoso.com\" is listed twice"),
            "{err}"
        );
        // An issuer counting encryption keys: AD FS's next key could be its decrypting one.
        let err = parse(format!(
            "{base}uses = [\"signing\", \"encryption\"]\n{}",
            domain("")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("keyroll.toml:8:1: ")
                && err.contains("whose uses include \"encryption\""),
            "{err}"
        );
        for (extra, says) in [
            (
                "login_url = \"ftp://x\"\n",
                "login_url \"ftp://x\" has the scheme ftp:",
            ),
            (
                "graph_url = \"https://u:p@graph\"\n",
                "has no host, or has user information",
            ),
            ("graph_url = \"http://[::1]:8080\"\n", ""),
            ("graph_url = \"http://localhost:1\"\n", ""),
        ] {
            let result = parse(format!("{base}{}", domain(extra)));
            match result {
                Ok(_) => assert!(says.is_empty(), "{extra}"),
                Err(e) => assert!(!says.is_empty() && e.to_string().contains(says), "{e}"),
            }
        }
        let err = parse(format!(
            "{base}{}",
            domain("").replace("client_id = \"c\"", "client_id = \"\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("client_id \"\" is empty"), "{err}");
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_line() {
        let err = Settings::parse(
            Path::new("keyroll.toml"),
            "[[issuer]]\nname = \"adfs\"\nmetadata = [\"md.xml\"]\n\n[policy]\nremove_afterr = \"7d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("keyroll.toml:6:1: unknown field `remove_afterr`"),
            "{err}"
        );

        let err = Settings::parse(Path::new("keyroll.toml"), "[pr]\ndraft = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keyroll.toml:2:9:"), "{err}");

        let err = Settings::parse(
            Path::new("keyroll.toml"),
            "[[target]]\nfiles = [\"a\"]\nissuers = [\"nobody\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("3:12: target names issuer \"nobody\""),
            "{err}"
        );
    }
}
