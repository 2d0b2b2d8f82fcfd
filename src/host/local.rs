//! Programs opsdeck runs for itself on this machine, outside any job: the
//! demo's repository set-up and first build, and the demo service it keeps
//! running. Jobs run their steps through [`super::exec`] instead (process
//! groups, streamed output, cancel, timeouts); these are short, blocking
//! calls whose failure is told in the program's own words.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::{Error, Result};

/// Runs `program args…` in `cwd` and waits; an error quotes the end of
/// what it printed on stderr.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S], cwd: &Path) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Unavailable(format!("cannot run {program}: is it installed? ({e})")))?;
    if out.status.success() {
        return Ok(());
    }
    let words: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    Err(Error::Unavailable(format!(
        "{program} {} failed in {} ({}): {}",
        words.join(" "),
        cwd.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Whether `program args…` in `cwd` exits 0 (its output discarded).
pub fn succeeds(program: &str, args: &[&str], cwd: &Path) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts a long-lived program that belongs to no job: its own process
/// group, so the end of the step that started it does not take it down,
/// and no job tag, so crash recovery does not kill it as a job's leftover.
/// Both its stdout and stderr go to `log`.
pub fn spawn_detached<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    cwd: &Path,
    log: &File,
) -> Result<Child> {
    let unavailable =
        |e: std::io::Error| Error::Unavailable(format!("cannot start {}: {e}", program.display()));
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(unavailable)?)
        .stderr(log.try_clone().map_err(unavailable)?)
        .env_remove(super::exec::JOB_TAG)
        .process_group(0)
        .spawn()
        .map_err(unavailable)
}
