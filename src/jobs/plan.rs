//! What a job does: a Plan of Steps, stored as JSON in `jobs.plan` so a
//! queued job survives a restart exactly as it was requested.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An ordered list of steps, plus the steps to run when one of them fails
/// (an automatic rollback, for instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(default)]
    pub recovery: Vec<Step>,
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
