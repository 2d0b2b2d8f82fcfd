//! Running a program (a build step, an action, a `command` sweep): never
//! through a shell, on the app's host, in its own process group, its
//! output streamed line by line into the job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Perform, StepJob, cd, groups, path, say};
use crate::host::exec::{self, Ended, command_line as quoted};
use crate::host::{Host, crash_point, env_edit, envfile};

/// Runs a program (never through a shell) on the app's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub argv: Vec<String>,
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The app's env file, whose variables (read when the step starts,
    /// never stored in the plan) are in the program's environment; `env`
    /// wins over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
}

impl Run {
    /// A program with `env`, without the app's env file.
    pub fn new(argv: Vec<String>, cwd: Option<PathBuf>, env: BTreeMap<String, String>) -> Run {
        Run {
            argv,
            cwd,
            env,
            env_file: None,
        }
    }
}

impl Perform for Run {
    fn command_line(&self) -> String {
        let mut line = quoted(&self.argv);
        if let Some(cwd) = &self.cwd {
            line = format!("{} && {line}", cd(cwd));
        }
        if let Some(env_file) = &self.env_file {
            line = format!("{line}  # with the variables of {}", path(env_file));
        }
        line
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
            let started = match self.env_file.as_deref() {
                Some(env_file) => load_env_file(job, &host, env_file).await,
                None => Ok(BTreeMap::new()),
            }
            .and_then(|secret| {
                let step = Step {
                    argv: &self.argv,
                    cwd: self.cwd.as_deref(),
                    env: &self.env,
                    secret: &secret,
                };
                start(&host, &step, &job.tag)
            });
            let child = match started {
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

/// The variables of the app's env file at `env_file`, read where it lives
/// (as the app's user); its values are masked in the output from now on,
/// also those added since the job started. A file that is missing,
/// unreadable or not `KEY=value` lines fails the step, saying so.
async fn load_env_file(
    job: &StepJob<'_>,
    host: &Host,
    env_file: &Path,
) -> crate::Result<BTreeMap<String, String>> {
    let cannot = |e: crate::Error| {
        crate::Error::Unavailable(format!(
            "cannot load the app's env file into the step's environment: {}",
            e.public_message()
        ))
    };
    let text = env_edit::read(host, env_file).await.map_err(cannot)?;
    let secrets: Vec<String> = job
        .app()
        .map(|app| app.secrets.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    job.redactor.learn_text(&text, &secrets);
    Ok(envfile::values(env_file, &text)
        .map_err(cannot)?
        .into_iter()
        .collect())
}

/// What a step runs: `env` is shown in command lines, `secret` (the env
/// file's variables) never is.
struct Step<'a> {
    argv: &'a [String],
    cwd: Option<&'a Path>,
    env: &'a BTreeMap<String, String>,
    secret: &'a BTreeMap<String, String>,
}

/// Starts a job step's command on `host`, tagged with the job (`tag`).
fn start(host: &Host, step: &Step<'_>, tag: &str) -> crate::Result<exec::Streaming> {
    let tagged = (exec::JOB_TAG.to_owned(), tag.to_owned());
    match host {
        // The step's env and tag go to the host's shell (sudo would drop
        // them from its own); locally `ssh` or `sudo` gets only the basics
        // and the tag. Over SSH steps run in a terminal (`ssh -tt`), whose
        // far side merges stdout and stderr into one stream: those lines
        // stay unmarked. sudo here keeps the two pipes (`!use_pty`), and
        // its stdin: the env file's variables come that way.
        Host::Shell(remote) => {
            let mut far = step.env.clone();
            far.insert(tagged.0.clone(), tagged.1.clone());
            let (argv, input) = if step.secret.is_empty() {
                (remote.step_command(step.argv, step.cwd, &far)?, None)
            } else {
                let (argv, input) =
                    remote.step_command_with_secrets(step.argv, step.cwd, &far, step.secret)?;
                (argv, Some(input))
            };
            let child = exec::start(
                &argv,
                None,
                &exec::job_env(&BTreeMap::from([tagged])),
                if host.local_user().is_some() {
                    exec::Stderr::Own
                } else {
                    exec::Stderr::Merged
                },
                input,
            )?;
            Ok(child.as_user(host.local_user()))
        }
        Host::Local => {
            // The basics, then the env file's variables, then `env`.
            let mut own = step.secret.clone();
            own.extend(step.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut env = exec::job_env(&own);
            env.insert(tagged.0, tagged.1);
            exec::start(step.argv, step.cwd, &env, exec::Stderr::Own, None)
        }
    }
}
