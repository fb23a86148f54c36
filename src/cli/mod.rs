//! The front's parts: every command's arguments (clap) here; the runners that call the
//! library, print and choose the exit code in `commands` (the repository commands), `pr` and
//! `org` (the organisation commands); the helpers they share (environment, runtime, redacted
//! output) in `io`. `main.rs` parses and dispatches to the runners.

pub mod commands;
pub mod db;
pub mod entra;
pub mod io;
pub mod org;
pub mod pr;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "keyroll",
    // The commit too (build.rs): a bug report names the exact build.
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KEYROLL_COMMIT"), ")"),
    about = "Keep WIF/.NET trusted-issuer thumbprints in step with the identity provider's signing keys",
    after_help = "Exit codes: 0 done; 1 error (usage errors included; `apply` writes every file without an error and names the others). `plan --detailed-exitcode`: 0 nothing to do, 1 error, 2 changes pending. `scan`: 0 clean, 1 error-level findings, 2 could not run."
)]
pub struct Cli {
    /// Evaluate certificates as of this RFC 3339 time instead of now (tests, what-if runs).
    #[arg(long, global = true, value_name = "RFC3339")]
    pub now: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands' names, to choose a usage error's exit code before clap has parsed.
pub const SUBCOMMANDS: &[&str] = &[
    "thumbprint",
    "inspect",
    "scan",
    "plan",
    "apply",
    "db",
    "init",
    "pr",
    "snapshot",
    "discover",
    "onboard",
    "dashboard",
    "entra",
    "completions",
    "man",
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a certificate's thumbprint, or check a pasted thumbprint.
    #[command(
        after_help = "Examples:\n  keyroll thumbprint signing.cer\n  keyroll thumbprint --format json signing.pem\n  keyroll thumbprint --check \"\u{200E}6b 74 0d d0 16 52 ee ce 27 37 e0 5d ae 36 c5 d1 8f cb 74 c3\"\n\n--check exits 0 when the text is a valid SHA-1 thumbprint (hex or JWKS x5t), 1 otherwise."
    )]
    Thumbprint(ThumbprintArgs),
    /// List the certificates an issuer publishes in its metadata, JWKS or OpenID configuration.
    #[command(
        after_help = "Examples:\n  keyroll inspect FederationMetadata.xml\n  keyroll inspect https://login.microsoftonline.com/TENANT/federationmetadata/2007-06/federationmetadata.xml\n  keyroll inspect --format json https://login.microsoftonline.com/common/discovery/keys"
    )]
    Inspect(InspectArgs),
    /// Find every trusted thumbprint in config files and report problems.
    #[command(
        after_help = "Examples:\n  keyroll scan\n  keyroll scan --format sarif src/ > keyroll.sarif\n  keyroll scan --metadata https://adfs.example.com/FederationMetadata/2007-06/FederationMetadata.xml\n\nExit codes: 0 no error-level findings (warnings and notes allowed), 1 error-level findings, 2 could not run."
    )]
    Scan(ScanArgs),
    /// Show what keyroll would change in each target file, and why.
    #[command(
        after_help = "Examples:\n  keyroll plan\n  keyroll plan --format json --config deploy/keyroll.toml\n  keyroll plan --now 2026-12-01T00:00:00Z   # what-if\n\nExit codes: 0 done (with --detailed-exitcode: 0 nothing to do, 2 changes pending), 1 error."
    )]
    Plan(PlanCommandArgs),
    /// Make the planned changes and update keyroll.lock, as one transaction (files with errors are left out and named).
    #[command(
        after_help = "Examples:\n  keyroll apply\n  keyroll apply --config deploy/keyroll.toml\n  keyroll plan --out plan.json && keyroll apply plan.json   # exactly the reviewed plan\n\nOne apply runs at a time per work tree: it holds a lock on keyroll.lck in the git directory (.keyroll.lck beside keyroll.toml outside a repository), removed when it ends, and a second run waits --lock-timeout seconds.\nExit codes: 0 done, 1 error (a file changed by another program, or a saved plan whose inputs changed: nothing written)."
    )]
    Apply(ApplyArgs),
    /// Write a starter keyroll.toml and keyroll.lock by matching the repository's thumbprints to metadata.
    #[command(
        after_help = "Examples:\n  keyroll init --metadata https://adfs.contoso.com/FederationMetadata/2007-06/FederationMetadata.xml\n  keyroll init --metadata idp-metadata.xml --dir src/"
    )]
    Init(InitArgs),
    /// Open or update one pull request per issuer whose plan has changes; close it when none are left.
    #[command(
        after_help = "Examples:\n  keyroll pr --dry-run --config examples/demo/keyroll.toml\n  GITHUB_TOKEN=... keyroll pr\n  keyroll pr --app-id 12345 --app-private-key key.pem --format json\n\nThe token goes to GitHub and to git's credential callback only; it is never printed.\nExit codes: 0 done, 1 an issuer failed or keyroll could not run."
    )]
    Pr(PrArgs),
    /// Tables that hold trusted thumbprints ([[database]] targets): check them live, or apply the plan to them.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Read every issuer's metadata once into a folder that `--snapshot DIR` reads back.
    Snapshot(SnapshotArgs),
    /// List the repositories an App installation or organisation reaches that hold keyroll.toml.
    Discover(DiscoverArgs),
    /// Open one pull request adding a keyroll.toml written by `init` to a repository that has none.
    #[command(
        after_help = "Examples:\n  keyroll onboard --repo contoso/web-app --snapshot snapshot/ --dry-run\n  keyroll onboard --repo contoso/web-app --metadata https://adfs.contoso.com/FederationMetadata/2007-06/FederationMetadata.xml\n\nRun in a clone of the repository: its base branch is fetched and read, never its work tree. The pull request comes from keyroll/onboarding, is updated in place on later runs, and is never reopened once a person closed it without merging.\nExit codes: 0 done (created, updated, left as it is, or nothing to do), 1 error."
    )]
    Onboard(OnboardArgs),
    /// One issue in the central repository with the state of every repository of a run.
    Dashboard(DashboardArgs),
    /// Check (or set) the copy of an AD FS issuer's keys Entra ID holds for each [[federated_domain]].
    #[command(subcommand)]
    Entra(EntraCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  keyroll completions bash > /etc/bash_completion.d/keyroll\n  keyroll completions powershell >> $PROFILE\n  keyroll completions zsh > \"${fpath[1]}/_keyroll\""
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder.
    #[command(
        after_help = "Examples:\n  keyroll man > /usr/local/share/man/man1/keyroll.1\n  keyroll man --dir /usr/local/share/man/man1   # keyroll.1, keyroll-pr.1, keyroll-scan.1, ..."
    )]
    Man {
        /// Write keyroll.1 and a page for each subcommand (keyroll-pr.1, …) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// Removes the environment variables clap reads (`GITHUB_TOKEN`, `KEYROLL_APP_ID`, …) that
/// are set but empty: a workflow writing `KEYROLL_APP_ID: ${{ secrets.MISSING }}` means "not
/// set", while clap would take the empty value as given.
///
/// # Safety
/// Changes the process environment: call before any other thread starts.
pub unsafe fn unset_empty_env() {
    use clap::CommandFactory as _;
    fn walk(command: &clap::Command, names: &mut Vec<std::ffi::OsString>) {
        names.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_env().map(|e| e.to_os_string())),
        );
        for sub in command.get_subcommands() {
            walk(sub, names);
        }
    }
    let mut names = Vec::new();
    walk(&Cli::command(), &mut names);
    for name in names {
        if std::env::var_os(&name).is_some_and(|v| v.is_empty()) {
            // SAFETY: the caller guarantees no other thread reads the environment now.
            unsafe { std::env::remove_var(&name) };
        }
    }
}

#[derive(Debug, Args)]
pub struct PrArgs {
    #[command(flatten)]
    pub plan: PlanArgs,

    /// Show the branch, commit, PR and every API call without pushing or calling a write endpoint.
    #[arg(long)]
    pub dry_run: bool,

    /// GitHub token (contents: write, pull-requests: write).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = keyroll::model::secret::Secret::parse_arg
    )]
    pub token: Option<keyroll::model::secret::Secret>,

    /// GitHub App id: keyroll mints an installation token, so that the PR triggers CI.
    #[arg(
        long,
        env = "KEYROLL_APP_ID",
        value_name = "ID",
        requires = "app_private_key"
    )]
    pub app_id: Option<String>,

    /// The App's private key: PEM text or a path to a PEM file.
    #[arg(
        long,
        env = "KEYROLL_APP_PRIVATE_KEY",
        hide_env_values = true,
        value_name = "PEM",
        value_parser = keyroll::model::secret::Secret::parse_arg
    )]
    pub app_private_key: Option<keyroll::model::secret::Secret>,

    /// owner/name of the repository (default: [pr] repository, GITHUB_REPOSITORY, the origin remote).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    /// GitHub API base (default: [pr] api_url, GITHUB_API_URL, https://api.github.com).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// git remote to fetch from and push to (default: origin, else GITHUB_SERVER_URL/owner/name.git).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,

    /// Append GitHub Actions step outputs (changed, pull-request-numbers, pull-request-urls, operations) to FILE ($GITHUB_OUTPUT).
    #[arg(long, value_name = "FILE")]
    pub write_outputs: Option<std::path::PathBuf>,

    /// Append a Markdown job summary to FILE ($GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub write_summary: Option<std::path::PathBuf>,

    /// Publish this saved plan (`keyroll plan --out`) instead of planning now; refused if an input it read has changed.
    #[arg(long = "plan", value_name = "FILE")]
    pub saved_plan: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanCommandArgs {
    #[command(flatten)]
    pub plan: PlanArgs,

    /// Also save the plan, with the hash of every input it read, for `keyroll apply FILE` or `keyroll pr --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub plan: PlanArgs,

    /// A plan saved by `keyroll plan --out`: write exactly it, or refuse naming every input that changed since.
    #[arg(value_name = "PLAN")]
    pub saved_plan: Option<std::path::PathBuf>,

    /// Seconds to wait for another `keyroll apply` in the same folder to finish.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Path of keyroll.toml.
    #[arg(long, default_value = "keyroll.toml", value_name = "FILE")]
    pub config: std::path::PathBuf,

    /// text, json, or markdown (a report with each issuer's rollover timeline as a Mermaid
    /// gantt chart, as pull requests show it).
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,

    /// Exit 2 when changes are pending, 0 when there is nothing to do (like terraform).
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Accept, for this run only, that ISSUER no longer publishes any key keyroll has seen
    /// and no trusted signer vouches for the new ones (an identity change, not a rollover).
    /// Review the new keys first: this is how a hijacked or wrong metadata URL would look.
    #[arg(long, value_name = "ISSUER")]
    pub accept_identity_change: Vec<String>,

    #[command(flatten)]
    pub rules: RulesArgs,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Subcommand)]
pub enum EntraCommand {
    /// Read Entra ID's certificates for each [[federated_domain]] and compare them with the AD FS metadata.
    #[command(
        after_help = "Examples:\n  keyroll entra check\n  keyroll entra check --now 2014-07-06T00:00:00Z --format json\n\nCredentials, first found: the GitHub Actions OIDC token (job permission id-token: write), KEYROLL_ENTRA_CLIENT_CERTIFICATE (PEM, certificate and key), KEYROLL_ENTRA_CLIENT_SECRET. Never printed.\nExit codes: 0 in step, 2 a next key Entra ID does not hold yet, 1 error (a lockout included)."
    )]
    Check(EntraArgs),
    /// Set Entra ID's nextSigningCertificate to the next key AD FS publishes, where it is missing.
    #[command(
        after_help = "Examples:\n  keyroll entra apply\n\nOnly nextSigningCertificate is changed, only to a key the issuer's metadata publishes (after keyroll's signature and identity checks); the current certificate is never replaced. Running it again changes nothing.\nExit codes: 0 in step afterwards, 1 otherwise."
    )]
    Apply(EntraArgs),
}

#[derive(Debug, Args)]
pub struct EntraArgs {
    /// Path of keyroll.toml.
    #[arg(long, default_value = "keyroll.toml", value_name = "FILE")]
    pub config: std::path::PathBuf,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Only this domain (repeatable); every [[federated_domain]] when not given.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Vec<String>,

    /// As for `plan`: accept this run an issuer's identity change.
    #[arg(long, value_name = "ISSUER")]
    pub accept_identity_change: Vec<String>,

    #[command(flatten)]
    pub rules: RulesArgs,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Metadata of an issuer the repository trusts (repeatable): a path or an https:// URL.
    #[arg(long, required = true, value_name = "SOURCE")]
    pub metadata: Vec<String>,

    /// The repository folder to scan and to write keyroll.toml into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: std::path::PathBuf,

    /// Overwrite an existing keyroll.toml.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub rules: RulesArgs,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Text,
    Json,
    Sarif,
    Github,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or folders to scan (default: the current folder).
    #[arg(value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,

    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub format: ScanFormat,

    #[command(flatten)]
    pub rules: RulesArgs,

    /// Metadata whose certificates are known, for `expired`/`expiring` findings (repeatable).
    #[arg(long, value_name = "SOURCE")]
    pub metadata: Vec<String>,

    /// keyroll.toml: its issuers' metadata is known too (a source that fails to load is a
    /// warning, since `plan` and `pr` report it); without PATH, its folder is scanned.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Certificates expiring within this many days are flagged `expiring`.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub warn_days: i64,

    /// Also show, for each Web.config/App.config with transforms beside it, what every
    /// build configuration trusts once published (text format).
    #[arg(long)]
    pub transforms: bool,

    /// Threads walking the folders (0: one per core). 1 walks on one thread with the
    /// `ignore` crate's own walker, as ripgrep does; the result is the same for any number.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RulesArgs {
    /// A folder of extra dialect rules (*.toml); a rule named like a built-in replaces it.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules_dir: Option<std::path::PathBuf>,
}

impl RulesArgs {
    pub fn load(&self) -> Result<keyroll::model::rules::RuleSet, keyroll::model::rules::RuleError> {
        match &self.rules_dir {
            Some(dir) => keyroll::model::rules::RuleSet::with_dir(dir),
            None => Ok(keyroll::model::rules::RuleSet::builtin()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct ThumbprintArgs {
    /// Certificate file (PEM, DER .cer, or bare base64), `-` for stdin; with --check, the text to check.
    #[arg(value_name = "INPUT")]
    pub input: String,

    /// Treat INPUT as a pasted thumbprint: normalize it and name every character removed.
    #[arg(long)]
    pub check: bool,

    /// With --check: read INPUT as a JWKS `x5t` (base64url SHA-1), even when it is all hex.
    #[arg(long, requires = "check")]
    pub x5t: bool,

    /// Print the SHA-256 thumbprint instead of SHA-1.
    #[arg(long, conflicts_with = "check")]
    pub sha256: bool,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A metadata file path or an https:// URL.
    #[arg(value_name = "SOURCE")]
    pub source: String,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Certificates expiring within this many days are marked `expiring`.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub warn_days: i64,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args, Clone)]
pub struct FetchArgs {
    /// Allow plain http:// for the URL given (redirects to http:// on another host are still refused).
    #[arg(long)]
    pub allow_http: bool,

    /// Largest response accepted, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024, value_name = "BYTES")]
    pub max_bytes: u64,

    /// Deadline for each metadata source, in seconds: every attempt and wait between retries included.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,

    /// Retries after timeouts, connection failures and 5xx answers.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,

    /// Read metadata URLs from a folder written by `keyroll snapshot`, never the network (a URL
    /// missing from it is an error naming it; local paths are still read from disk).
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<std::path::PathBuf>,
}

impl FetchArgs {
    pub fn options(&self) -> keyroll::load::fetch::FetchOptions {
        keyroll::load::fetch::FetchOptions {
            allow_http: self.allow_http,
            max_bytes: self.max_bytes,
            total_timeout: std::time::Duration::from_secs(self.timeout),
            retries: self.retries,
            snapshot: self.snapshot.clone(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The central keyroll.toml naming every issuer (targets are not read).
    #[arg(long, default_value = "keyroll.toml", value_name = "FILE")]
    pub config: std::path::PathBuf,

    /// The folder to write (created; manifest.json and documents/ are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// List an organisation's repositories (GET /orgs/ORG/repos) instead of the App
    /// installation's (GET /installation/repositories, which needs an installation token).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,

    /// Where keyroll.toml may be in a repository (repeatable, tried in order).
    #[arg(long = "path", default_value = "keyroll.toml", value_name = "PATH")]
    pub paths: Vec<String>,

    #[arg(long)]
    pub include_archived: bool,
    #[arg(long)]
    pub include_disabled: bool,
    #[arg(long)]
    pub include_forks: bool,

    /// Repositories per matrix (GitHub Actions runs at most 256 jobs per matrix).
    #[arg(long, default_value_t = keyroll::act::discover::MATRIX_LIMIT, value_name = "N")]
    pub batch_size: usize,

    /// Look-ups in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrency: usize,

    /// Also list, under "onboarding", the repositories with WIF configs (as the dialect rules
    /// recognise them) but no keyroll.toml, found with GitHub's code search. When the token
    /// may not search code, "onboarding_search" says why and that the list is not complete.
    #[arg(long)]
    pub onboarding: bool,

    #[command(flatten)]
    pub rules: RulesArgs,

    /// An installation token (or, with --org, a token that can read the organisation).
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = keyroll::model::secret::Secret::parse_arg
    )]
    pub token: Option<keyroll::model::secret::Secret>,

    /// GitHub API base (default: GITHUB_API_URL, https://api.github.com).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Append `batch-count`, `repositories` and `matrix-1` … `matrix-N` (with --onboarding also
    /// `onboarding-count` and `onboarding-matrix`) to FILE ($GITHUB_OUTPUT).
    #[arg(long, value_name = "FILE")]
    pub write_outputs: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct OnboardArgs {
    /// owner/name of the repository to onboard (default: GITHUB_REPOSITORY, the origin remote).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    /// A clone of the repository (its base branch is fetched into it; the work tree is not read).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: std::path::PathBuf,

    /// Issuer metadata URL (repeatable). Default with --snapshot: every source the snapshot holds.
    #[arg(long, value_name = "URL")]
    pub metadata: Vec<String>,

    /// Where keyroll.toml goes in the repository (its folder is what init scans).
    #[arg(long, default_value = "keyroll.toml", value_name = "PATH")]
    pub config_path: String,

    /// The branch the pull request targets (default: the repository's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,

    /// Show the files, the pull request and every API call; push nothing, write nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// A token with contents: write and pull-requests: write on the repository.
    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = keyroll::model::secret::Secret::parse_arg
    )]
    pub token: Option<keyroll::model::secret::Secret>,

    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// git remote to fetch from and push to (default: origin, else GITHUB_SERVER_URL/owner/name.git).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,

    #[command(flatten)]
    pub rules: RulesArgs,

    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// A folder of per-repository results (sub-folders with repository.txt, pr.json, stderr.txt, exit-code.txt).
    #[arg(long, value_name = "DIR")]
    pub results: std::path::PathBuf,

    /// `keyroll discover`'s JSON: its skipped and failed repositories are listed too.
    #[arg(long, value_name = "FILE")]
    pub discovery: Option<std::path::PathBuf>,

    /// The central repository that holds the dashboard issue (default: GITHUB_REPOSITORY).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    #[arg(long, default_value = keyroll::act::dashboard::DEFAULT_TITLE)]
    pub title: String,

    /// The label that finds the issue in one call (the hidden marker is checked too).
    #[arg(long, default_value = keyroll::act::dashboard::DEFAULT_LABEL)]
    pub label: String,

    /// Print the body and the API calls; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Only write the job summary / print the body: no issue.
    #[arg(long)]
    pub no_issue: bool,

    #[arg(
        long,
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = keyroll::model::secret::Secret::parse_arg
    )]
    pub token: Option<keyroll::model::secret::Secret>,

    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Append the Markdown table to FILE ($GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub write_summary: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
