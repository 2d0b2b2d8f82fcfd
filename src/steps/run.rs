//! Running a program (a build step, an action, a `command` sweep): never
//! through a shell, on the app's host, in its own process group, its
//! output streamed line by line into the job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Perform, StepJob, cd, groups, say};
use crate::host::exec::{self, Ended, command_line as quoted};
use crate::host::{Host, crash_point};

/// Runs a program (never through a shell) on the app's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Perform for Run {
    fn command_line(&self) -> String {
        let line = quoted(&self.argv);
        match &self.cwd {
            Some(cwd) => format!("{} && {line}", cd(cwd)),
            None => line,
        }
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(async move {
            crash_point("run:start");
            let host = match job.host() {
                Ok(host) => host,
                Err(e) => {
                    say(&bounds.lines, e.public_message()).await;
                    return Ended::Exited(None);
                }
            };
            let child = match start(&host, &self.argv, self.cwd.as_deref(), &self.env, &job.tag) {
                Ok(child) => child,
                Err(e) => {
                    say(&bounds.lines, e.public_message()).await;
                    return Ended::Exited(None);
                }
            };
            let (pgid, run_as) = (child.pgid, host.local_user());
            if let Err(e) = groups::record(job.db, job.id, pgid, run_as).await {
                // Ended at once (`stop` already resolved): a step no crash
                // recovery could find must not run.
                child.finish(&bounds.lines, bounds.limit, async {}).await;
                say(&bounds.lines, e.public_message()).await;
                return Ended::Exited(None);
            }
            let ended = child
                .finish(&bounds.lines, bounds.limit, bounds.stopped)
                .await;
            groups::forget(job.db, job.id, pgid).await;
            if let (Ended::Exited(Some(255)), Host::Shell(remote)) = (ended, &host) {
                say(
                    &bounds.lines,
                    format!(
                        "ssh exited 255: the connection to {} could not be made or was lost \
                         (a command run there rarely exits 255 itself)",
                        remote.name()
                    ),
                )
                .await;
            }
            ended
        })
    }
}

/// Starts a job step's command on `host`, tagged with the job (`tag`).
fn start(
    host: &Host,
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, String>,
    tag: &str,
) -> crate::Result<exec::Streaming> {
    let tagged = (exec::JOB_TAG.to_owned(), tag.to_owned());
    match host {
        // The step's env and tag go to the host's shell (sudo would drop
        // them from its own); locally `ssh` or `sudo` gets only the basics
        // and the tag. Over SSH steps run in a terminal (`ssh -tt`), whose
        // far side merges stdout and stderr into one stream: those lines
        // stay unmarked. sudo here keeps the two pipes (`!use_pty`).
        Host::Shell(remote) => {
            let mut far = env.clone();
            far.insert(tagged.0.clone(), tagged.1.clone());
            let child = exec::start(
                &remote.step_command(argv, cwd, &far)?,
                None,
                &exec::job_env(&BTreeMap::from([tagged])),
                if host.local_user().is_some() {
                    exec::Stderr::Own
                } else {
                    exec::Stderr::Merged
                },
            )?;
            Ok(child.as_user(host.local_user()))
        }
        Host::Local => {
            let mut env = exec::job_env(env);
            env.insert(tagged.0, tagged.1);
            exec::start(argv, cwd, &env, exec::Stderr::Own)
        }
    }
}
