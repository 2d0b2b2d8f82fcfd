//! `releases`: keeps the newest `keep` good releases of a `releases`-strategy
//! app (`<path>/releases/<UTC timestamp>-<sha7>/`) and removes the rest —
//! but never the current release, the rollback target, or a release a
//! process still runs in or from, whatever `keep` says. Releases the log
//! knows only as failed or rolled back do not count toward `keep`.
//! A deploy's own cleanup step runs the same rule (`after_deploy`).

use std::path::{Path, PathBuf};

use super::{Found, Item};
use crate::config::App;
use crate::host::Host;
use crate::host::release_tree::{ReleaseTree, Survey};
use crate::releases::{self, Release};
use crate::steps::StepJob;
use crate::{Error, Result};

/// A release directory and what the release log says about it.
struct Dir {
    path: PathBuf,
    name: String,
    /// Good, failed or unknown to the log (deployed before opsdeck: good).
    good: bool,
}

/// What to remove keeping `keep` good releases. The release of the job
/// running this (a deploy's cleanup step) counts as live: it passed its
/// health check, and the release it replaced is now the rollback target.
pub(super) async fn find(job: &StepJob<'_>, app: &App, keep: usize) -> Result<Found> {
    let root = app.path.as_deref().ok_or_else(|| {
        Error::Unavailable(format!("{} has no `path`, so it has no releases", app.name))
    })?;
    let mut log = releases::list(job.db, &app.name, i64::MAX).await?;
    for release in log.iter_mut().filter(|r| r.job == job.id) {
        release.count_as_live();
    }
    let tree = ReleaseTree::new(super::host(job)?, root);
    let survey = tree.survey().await?;
    let dirs = release_dirs(&survey, &log);
    let current = survey.current;
    // Without a current release nothing tells what is live: remove nothing.
    if !dirs.is_empty() && !dirs.iter().any(|d| Some(&d.path) == current.as_ref()) {
        return Err(Error::Conflict(format!(
            "{} does not point to a directory in {}, so no release is known to be live; nothing is removed until it does",
            tree.place(&root.join("current")),
            root.join("releases").display()
        )));
    }
    let target = rollback_target(&log, &dirs, current.as_deref());
    let in_use = survey.in_use;
    let mut found = Found::default();
    let mut good_kept = 0;
    for dir in &dirs {
        let why = if Some(&dir.path) == current.as_ref() {
            Some("current".to_string())
        } else if Some(&dir.path) == target.as_ref() {
            Some("the rollback target".to_string())
        } else {
            in_use
                .iter()
                .find(|(path, _)| path == &dir.path)
                .map(|(_, pid)| format!("in use by process {pid}"))
        };
        if dir.good && good_kept < keep {
            good_kept += 1;
            found.kept.push(format!(
                "release {}: {}",
                dir.name,
                why.unwrap_or_else(|| format!("one of the {keep} newest good releases"))
            ));
        } else if let Some(why) = why {
            found.kept.push(format!("release {}: {why}", dir.name));
        } else {
            found.items.push(Item::RemoveRelease(dir.path.clone()));
        }
    }
    Ok(found)
}

/// The surveyed release directories, newest first, each judged by the log.
fn release_dirs(survey: &Survey, log: &[Release]) -> Vec<Dir> {
    survey
        .dirs
        .iter()
        .map(|(name, path)| {
            let sha7 = name.rsplit('-').next().unwrap_or_default();
            let mut logged = log
                .iter()
                .filter(|r| sha7.len() >= 7 && r.sha.starts_with(sha7))
                .peekable();
            // Deployed before opsdeck (unknown to the log): good.
            let good = logged.peek().is_none() || logged.any(Release::good);
            Dir {
                path: path.clone(),
                name: name.clone(),
                good,
            }
        })
        .collect()
}

/// Where Rollback would go: the newest good release older than the
/// current one, as the release log says (DESIGN.md), else the newest good
/// directory older than `current`.
fn rollback_target(log: &[Release], dirs: &[Dir], current: Option<&Path>) -> Option<PathBuf> {
    let live = log.iter().find(|r| r.went_live());
    let logged = live.and_then(|live| releases::rollback_target(log, live, None).ok());
    if let Some(release) = logged {
        let sha7 = release.short_sha();
        if let Some(dir) = dirs.iter().find(|d| d.name.ends_with(&format!("-{sha7}"))) {
            return Some(dir.path.clone());
        }
    }
    let current = current?;
    let at = dirs.iter().position(|d| d.path == current)?;
    dirs[at + 1..]
        .iter()
        .find(|d| d.good)
        .map(|d| d.path.clone())
}

/// Removes release directory `dir` on `host`.
pub(super) async fn remove(host: &Host, dir: &Path) -> Result<String> {
    let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    ReleaseTree::new(host.clone(), root).remove(dir).await
}
