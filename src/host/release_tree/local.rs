//! The release tree on this machine, through the file system.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{Survey, existing_release, missing_release, missing_shared, not_a_symlink};
use crate::host::git::Sha;
use crate::host::{Host, dir_entries};
use crate::{Error, Result};

/// How long exporting a commit's files may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn current(root: &Path) -> Result<Option<String>> {
    let link = root.join("current");
    match std::fs::read_link(&link) {
        Ok(target) => Ok(super::release_name(&target)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Err(not_a_symlink(root, &Host::Local))
        }
        Err(e) => Err(Error::Unavailable(format!(
            "cannot read {}: {e}",
            link.display()
        ))),
    }
}

pub(super) async fn export(repo: &Path, sha: &Sha, dir: &Path) -> Result<()> {
    if dir.exists() {
        return Err(existing_release(dir, &Host::Local));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let spawn_failed = |what: &str, e: std::io::Error| {
        Error::Unavailable(format!("cannot start {what} to make the release: {e}"))
    };
    let mut git = tokio::process::Command::new("git")
        .args(["archive", "--format=tar", sha.as_str()])
        .current_dir(repo)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_failed("git", e))?;
    let archive: Stdio = git
        .stdout
        .take()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("git archive has no stdout")))?
        .try_into()
        .map_err(|e| spawn_failed("git", e))?;
    let tar = tokio::process::Command::new("tar")
        .args(["-x", "--no-same-owner", "-f", "-", "-C"])
        .arg(dir)
        .stdin(archive)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_failed("tar", e))?;
    let mut git_errors = String::new();
    if let Some(mut stderr) = git.stderr.take() {
        // Read while both run: a full pipe would stall git.
        let _ = stderr.read_to_string(&mut git_errors).await;
    }
    let both = async { tokio::join!(git.wait(), tar.wait_with_output()) };
    let (git_status, tar_out) = tokio::time::timeout(EXPORT_TIMEOUT, both)
        .await
        .map_err(|_| {
            Error::Unavailable(format!(
                "exporting {} took longer than {} s",
                sha.short(),
                EXPORT_TIMEOUT.as_secs()
            ))
        })?;
    let git_ok = git_status.is_ok_and(|s| s.success());
    let tar_out = tar_out.map_err(|e| spawn_failed("tar", e))?;
    if !git_ok {
        return Err(Error::Unavailable(format!(
            "`git archive {}` failed in {}: {}",
            sha.short(),
            repo.display(),
            git_errors.trim()
        )));
    }
    if !tar_out.status.success() {
        return Err(Error::Unavailable(format!(
            "unpacking {} into {} failed: {}",
            sha.short(),
            dir.display(),
            String::from_utf8_lossy(&tar_out.stderr).trim()
        )));
    }
    Ok(())
}

pub(super) fn link_shared(root: &Path, dir: &Path, shared: &[String]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in shared {
        let source = root.join("shared").join(entry);
        if std::fs::symlink_metadata(&source).is_err() {
            return Err(missing_shared(&source, entry, &Host::Local));
        }
        let link = dir.join(entry);
        let io = |what: &str, e: std::io::Error| {
            Error::Unavailable(format!("cannot {what} {}: {e}", link.display()))
        };
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.is_dir() => {
                std::fs::remove_dir_all(&link).map_err(|e| io("replace", e))?
            }
            Ok(_) => std::fs::remove_file(&link).map_err(|e| io("replace", e))?,
            Err(_) => {}
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("make the directory of", e))?;
        }
        std::os::unix::fs::symlink(&source, &link).map_err(|e| io("link", e))?;
        lines.push(format!("linked {entry} → {}", source.display()));
    }
    Ok(lines)
}

/// A new symlink next to `current`, renamed over it, and the directory
/// synced so the switch survives a power cut.
pub(super) fn switch(root: &Path, name: &str) -> Result<()> {
    let target = Path::new("releases").join(name);
    if !root.join(&target).is_dir() {
        return Err(missing_release(&root.join(&target), &Host::Local));
    }
    let next = root.join(".current.next");
    let io = |what: &str, e: std::io::Error| {
        Error::Unavailable(format!("cannot {what} in {}: {e}", root.display()))
    };
    // A crash between the symlink and the rename leaves `.current.next`.
    match std::fs::remove_file(&next) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("clean up", e)),
        _ => {}
    }
    std::os::unix::fs::symlink(&target, &next).map_err(|e| io("make a symlink", e))?;
    crate::host::crash_point("switch:linked");
    std::fs::rename(&next, root.join("current")).map_err(|e| io("switch current", e))?;
    crate::host::crash_point("switch:renamed");
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync", e))
}

pub(super) fn names(root: &Path) -> Result<Vec<String>> {
    Ok(dir_entries(&root.join("releases"))?
        .into_iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

pub(super) fn survey(root: &Path) -> Result<Survey> {
    let mut survey = Survey {
        current: std::fs::canonicalize(root.join("current")).ok(),
        ..Survey::default()
    };
    for entry in dir_entries(&root.join("releases"))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only real directories: a symlink in releases/ is not ours to follow.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || name.starts_with('.') {
            continue;
        }
        let path = std::fs::canonicalize(entry.path()).unwrap_or_else(|_| entry.path());
        survey.dirs.push((name, path));
    }
    survey.in_use = in_use(&survey.dirs);
    Ok(survey)
}

/// Release directories some process has as its working directory, root
/// or executable (an old worker still draining, a shell someone left there).
fn in_use(dirs: &[(String, PathBuf)]) -> Vec<(PathBuf, u32)> {
    let mut used = Vec::new();
    for pid in crate::host::procs::pids() {
        for link in ["cwd", "root", "exe"] {
            if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/{link}")) {
                used.extend(super::using(dirs, &target, pid));
            }
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::super::release_dir;
    use super::*;

    #[test]
    fn switch_replaces_current_and_refuses_a_missing_release() {
        let root = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            std::fs::create_dir_all(release_dir(root.path(), name)).unwrap();
        }
        assert_eq!(current(root.path()).unwrap(), None);
        switch(root.path(), "a").unwrap();
        switch(root.path(), "b").unwrap();
        assert_eq!(current(root.path()).unwrap().as_deref(), Some("b"));
        assert!(root.path().join("current/.").is_dir());
        let Err(Error::Conflict(why)) = switch(root.path(), "gone") else {
            panic!("a missing release must be refused");
        };
        assert!(why.contains("does not exist"), "{why}");
        assert_eq!(current(root.path()).unwrap().as_deref(), Some("b"));
    }

    #[test]
    fn a_current_that_is_a_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("current")).unwrap();
        let Err(Error::Conflict(why)) = current(root.path()) else {
            panic!("a directory named current must be refused");
        };
        assert!(why.contains("is not a symlink"), "{why}");
    }
}
