//! The `releases` strategy's directories on the app's host (DESIGN.md
//! "Deploy and rollback"): `<path>/releases/<UTC timestamp>-<sha7>/` made
//! from the repository, `<path>/shared/<entry>` linked into each, and
//! `<path>/current`, a symlink switched atomically from one release to
//! another. On this machine through the file system ([`local`]); on
//! another host through short POSIX shell scripts over SSH ([`remote`])
//! that keep the same guarantees: the new `current` is made next to the
//! old one and renamed over it, then the directory is synced.

use std::path::{Path, PathBuf};

use super::Host;
use super::git::Sha;
use crate::{Error, Result};

mod local;
mod remote;

/// One app's `<path>` on its host.
#[derive(Debug, Clone)]
pub struct ReleaseTree {
    host: Host,
    root: PathBuf,
}

/// What the `releases` sweep decides from: the release directories (name,
/// canonical path; newest first), where `current` leads, and which
/// processes work in or from a release.
#[derive(Debug, Default)]
pub struct Survey {
    pub dirs: Vec<(String, PathBuf)>,
    pub current: Option<PathBuf>,
    /// A release's canonical path and the pid of a process whose working
    /// directory, root or executable is inside it.
    pub in_use: Vec<(PathBuf, u32)>,
}

impl ReleaseTree {
    pub fn new(host: Host, root: &Path) -> ReleaseTree {
        ReleaseTree {
            host,
            root: root.to_owned(),
        }
    }

    /// The directory release `name` lives in.
    pub fn release_dir(&self, name: &str) -> PathBuf {
        release_dir(&self.root, name)
    }

    /// How messages name `path`: with the host when it is another one.
    pub fn place(&self, path: &Path) -> String {
        self.host.place(path)
    }

    /// The release `current` points to, by its directory name; `None`
    /// before the first release.
    pub async fn current(&self) -> Result<Option<String>> {
        match &self.host {
            Host::Local => local::current(&self.root),
            Host::Shell(host) => remote::current(host, &self.root).await,
        }
    }

    /// Makes release `name` hold exactly commit `sha` of `repo` (its files,
    /// no `.git`), as `git archive | tar -x` would. An existing directory
    /// is refused: a release directory is never reused.
    pub async fn export(&self, repo: &Path, sha: &Sha, name: &str) -> Result<()> {
        let dir = self.release_dir(name);
        match &self.host {
            Host::Local => local::export(repo, sha, &dir).await,
            Host::Shell(host) => remote::export(host, repo, sha, &dir).await,
        }
    }

    /// Links each `shared` entry of `<path>/shared` into release `name`,
    /// replacing whatever the commit has there (Capistrano's
    /// `linked_files`/`linked_dirs`). An entry missing from `shared/`
    /// fails: the app would start without its `.env` or its uploads.
    pub async fn link_shared(&self, name: &str, shared: &[String]) -> Result<Vec<String>> {
        let dir = self.release_dir(name);
        match &self.host {
            Host::Local => local::link_shared(&self.root, &dir, shared),
            Host::Shell(_) if shared.is_empty() => Ok(Vec::new()),
            Host::Shell(host) => remote::link_shared(host, &self.root, &dir, shared).await,
        }
    }

    /// Points `current` at release `name` atomically; at every instant it
    /// is the old release or the new. A missing release is refused.
    pub async fn switch(&self, name: &str) -> Result<()> {
        match &self.host {
            Host::Local => local::switch(&self.root, name),
            Host::Shell(host) => remote::switch(host, &self.root, name).await,
        }
    }

    /// Whether release `name` still has its directory (a rollback needs it).
    pub async fn has(&self, name: &str) -> Result<bool> {
        match &self.host {
            Host::Local => Ok(self.release_dir(name).is_dir()),
            Host::Shell(host) => remote::has(host, &self.release_dir(name)).await,
        }
    }

    /// The names in `<path>/releases/` (none before the first release).
    pub async fn names(&self) -> Result<Vec<String>> {
        match &self.host {
            Host::Local => local::names(&self.root),
            Host::Shell(host) => remote::names(host, &self.root).await,
        }
    }

    /// The release directories, where `current` leads and which are in use.
    pub async fn survey(&self) -> Result<Survey> {
        let mut survey = match &self.host {
            Host::Local => local::survey(&self.root)?,
            Host::Shell(host) => remote::survey(host, &self.root).await?,
        };
        survey.dirs.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(survey)
    }

    /// Removes release directory `dir` (a path [`ReleaseTree::survey`]
    /// listed); anything outside `<path>/releases/` is refused.
    pub async fn remove(&self, dir: &Path) -> Result<String> {
        let inside = dir
            .parent()
            .is_some_and(|p| p.file_name() == Some("releases".as_ref()));
        if !inside {
            return Err(Error::Internal(anyhow::anyhow!(
                "{} is not a release directory",
                dir.display()
            )));
        }
        match &self.host {
            Host::Local => tokio::fs::remove_dir_all(dir)
                .await
                .map_err(|e| Error::Unavailable(format!("cannot remove {}: {e}", dir.display())))?,
            Host::Shell(host) => remote::remove(host, dir).await?,
        }
        Ok(format!("removed release {}", self.place(dir)))
    }
}

/// The directory release `name` lives in, under `root`.
pub fn release_dir(root: &Path, name: &str) -> PathBuf {
    root.join("releases").join(name)
}

/// What `current`'s target says about the release it names.
fn release_name(target: &Path) -> Option<String> {
    target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
}

/// The release `target` (a process's working directory, root or
/// executable) is inside, with the process's pid.
fn using(dirs: &[(String, PathBuf)], target: &Path, pid: u32) -> Option<(PathBuf, u32)> {
    dirs.iter()
        .find(|(_, path)| target.starts_with(path))
        .map(|(_, path)| (path.clone(), pid))
}

fn not_a_symlink(root: &Path, host: &Host) -> Error {
    Error::Conflict(format!(
        "{} is not a symlink; the releases strategy switches it from release to release, so move it away first",
        host.place(&root.join("current"))
    ))
}

fn missing_release(dir: &Path, host: &Host) -> Error {
    Error::Conflict(format!(
        "{} does not exist (removed by a cleanup?), so current cannot point to it",
        host.place(dir)
    ))
}

fn missing_shared(source: &Path, entry: &str, host: &Host) -> Error {
    Error::Conflict(format!(
        "{} does not exist; create it once by hand (every release links it as {entry})",
        host.place(source)
    ))
}

fn existing_release(dir: &Path, host: &Host) -> Error {
    Error::Conflict(format!(
        "{} already exists; a release directory is never reused",
        host.place(dir)
    ))
}
