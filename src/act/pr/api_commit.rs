//! The branch's commit made through GitHub's API instead of git (`[pr] commits`): blobs, a
//! tree on the base tree with each file's mode, a commit GitHub signs, the ref. The same
//! files give the same tree as [`GitRepo::commit_files`] makes (same bytes, same modes).

use git2::Oid;

use super::PrError;
use super::lifecycle::Run;
use crate::act::github::TreeEntry;
use crate::load::git::GitRepo;
use crate::model::settings::CommitMode;

/// A file as git names it, with its bytes.
type NamedBytes = (String, Vec<u8>);

impl Run<'_> {
    /// Whether this run makes its commits through the API.
    pub(super) fn commits_through_api(&self) -> bool {
        let token = self.options.token.as_ref().map(|t| t.expose());
        self.settings.pr.commits.resolve(token) == CommitMode::Api
    }

    /// Makes the commit of `files` on `base` through the API and points `branch` at it
    /// (created, or force-updated when `exists`). Returns the commit's SHA; in a dry run
    /// (`base` unknown) every call is listed and `None` comes back.
    pub(super) async fn api_commit(
        &self,
        files: &[NamedBytes],
        message: &str,
        branch: &str,
        base: Option<(&GitRepo, Oid)>,
        checked: Option<Oid>,
    ) -> Result<Option<Oid>, PrError> {
        let repo = &self.options.repository;
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        let (base_tree, modes) = match base {
            Some((git, head)) => git.base_tree_and_modes(head, &paths)?,
            None => ("{base_tree}".to_string(), vec!["100644"; files.len()]),
        };
        let mut entries = Vec::new();
        for ((path, bytes), mode) in files.iter().zip(modes) {
            entries.push(TreeEntry {
                path: path.clone(),
                mode,
                sha: self.github.create_blob(repo, bytes).await?,
            });
        }
        let tree = self.github.create_tree(repo, &base_tree, &entries).await?;
        let parent = base.map_or("{base}".to_string(), |(_, head)| head.to_string());
        let commit = self
            .github
            .create_commit(repo, message, &tree, &parent)
            .await?;
        self.github
            .set_branch(
                repo,
                branch,
                &commit,
                checked.map(|head| head.to_string()).as_deref(),
            )
            .await?;
        Ok(Oid::from_str(&commit).ok())
    }
}

/// A commit GitHub made for keyroll through the API: by a GitHub App's bot (GitHub fills in
/// the author; the committer is the bot or GitHub's web-flow identity), carrying keyroll's
/// trailer. A person's commit is by a person's address.
pub(super) fn is_api_commit(author: &str, committer: &str, message: &str) -> bool {
    let bot = |email: &str| email.ends_with("[bot]@users.noreply.github.com");
    bot(author)
        && (committer == author || committer == "noreply@github.com")
        && message.lines().any(|l| l.starts_with("Keyroll-Keyset: "))
}
