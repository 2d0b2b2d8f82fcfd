//! How a command reaches a host: the only place that spawns processes or
//! touches an app's files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::Result;
use crate::config::{App, Config};
pub mod env_edit;
pub mod envfile;
pub mod exec;
pub mod file_time;
pub mod git;
pub mod gitea;
pub mod github;
pub mod journal;
pub mod keys;
pub mod lines;
pub mod local;
pub mod preflight;
pub mod probe;
pub mod procs;
pub mod release_tree;
pub mod run_as;
pub mod secret;
pub mod sqlite_backup;
pub mod ssh;
pub mod survey;
pub mod systemd;

/// Where an app's commands run: this machine as opsdeck itself, or a
/// shell reached through ssh or sudo (another host, or this one as the
/// app's `user`). Host steps (git, systemctl) go through here, so each is
/// written once and works on all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Local,
    Shell(ssh::Remote),
}

impl Host {
    /// Where `app`'s steps run: its `host`, as its `user` if it has one.
    pub fn of(config: &Config, app: &App) -> Result<Host> {
        let run_as = run_as::RunAs::of(app);
        Ok(match (ssh::Remote::resolve(config, &app.host)?, run_as) {
            (Some(remote), run_as) => Host::Shell(remote.run_as(run_as)),
            (None, Some(run_as)) => Host::Shell(ssh::Remote::here(run_as)),
            (None, None) => Host::Local,
        })
    }

    /// The machine `app` runs on, as opsdeck's own account there: where its
    /// units are restarted (polkit or sudoers name opsdeck, not the app).
    pub fn machine(config: &Config, app: &App) -> Result<Host> {
        Ok(ssh::Remote::resolve(config, &app.host)?.map_or(Host::Local, Host::Shell))
    }

    /// Runs a short command to completion in `cwd`, with `env` added to
    /// the environment; what it printed.
    pub async fn capture(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<exec::Captured> {
        match self {
            Host::Local => exec::capture(argv, cwd, env, timeout).await,
            Host::Shell(remote) => remote.capture_in(argv, cwd, env, timeout).await,
        }
    }

    /// Runs a job step's short command with `input` on its stdin (how a
    /// value reaches a program without being in its argv or environment),
    /// `env` added to the basics a step inherits; what it printed.
    pub async fn feed(
        &self,
        argv: &[String],
        env: &BTreeMap<String, String>,
        input: Vec<u8>,
        timeout: Duration,
    ) -> Result<exec::Captured> {
        match self {
            Host::Local => exec::capture_step(argv, &exec::job_env(env), input, timeout).await,
            Host::Shell(remote) => remote.capture_fed(argv, env, input, timeout).await,
        }
    }

    /// The account steps run as on this machine through `sudo`, if any.
    pub fn local_user(&self) -> Option<&run_as::RunAs> {
        match self {
            Host::Local => None,
            Host::Shell(remote) => remote.local_user(),
        }
    }

    /// How messages name the host: "this host" or `user@host:port`.
    pub fn name(&self) -> String {
        match self {
            Host::Local => "this host".to_owned(),
            Host::Shell(remote) => remote.name(),
        }
    }

    /// How messages name a path on the host: `path` here, `path on
    /// user@host:port` elsewhere.
    pub fn place(&self, path: &Path) -> String {
        match self {
            Host::Local => path.display().to_string(),
            Host::Shell(remote) => format!("{} on {}", path.display(), remote.name()),
        }
    }
}

/// The entries of directory `dir` on this machine; none when it does not
/// exist (yet): no releases made, no backup taken.
pub fn dir_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(crate::Error::Unavailable(format!(
            "cannot list {}: {e}",
            dir.display()
        ))),
    }
}

/// Names the point at which opsdeck kills itself (see [`crash_point`]).
pub const CRASH_AT: &str = "OPSDECK_CRASH_AT";

/// A test hook for crash safety: when `OPSDECK_CRASH_AT` names this point,
/// opsdeck sends itself SIGKILL right here, as a power cut or an OOM kill
/// would, so a test can stop it at exact points of a write instead of
/// racing a `kill -9` against it. Unset, it costs one environment lookup.
pub fn crash_point(name: &str) {
    if std::env::var_os(CRASH_AT).is_some_and(|at| at == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
