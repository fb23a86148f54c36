//! What keyroll writes to git: a commit of exact bytes on a parent, and a force-push of a
//! branch keyroll owns. Reading a repository is [`crate::load::git`]'s.

use std::cell::Cell;
use std::path::Path;

use git2::Oid;
use time::OffsetDateTime;

use crate::load::git::{GitError, GitRepo, PUSH_PREFIX, callbacks, git_error, redact};
use crate::model::secret::Secret;

/// Who keyroll's commits are by.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl GitRepo {
    /// One commit on `parent` whose tree is the parent's with `files` (path, exact bytes)
    /// replaced. Nothing in the work tree or the index is touched.
    pub fn commit_files(
        &self,
        parent: Oid,
        files: &[(String, Vec<u8>)],
        message: &str,
        identity: &Identity,
        when: OffsetDateTime,
    ) -> Result<Oid, GitError> {
        let parent_commit = self
            .repo
            .find_commit(parent)
            .map_err(git_error(format!("reading commit {parent}")))?;
        let base_tree = parent_commit
            .tree()
            .map_err(git_error("reading the base tree"))?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, bytes) in files {
            let blob = self
                .repo
                .blob(bytes)
                .map_err(git_error(format!("storing {path}")))?;
            update.upsert(path, blob, mode_in(&base_tree, path));
        }
        let tree_id = update
            .create_updated(&self.repo, &base_tree)
            .map_err(git_error("building the tree"))?;
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(git_error("reading the new tree"))?;
        let time = git2::Time::new(when.unix_timestamp(), when.offset().whole_minutes().into());
        let signature = git2::Signature::new(&identity.name, &identity.email, &time)
            .map_err(git_error("the commit identity"))?;
        self.repo
            .commit(
                None,
                &signature,
                &signature,
                message,
                &tree,
                &[&parent_commit],
            )
            .map_err(git_error("creating the commit"))
    }

    /// What a commit through GitHub's API needs from `parent`: its tree's SHA, and the git
    /// mode each of `paths` gets ([`commit_files`](Self::commit_files)' rule: an executable
    /// file stays executable, anything else is a regular file), as the API spells it.
    pub fn base_tree_and_modes(
        &self,
        parent: Oid,
        paths: &[&str],
    ) -> Result<(String, Vec<&'static str>), GitError> {
        let tree = self
            .repo
            .find_commit(parent)
            .and_then(|c| c.tree())
            .map_err(git_error(format!("reading the tree of {parent}")))?;
        let modes = paths
            .iter()
            .map(|p| match mode_in(&tree, p) {
                git2::FileMode::BlobExecutable => "100755",
                _ => "100644",
            })
            .collect();
        Ok((tree.id().to_string(), modes))
    }

    /// Force-pushes `commit` to `refs/heads/<branch>` (keyroll force-pushes only branches
    /// whose every commit it made; the caller checks) with a lease: only while the remote's
    /// branch is still at `expected` (`None`: absent), the head the caller checked. A commit
    /// a person pushed since is never overwritten (`git push --force-with-lease`).
    pub fn push(
        &self,
        url: &str,
        branch: &str,
        commit: Oid,
        expected: Option<Oid>,
        token: Option<&Secret>,
    ) -> Result<(), GitError> {
        let local = format!("{PUSH_PREFIX}{branch}");
        self.repo
            .reference(&local, commit, true, "keyroll: branch to push")
            .map_err(git_error(format!("preparing {branch}")))?;
        let mut remote = self.open_remote(url, token)?;
        let tries = Cell::new(0);
        let rejected = std::cell::RefCell::new(None);
        let target = format!("refs/heads/{branch}");
        let moved = std::cell::RefCell::new(None);
        let mut cbs = callbacks(token, &tries);
        // Told what the remote holds before anything is sent: refuse if it is not the head
        // checked (libgit2 has no lease of its own).
        cbs.push_negotiation(|updates| {
            let checked = expected.unwrap_or(Oid::ZERO_SHA1);
            for update in updates {
                if update.dst_refname().ok() == Some(target.as_str()) && update.src() != checked {
                    *moved.borrow_mut() = Some(update.src());
                    return Err(git2::Error::from_str(
                        "the branch moved since it was checked",
                    ));
                }
            }
            Ok(())
        });
        cbs.push_update_reference(|reference, status| {
            if let Some(status) = status {
                *rejected.borrow_mut() = Some(format!("{reference}: {status}"));
            }
            Ok(())
        });
        let mut options = git2::PushOptions::new();
        options.remote_callbacks(cbs);
        let result = remote
            .push(
                &[format!("+{local}:refs/heads/{branch}")],
                Some(&mut options),
            )
            .map_err(git_error(format!("pushing {branch} to {}", redact(url))));
        drop(options);
        if let Some(head) = moved.into_inner() {
            let now = if head.is_zero() {
                "it is gone".to_string()
            } else {
                format!("it is at {head}")
            };
            let was = expected.map_or("absent".to_string(), |h| format!("at {h}"));
            return Err(GitError::Git {
                what: format!("pushing {branch}"),
                detail: format!(
                    "the branch changed on the remote since keyroll read it ({was}; {now}): nothing was pushed; the next run decides again"
                ),
            });
        }
        result?;
        if let Some(reason) = rejected.into_inner() {
            return Err(GitError::Git {
                what: format!("pushing {branch}"),
                detail: format!("the remote rejected {reason}"),
            });
        }
        Ok(())
    }
}

/// The mode `path` gets in a commit on `base_tree`: executable when it was, else a regular
/// file (what keyroll writes is a config's text, never a link).
fn mode_in(base_tree: &git2::Tree<'_>, path: &str) -> git2::FileMode {
    base_tree
        .get_path(Path::new(path))
        .map_or(git2::FileMode::Blob, |e| {
            if e.filemode() == i32::from(git2::FileMode::BlobExecutable) {
                git2::FileMode::BlobExecutable
            } else {
                git2::FileMode::Blob
            }
        })
}
