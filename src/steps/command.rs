//! The `command` strategy's recovery step: the deploy (or `rollback`)
//! steps again, with the values of the release the job replaced — looked
//! up when the recovery runs, since a job queued ahead of this one may
//! have changed what is live by then.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::run::Run;
use super::{Bounds, Perform, StepJob, say};
use crate::config::words::fill;
use crate::host::exec::Ended;
use crate::releases;

/// Runs `argv` (with `{ref}`, `{sha}`, `{tag}` and deploy parameter
/// placeholders) filled with the values of the release that was live
/// before this job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReplaced {
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl RunReplaced {
    /// The program to run for the release that was live: this job has not
    /// succeeded, so the newest release whose job did is the one it replaced.
    async fn for_replaced(&self, job: &StepJob<'_>) -> crate::Result<Option<(Run, String)>> {
        let Some(live) = releases::current(job.db, job.app).await? else {
            return Ok(None);
        };
        // A parameter added to the config since that release went live
        // gets its default, never its `{name}` as written.
        let values = job.app()?.going_back_values(&live.values);
        let run = Run::new(
            self.argv.iter().map(|w| fill(w, &values)).collect(),
            self.cwd.clone(),
            self.env.clone(),
        );
        let said = format!(
            "the release this job replaced: release {} ({})",
            live.id,
            live.what()
        );
        Ok(Some((run, said)))
    }
}

impl Perform for RunReplaced {
    fn command_line(&self) -> String {
        Run::new(self.argv.clone(), self.cwd.clone(), BTreeMap::new()).command_line()
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(async move {
            let (run, said) = match self.for_replaced(job).await {
                Ok(Some(found)) => found,
                Ok(None) => {
                    say(
                        &bounds.lines,
                        "no release of this app went live before this job; there is nothing to go back to".into(),
                    )
                    .await;
                    return Ended::Exited(None);
                }
                Err(e) => {
                    say(&bounds.lines, e.public_message()).await;
                    return Ended::Exited(None);
                }
            };
            say(&bounds.lines, format!("{said}: {}", run.command_line())).await;
            run.perform(job, bounds).await
        })
    }
}
