//! The `releases` strategy's steps: make `releases/<name>/` from a commit
//! (shared files linked in), point `current` at it atomically, and in
//! recovery point `current` back at the release it replaced.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Memory, Perform, StepJob, Work, cd, path};
use crate::host::crash_point;
use crate::host::exec::{Ended, command_line as quoted};
use crate::host::git::Sha;
use crate::host::release_tree::{self, ReleaseTree};

/// Makes `<root>/releases/<name>` from commit `sha` of `repo` and links
/// the `shared` entries of `<root>/shared` into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MakeRelease {
    pub repo: PathBuf,
    pub sha: String,
    pub root: PathBuf,
    pub name: String,
    pub shared: Vec<String>,
}

/// Remembers the release `<root>/current` points to (for `SwitchBack`),
/// then points it at release `name`, atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRelease {
    pub root: PathBuf,
    pub name: String,
}

/// Recovery: points `<root>/current` back at the release `SwitchRelease`
/// found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchBack {
    pub root: PathBuf,
    /// That release, written in when the recovery starts (`Work::pinned`),
    /// so the job page and the stored plan name it; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}

/// The release `current` pointed to, per releases root, before this job's
/// `SwitchRelease` (None: no release).
#[derive(Debug, Default)]
pub(super) struct Replaced(Vec<(PathBuf, Option<String>)>);

impl Replaced {
    fn release(&self, root: &Path) -> Option<&Option<String>> {
        self.0.iter().find(|(r, _)| r == root).map(|(_, name)| name)
    }
}

impl Perform for MakeRelease {
    fn command_line(&self) -> String {
        format!(
            "{} && git archive {} | tar -x -C {}",
            cd(&self.repo),
            self.sha,
            path(&release_tree::release_dir(&self.root, &self.name))
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            let sha = Sha::parse(&self.sha)?;
            let tree = ReleaseTree::new(host, &self.root);
            tree.export(&self.repo, &sha, &self.name).await?;
            crash_point("release:exported");
            let mut lines = vec![format!(
                "{} holds {sha}",
                tree.place(&tree.release_dir(&self.name))
            )];
            lines.extend(tree.link_shared(&self.name, &self.shared).await?);
            Ok(lines)
        }))
    }
}

impl Perform for SwitchRelease {
    fn command_line(&self) -> String {
        format!(
            "{} && ln -sfn {} current",
            cd(&self.root),
            quoted(&[format!("releases/{}", self.name)])
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let (root, name) = (&self.root, &self.name);
            let tree = ReleaseTree::new(job.host()?, root);
            let was = tree.current().await?;
            let replaced = &mut job.memory.release;
            if replaced.release(root).is_none() {
                replaced.0.push((root.clone(), was.clone()));
            }
            tree.switch(name).await?;
            let was = was.unwrap_or_else(|| "nothing".into());
            Ok(vec![format!("current was {was}; it is now {name}")])
        }))
    }
}

impl Perform for SwitchBack {
    fn command_line(&self) -> String {
        let release = self.release.as_deref();
        let release = release.unwrap_or("<the release this job replaced>");
        format!(
            "{} && ln -sfn {} current",
            cd(&self.root),
            quoted(&[format!("releases/{release}")])
        )
    }

    fn pinned(&self, memory: &Memory) -> Option<(Work, String)> {
        let Some(Some(name)) = memory.release.release(&self.root) else {
            return None;
        };
        let step = SwitchBack {
            root: self.root.clone(),
            release: Some(name.clone()),
        };
        Some((Work::SwitchBack(step), name.clone()))
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            match job.memory.release.release(&self.root).cloned() {
                Some(Some(name)) => {
                    ReleaseTree::new(host, &self.root).switch(&name).await?;
                    Ok(vec![format!("current is back at {name}")])
                }
                Some(None) => Ok(vec![
                    "current pointed to no release before this job; it is left at the new one"
                        .into(),
                ]),
                None => Ok(vec![
                    "this job did not switch current; nothing to switch back".into(),
                ]),
            }
        }))
    }
}
