//! What a `pr` run did for each issuer, as reports show it: the operation on its pull
//! request, what the proposal holds, the API calls made. Publishing builds it
//! ([`crate::act::pr`]); rendering reads it.

use serde::Serialize;

use crate::model::api_call::ApiCall;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Created,
    Updated,
    Closed,
    None,
    /// A person closed keyroll's PR for this very key set without merging: not reopened.
    SkippedClosed,
    /// A person pushed to keyroll's branch: left alone, with a comment.
    SkippedHuman,
    /// The issuer's metadata or plan failed: nothing touched, the open PR left as it is.
    Failed,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Created => "created",
            Operation::Updated => "updated",
            Operation::Closed => "closed",
            Operation::None => "none",
            Operation::SkippedClosed => "skipped-closed",
            Operation::SkippedHuman => "skipped-human",
            Operation::Failed => "failed",
        }
    }
}

/// What the PR for one issuer would hold.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub title: String,
    pub commit_message: String,
    pub body: String,
    pub files: Vec<String>,
    pub keyset: String,
    /// Every change the commit makes, as the plan has it (file as keyroll.toml names it).
    pub changes: Vec<ProposedChange>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProposedChange {
    pub file: String,
    pub action: crate::decide::plan::ChangeKind,
    pub line: u32,
    pub thumbprint: Option<crate::model::thumbprint::Thumbprint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuerOutcome {
    pub issuer: String,
    pub operation: Operation,
    pub number: Option<u64>,
    pub url: Option<String>,
    pub branch: String,
    pub head_sha: Option<String>,
    pub detail: Option<String>,
    /// The issuer's keys and what the plan does with each (empty when it failed to load).
    pub keys: Vec<crate::decide::plan::KeyReport>,
    /// Files of this issuer keyroll could not change (named in the plan's errors); the
    /// others are still proposed.
    pub errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<Proposal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrReport {
    pub dry_run: bool,
    pub repository: String,
    pub base: String,
    /// The commit the plan was read from ("origin/main <sha>"), when in a repository.
    pub planned_from: Option<String>,
    pub outcomes: Vec<IssuerOutcome>,
    pub api_calls: Vec<ApiCall>,
}

impl PrReport {
    /// A pull request was created, updated or closed (never in a dry run, which sends no
    /// write).
    pub fn changed(&self) -> bool {
        !self.dry_run
            && self.outcomes.iter().any(|o| {
                matches!(
                    o.operation,
                    Operation::Created | Operation::Updated | Operation::Closed
                )
            })
    }

    pub fn failed(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| o.operation == Operation::Failed)
    }
}
