//! `releases`: keeps the newest `keep` good releases of a `releases`-strategy
//! app (`<path>/releases/<UTC timestamp>-<sha7>/`) and removes the rest —
//! but never the current release, the rollback target, or a release a
//! process still runs in or from, whatever `keep` says. Releases the log
//! knows only as failed or rolled back do not count toward `keep`.
//! A deploy's own cleanup step runs the same rule (`after_deploy`).

use std::path::{Path, PathBuf};

use super::{Found, Item, SweepJob};
use crate::config::App;
use crate::jobs::State;
use crate::ops::releases::{self, Release};
use crate::ops::rollback;
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
pub(super) async fn find(job: &SweepJob<'_>, app: &App, keep: usize) -> Result<Found> {
    let root = app.path.as_deref().ok_or_else(|| {
        Error::Unavailable(format!("{} has no `path`, so it has no releases", app.name))
    })?;
    let mut log = releases::list(job.db, &app.name, i64::MAX).await?;
    for release in log.iter_mut().filter(|r| r.job == job.job) {
        release.state = State::Succeeded;
    }
    let dirs = release_dirs(root, &log)?;
    let current = std::fs::canonicalize(root.join("current")).ok();
    // Without a current release nothing tells what is live: remove nothing.
    if !dirs.is_empty() && !dirs.iter().any(|d| Some(&d.path) == current.as_ref()) {
        return Err(Error::Conflict(format!(
            "{} does not point to a directory in {}, so no release is known to be live; nothing is removed until it does",
            root.join("current").display(),
            root.join("releases").display()
        )));
    }
    let target = rollback_target(&log, &dirs, current.as_deref());
    let in_use = in_use(&dirs);
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

/// `<root>/releases/*`, newest first (names start with a UTC timestamp).
fn release_dirs(root: &Path, log: &[Release]) -> Result<Vec<Dir>> {
    let releases = root.join("releases");
    let entries = match std::fs::read_dir(&releases) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Unavailable(format!(
                "cannot list {}: {e}",
                releases.display()
            )));
        }
    };
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only real directories: a symlink in releases/ is not ours to follow.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || name.starts_with('.') {
            continue;
        }
        let sha7 = name.rsplit('-').next().unwrap_or_default();
        let logged: Vec<&Release> = log
            .iter()
            .filter(|r| sha7.len() >= 7 && r.sha.starts_with(sha7))
            .collect();
        let good = logged.is_empty() || logged.iter().any(|r| r.good());
        let path = std::fs::canonicalize(entry.path()).unwrap_or_else(|_| entry.path());
        dirs.push(Dir { path, name, good });
    }
    dirs.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(dirs)
}

/// Where Rollback would go: the newest good release older than the
/// current one, as the release log says (DESIGN.md), else the newest good
/// directory older than `current`.
fn rollback_target(log: &[Release], dirs: &[Dir], current: Option<&Path>) -> Option<PathBuf> {
    let live = log.iter().find(|r| r.state == State::Succeeded);
    let logged = live.and_then(|live| rollback::target(log, live, None).ok());
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

/// Release directories some process has as its working directory, root
/// or executable (an old worker still draining, a shell someone left there).
fn in_use(dirs: &[Dir]) -> Vec<(PathBuf, u32)> {
    let mut used = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return used;
    };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        for link in ["cwd", "root", "exe"] {
            let Ok(target) = std::fs::read_link(entry.path().join(link)) else {
                continue;
            };
            if let Some(dir) = dirs.iter().find(|d| target.starts_with(&d.path)) {
                used.push((dir.path.clone(), pid));
            }
        }
    }
    used
}

pub(super) async fn remove(dir: &Path) -> Result<String> {
    tokio::fs::remove_dir_all(dir)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot remove {}: {e}", dir.display())))?;
    Ok(format!("removed release {}", dir.display()))
}
