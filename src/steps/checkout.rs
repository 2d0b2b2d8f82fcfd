//! The `checkout` strategy's steps: check out a commit in the app's work
//! tree (refusing one changed by hand), and in recovery check out again
//! the commit it replaced.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Memory, Perform, StepJob, Work, cd};
use crate::Error;
use crate::host::exec::Ended;
use crate::host::git::{self, Sha};

/// Refuses a work tree changed by hand, remembers the commit checked out
/// there (for `CheckoutPrevious`), then `git checkout --detach sha`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub repo: PathBuf,
    pub sha: String,
}

/// Recovery: checks out again the commit `Checkout` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutPrevious {
    pub repo: PathBuf,
    /// That commit, written in when the recovery starts (`Work::pinned`),
    /// so the job page and the stored plan name it; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

/// The commit each work tree was at before this job's `Checkout`.
#[derive(Debug, Default)]
pub(super) struct Replaced(Vec<(PathBuf, Sha)>);

impl Replaced {
    fn commit(&self, repo: &Path) -> Option<&Sha> {
        self.0.iter().find(|(r, _)| r == repo).map(|(_, sha)| sha)
    }
}

impl Perform for Checkout {
    fn command_line(&self) -> String {
        git_line(&self.repo, &format!("checkout --detach {}", self.sha))
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            let (repo, sha) = (&self.repo, Sha::parse(&self.sha)?);
            git::ensure_clean(&host, repo).await?;
            let was = git::head(&host, repo).await?;
            let replaced = &mut job.memory.checkout;
            if replaced.commit(repo).is_none() {
                replaced.0.push((repo.clone(), was.clone()));
            }
            git::checkout(&host, repo, &sha).await?;
            Ok(vec![format!(
                "{} was at {}; it is now at {sha}",
                host.place(repo),
                was.short()
            )])
        }))
    }
}

impl Perform for CheckoutPrevious {
    fn command_line(&self) -> String {
        let sha = self.sha.as_deref();
        let sha = sha.unwrap_or("<the commit this job replaced>");
        git_line(&self.repo, &format!("checkout --detach {sha}"))
    }

    fn pinned(&self, memory: &Memory) -> Option<(Work, String)> {
        let sha = memory.checkout.commit(&self.repo)?;
        let step = CheckoutPrevious {
            repo: self.repo.clone(),
            sha: Some(sha.to_string()),
        };
        Some((Work::CheckoutPrevious(step), sha.short().to_string()))
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            let repo = &self.repo;
            let Some(sha) = job.memory.checkout.commit(repo).cloned() else {
                return Err(Error::Conflict(format!(
                    "nothing to go back to: this job did not check out anything in {}",
                    repo.display()
                )));
            };
            git::checkout(&host, repo, &sha).await?;
            Ok(vec![format!("{} is back at {sha}", host.place(repo))])
        }))
    }
}

fn git_line(repo: &Path, args: &str) -> String {
    format!("{} && git {args}", cd(repo))
}
