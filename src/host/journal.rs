//! Starts the `journalctl` a Logs page reads, on the app's host. What it is
//! asked for (units, priority, cursors) and how its JSON is read is
//! `logs::journal`'s; this is only where the process is spawned.

use std::process::Stdio;

use crate::host::Host;
use crate::{Error, Result};

/// Starts `argv` (a journalctl) on `host` with its stdout piped, in the C
/// locale; the child is killed when dropped (the last viewer left).
pub fn start(host: &Host, argv: &[String]) -> Result<tokio::process::Child> {
    let argv = match host {
        Host::Shell(remote) => remote.command(argv, None, &Default::default())?,
        Host::Local => argv.to_vec(),
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("empty journalctl command")))?;
    tokio::process::Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Unavailable(format!("cannot start journalctl: {e}")))
}
