//! Key files (`file = "/srv/robot/signing.pem"`): the whole file is the
//! secret. Its new content is a key made inside the step (`generate =
//! "ed25519"`, `"rsa:3072"`, `"ecdsa-p256"`: PKCS#8 PEM) or what a command
//! prints (`generate_with`); it replaces the file as an env file is
//! replaced — a 0600 backup first, then a temp file with the original's
//! mode and owner, fsync, rename — and the recovery puts the backup back
//! (`RestoreEnv` restores any file). Output and audit show fingerprints:
//! the public key's for a key, a keyed one of the content otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::secret::{Edit, perform_edit, replace_backed_up};
use super::{Bounds, Perform, StepJob, path};
use crate::config::KeyKind;
use crate::host::exec::{Ended, command_line};
use crate::host::{Host, crash_point, env_edit, keys};
use crate::{Error, Result};

/// How long a `generate_with` command may take to print the new content.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Replaces `file` with new content, after a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateFile {
    pub file: PathBuf,
    pub make: Make,
    pub keep_backups: usize,
}

/// Where the new content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Make {
    /// A new key of this kind, made in the step.
    Key(KeyKind),
    /// The standard output of this argv, run on the app's host as its user.
    Command(Vec<String>),
}

impl Perform for RotateFile {
    fn command_line(&self) -> String {
        let made = match &self.make {
            Make::Key(kind) => format!("a new {kind} key made here (PKCS#8 PEM)"),
            Make::Command(argv) => format!("what `{}` prints", command_line(argv)),
        };
        format!(
            "replace {} with {made} (backed up first, {} backups kept; its content is never shown)",
            path(&self.file),
            self.keep_backups
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for RotateFile {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let file = &self.file;
        let host = job.host()?;
        let before = Zeroizing::new(env_edit::read(&host, file).await?);
        crash_point("rotate:read");
        let content = match &self.make {
            Make::Key(kind) => {
                let kind = *kind;
                tokio::task::spawn_blocking(move || keys::make(kind))
                    .await
                    .map_err(|e| Error::Internal(e.into()))??
            }
            Make::Command(argv) => printed(&host, argv, job).await?,
        };
        job.redactor.learn([content.to_string()]);
        let backup = replace_backed_up(
            job,
            &host,
            file,
            content.as_bytes().to_vec(),
            self.keep_backups,
        )
        .await?;
        let was = keys::fingerprint(&before, job.server_key);
        let now = keys::fingerprint(&content, job.server_key);
        job.audit.push((
            "secret.rotate",
            serde_json::json!({
                "file": file, "before": was, "after": now, "backup": backup, "host": host.name(),
            }),
        ));
        Ok(vec![
            format!("backed up {} to {}", host.place(file), backup.display()),
            format!("{} now holds {now}; it held {was}", host.place(file)),
        ])
    }
}

/// What `argv` prints on `host`: the new content, checked to be text that
/// is not empty. What it says on stderr is shown when it fails (masked like
/// all output; the new content is learned by then).
async fn printed(host: &Host, argv: &[String], job: &StepJob<'_>) -> Result<Zeroizing<String>> {
    let out = host
        .capture(argv, None, &BTreeMap::new(), COMMAND_TIMEOUT)
        .await?;
    let stdout = Zeroizing::new(out.stdout);
    job.redactor.learn([stdout.to_string()]);
    let shown = command_line(argv);
    if out.status != Some(0) {
        let code = out
            .status
            .map_or("was killed by a signal".to_string(), |c| {
                format!("exited with {c}")
            });
        return Err(Error::Conflict(format!(
            "`{shown}` {code}; the file was left as it was: {}",
            out.stderr.trim()
        )));
    }
    if out.stdout_lossy {
        return Err(Error::Conflict(format!(
            "`{shown}` printed bytes that are not UTF-8 text; a key file is written as text (PEM); the file was left as it was"
        )));
    }
    if stdout.trim().is_empty() {
        return Err(Error::Conflict(format!(
            "`{shown}` printed nothing; the file was left as it was"
        )));
    }
    Ok(stdout)
}
