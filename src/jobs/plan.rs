//! What a job does: a Plan of Steps, stored as JSON in `jobs.plan` so a
//! queued job survives a restart exactly as it was requested.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Generator;

/// An ordered list of steps, plus the steps to run when one of them fails
/// (an automatic rollback, for instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(default)]
    pub recovery: Vec<Step>,
    /// The recovery runs only when a step at this index or later fails:
    /// the steps before it change nothing (a deploy's fetch or dirty-tree
    /// check), so there is nothing to undo.
    #[serde(default)]
    pub recovery_from: usize,
    /// The whole job's limit; `[jobs] job_timeout` when absent.
    #[serde(default, with = "millis")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What the step is for, in the operator's words ("Build the frontend").
    pub title: String,
    pub work: Work,
    /// This step's limit; `[jobs] step_timeout` when absent.
    #[serde(default, with = "millis")]
    pub timeout: Option<Duration>,
}

/// How a step does its work. Open: deploys add git fetch/checkout,
/// restarting units, waiting until active, health probes, env file edits
/// and symlink switches as new variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Runs a program (never through a shell) on the app's host.
    Run {
        argv: Vec<String>,
        cwd: Option<PathBuf>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    /// Refuses a work tree changed by hand, remembers the commit checked
    /// out there (for `CheckoutPrevious`), then `git checkout --detach sha`.
    Checkout { repo: PathBuf, sha: String },
    /// Recovery: checks out again the commit `Checkout` found.
    CheckoutPrevious { repo: PathBuf },
    /// Makes `<root>/releases/<name>` from commit `sha` of `repo` and links
    /// the `shared` entries of `<root>/shared` into it.
    MakeRelease {
        repo: PathBuf,
        sha: String,
        root: PathBuf,
        name: String,
        shared: Vec<String>,
    },
    /// Remembers the release `<root>/current` points to (for
    /// `SwitchBack`), then points it at release `name`, atomically.
    SwitchRelease { root: PathBuf, name: String },
    /// Recovery: points `<root>/current` back at the release
    /// `SwitchRelease` found.
    SwitchBack { root: PathBuf },
    /// After a deploy went live: the `releases` sweep's rule with the app's
    /// `keep`, this job's release counted as live. A failure is reported,
    /// never a reason to roll a healthy release back.
    CleanupReleases { keep: usize },
    /// `systemctl restart` each unit (through `sudo -n` when `sudo`).
    Restart { units: Vec<String>, sudo: bool },
    /// Waits until every unit is active; fails when one fails.
    WaitActive { units: Vec<String> },
    /// Sets `key` in the env file to a value made inside the step from the
    /// OS CSPRNG (never stored anywhere else), after a 0600 backup next to
    /// the file; the write is atomic.
    RotateSecret {
        env_file: PathBuf,
        key: String,
        generate: Generator,
        keep_backups: usize,
    },
    /// Recovery: puts back the env file as it was before this job's rotation.
    RestoreEnv { env_file: PathBuf },
    /// Sets the secret of `repo`'s Gitea webhooks to `key`'s value in the
    /// env file (read when the step runs).
    SetWebhookSecret {
        gitea_url: String,
        repo: String,
        env_file: PathBuf,
        key: String,
    },
    /// Recovery: sets the webhooks this job changed back to `key`'s value
    /// in the (restored) env file.
    RestoreWebhookSecret {
        gitea_url: String,
        repo: String,
        env_file: PathBuf,
        key: String,
    },
    /// The app's HTTP health check, retried until its timeout.
    Probe {
        url: String,
        expect: Option<String>,
        #[serde(with = "millis")]
        timeout: Option<Duration>,
    },
    /// A built-in sweep of the job's app (`ops::sweeps`): lists what it
    /// would remove or create and, unless `dry_run`, does it — only what
    /// `previewed` (the dry run before it) listed too, when given.
    Sweep {
        sweep: String,
        dry_run: bool,
        previewed: Option<Preview>,
    },
}

/// What a sweep's dry run listed, carried by the real run after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub job: i64,
    pub items: Vec<String>,
}

impl Work {
    /// The exact command line the step runs, printed before it runs and
    /// shown on the job page. Environment values are not shown: they may
    /// be secrets.
    pub fn command_line(&self) -> String {
        match self {
            Work::Run { argv, cwd, .. } => {
                let line = crate::host::exec::command_line(argv);
                match cwd {
                    Some(cwd) => format!(
                        "cd {} && {line}",
                        crate::host::exec::command_line(&[cwd.display().to_string()])
                    ),
                    None => line,
                }
            }
            Work::RotateSecret { .. }
            | Work::RestoreEnv { .. }
            | Work::SetWebhookSecret { .. }
            | Work::RestoreWebhookSecret { .. } => super::secret_work::command_line(self),
            other => super::host_work::command_line(other),
        }
    }
}

/// Durations as whole milliseconds in the stored JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
