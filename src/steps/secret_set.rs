//! `generate = "set"`: a value issued elsewhere (a Gitea bot token, an
//! SMTP password) pasted by a person, written as a generated one is —
//! backed up, atomically, then restarted, probed and restored on failure.
//! The value reaches the step only in memory ([`Held`](super::Held)): the
//! stored plan names the env file and the key, never the value.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::secret::{Edit, perform_edit, write_value};
use super::{Bounds, Perform, StepJob, path};
use crate::host::exec::Ended;
use crate::{Error, Result};

/// Sets `key` in the env file to the value its job holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSecret {
    pub env_file: PathBuf,
    pub key: String,
    pub keep_backups: usize,
}

impl Perform for SetSecret {
    fn command_line(&self) -> String {
        format!(
            "set {} in {} to the value entered for this job (held in memory only; backed up first, {} backups kept; values are never shown)",
            self.key,
            path(&self.env_file),
            self.keep_backups
        )
    }

    fn holds_input(&self) -> bool {
        true
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for SetSecret {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        // Taken, not borrowed: once written, the value is in the file only
        // (and wiped from memory when this step ends).
        let held = job.memory.held.take().ok_or_else(|| {
            Error::Conflict(format!(
                "this job holds no value for {}: it was entered once and is not kept; nothing was written — enter it again",
                self.key
            ))
        })?;
        write_value(
            job,
            &self.env_file,
            &self.key,
            self.keep_backups,
            held.value(),
        )
        .await
    }
}
