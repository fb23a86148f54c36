//! `keyroll pr`: one branch, one commit and one pull request per issuer whose plan has
//! changes; the same PR updated run after run; closed when nothing is left to do.
//!
//! State lives where reviewers can see it, not in a side file: the branch's commit carries
//! `Keyroll-Keyset:` (which changes it holds) and the PR body ends with a hidden marker
//! `<!-- keyroll: {...} -->` (which key set it proposed, and whether keyroll already told a
//! person who pushed to the branch what it would change).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

mod api_commit;
mod lifecycle;

use crate::act::github::{GitHub, GitHubError, RepoName, RetryPolicy, Secret};
use crate::decide::plan::{IssuerSlice, Plan};
use crate::load::git::{GitError, GitRepo};
use crate::model::settings::Settings;
use lifecycle::Run;

#[derive(Debug, thiserror::Error)]
pub enum PrError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("{0}")]
    Setup(String),
}

/// How `keyroll pr` reaches GitHub and the git remote (resolved by the CLI from flags,
/// keyroll.toml and the Actions environment).
pub struct PrOptions {
    pub dry_run: bool,
    pub repository: RepoName,
    pub api_url: String,
    /// Where to fetch and push; None in a dry run outside a repository.
    pub remote_url: Option<String>,
    pub token: Option<Secret>,
    pub retry: RetryPolicy,
    pub body_limit: usize,
}

pub use crate::render::pr_outcome::{IssuerOutcome, Operation, PrReport, Proposal, ProposedChange};

/// The hidden marker at the end of keyroll's PR bodies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    pub issuer: String,
    pub keyset: String,
    /// The key set keyroll last described in a comment on a branch a person pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<String>,
    /// Set when keyroll itself closed the pull request (nothing was left to change): such a
    /// close is not a person's rejection, and the same key set may be proposed again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_by_keyroll: bool,
}

pub(super) const MARKER_START: &str = "<!-- keyroll: ";

impl Marker {
    /// The hidden comment. What it embeds (issuer names, key sets) is escaped so that no
    /// `--` (and so no `-->`) can end the comment early; `find` reads it back as JSON.
    pub fn render(&self) -> String {
        let json = serde_json::to_string(self).expect("marker serializes");
        format!(
            "{MARKER_START}{} -->",
            crate::render::sanitize::comment_json(&json)
        )
    }

    pub fn find(body: &str) -> Option<Marker> {
        let start = body.rfind(MARKER_START)? + MARKER_START.len();
        let end = start + body[start..].find("-->")?;
        serde_json::from_str(body[start..end].trim()).ok()
    }
}

/// The issuer's branch ([`Settings::branch_name`]: validated, and unique across issuers,
/// when keyroll.toml is read).
pub fn branch_name(settings: &Settings, issuer: &str) -> String {
    settings.branch_name(issuer)
}

/// The commit the pull requests target, and where the plan's files were read from.
pub struct Base {
    pub name: String,
    /// The fetched base (a real run); None in a dry run, which pushes nothing.
    pub head: Option<git2::Oid>,
    /// The commit the plan was read from, and how to name it ("origin/main", "HEAD").
    pub planned_from: Option<(git2::Oid, String)>,
}

/// Finds the repository and the base: fetched from the remote in a real run; in a dry run
/// the local `origin/<base>` or `HEAD`, never the network. `pr` plans against this commit,
/// not the work tree (see [`crate::load::Tree::Git`]).
pub fn prepare(
    settings: &Settings,
    options: &PrOptions,
) -> Result<(Option<GitRepo>, Base), PrError> {
    if !options.dry_run && options.token.is_none() {
        return Err(PrError::Setup(
            "keyroll pr needs a token (--token or GITHUB_TOKEN) or a GitHub App (--app-id and --app-private-key); --dry-run previews without one".into(),
        ));
    }
    let repo = match GitRepo::discover(&settings.root) {
        Ok(repo) => Some(repo),
        // A dry run works outside a repository too (paths then relative to keyroll.toml).
        Err(_) if options.dry_run => None,
        Err(e) => return Err(e.into()),
    };
    let Some(repo) = repo else {
        return Ok((
            None,
            Base {
                name: settings.pr.base.clone().unwrap_or_else(|| "main".into()),
                head: None,
                planned_from: None,
            },
        ));
    };
    if options.dry_run {
        let planned_from = repo.local_base(settings.pr.base.as_deref()).ok();
        let name = settings.pr.base.clone().unwrap_or_else(|| "main".into());
        return Ok((
            Some(repo),
            Base {
                name,
                head: None,
                planned_from,
            },
        ));
    }
    let url = options.remote_url.as_deref().ok_or_else(|| {
        PrError::Setup("no git remote to push to: set --remote or add an origin".into())
    })?;
    let name = match &settings.pr.base {
        Some(b) => b.clone(),
        None => repo.default_branch(url, options.token.as_ref())?,
    };
    repo.fetch(
        url,
        &name,
        &settings.pr.branch_prefix,
        options.token.as_ref(),
    )?;
    let head = repo.base_head()?;
    Ok((
        Some(repo),
        Base {
            planned_from: Some((head, format!("{name} (fetched)"))),
            name,
            head: Some(head),
        },
    ))
}

/// Publishes the plan: for every issuer, in keyroll.toml's order, its slice of the one
/// plan as one branch, commit and pull request (created, updated, closed or left).
pub async fn publish(
    settings: &Settings,
    plan: &Plan,
    options: &PrOptions,
    repo: Option<&GitRepo>,
    base: &Base,
    now: OffsetDateTime,
) -> Result<PrReport, PrError> {
    let github = GitHub::new(
        &options.api_url,
        options.token.clone(),
        options.dry_run,
        options.retry.clone(),
    );
    let run = Run {
        settings,
        options,
        github: &github,
        repo,
        base,
        now,
    };
    let mut outcomes = Vec::new();
    for issuer in &settings.issuers {
        let slice = plan.for_issuer(&issuer.name);
        let errors = plan
            .errors
            .iter()
            .filter(|e| {
                e.file().is_some_and(|f| {
                    plan.issuers_of_file
                        .get(f)
                        .is_some_and(|names| names.contains(&issuer.name))
                })
            })
            .count();
        let mut outcome =
            run.issuer(&issuer.name, &slice)
                .await
                .unwrap_or_else(|e| IssuerOutcome {
                    issuer: issuer.name.clone(),
                    operation: Operation::Failed,
                    number: None,
                    url: None,
                    branch: branch_name(settings, &issuer.name),
                    head_sha: None,
                    detail: Some(e.to_string()),
                    keys: Vec::new(),
                    errors: 0,
                    proposal: None,
                });
        outcome.errors = errors;
        outcomes.push(outcome);
    }
    Ok(PrReport {
        dry_run: options.dry_run,
        repository: options.repository.to_string(),
        base: base.name.clone(),
        planned_from: base
            .planned_from
            .as_ref()
            .map(|(id, label)| format!("{label} {id}")),
        outcomes,
        api_calls: github.calls(),
    })
}

/// A short fingerprint of what a slice proposes: which key goes where, and which keys the
/// issuer publishes. Timestamps stay out, so the same proposal has the same key set.
pub(super) fn keyset(slice: &IssuerSlice<'_>) -> String {
    let mut lines = BTreeSet::new();
    for file in &slice.files {
        for change in &file.changes {
            lines.insert(format!(
                "{}\t{}\t{}",
                file.plan.display,
                change.kind.as_str(),
                change.thumbprint.map(|t| t.to_string()).unwrap_or_default()
            ));
        }
    }
    // A table's migration by its target, not its file name: the name holds the run's time,
    // and the same rows proposed again are the same proposal.
    for db in &slice.databases {
        for change in &db.changes {
            lines.insert(format!(
                "database {}\t{:?}\t{}",
                db.database, change.kind, change.value
            ));
        }
    }
    if let Some(report) = slice.report {
        for key in report.keys.iter().filter(|k| k.published) {
            lines.insert(format!("published\t{}", key.sha1));
        }
        for key in report.keys.iter().filter(|k| k.missing_since.is_some()) {
            lines.insert(format!("missing\t{}", key.sha1));
        }
    }
    let digest = sha2::Sha256::digest(lines.into_iter().collect::<Vec<_>>().join("\n"));
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::Marker;

    /// The marker spliced into a body a person edited (the "notified" path does not go
    /// through `pr_body`) escapes what it embeds itself: nothing inside ends the comment.
    #[test]
    fn a_marker_embedding_comment_enders_stays_one_comment_and_reads_back() {
        let marker = Marker {
            issuer: "contoso --> <b>x</b> --!> y".into(),
            keyset: "A--B".into(),
            notified: Some("--".into()),
            closed_by_keyroll: false,
        };
        let rendered = marker.render();
        let inner = rendered
            .strip_prefix("<!--")
            .and_then(|r| r.strip_suffix("-->"))
            .unwrap();
        assert!(!inner.contains("--"), "{rendered}");
        let body = format!("text\n\n{rendered}\n");
        let back = Marker::find(&body).unwrap();
        assert_eq!(
            (back.issuer, back.keyset, back.notified),
            (marker.issuer, marker.keyset, marker.notified)
        );
    }
}
