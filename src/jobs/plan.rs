//! What a job does: a Plan of Steps, stored as JSON in `jobs.plan` so a
//! queued job survives a restart exactly as it was requested.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::steps::Work;

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
    #[serde(default, with = "crate::steps::millis")]
    pub timeout: Option<Duration>,
}

impl Plan {
    /// Whether a step needs a value the job holds in memory only (a pasted
    /// secret): without it, the job does not run.
    pub fn holds_input(&self) -> bool {
        self.steps.iter().any(|step| step.work.holds_input())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What the step is for, in the operator's words ("Build the frontend").
    pub title: String,
    pub work: Work,
    /// This step's limit; `[jobs] step_timeout` when absent.
    #[serde(default, with = "crate::steps::millis")]
    pub timeout: Option<Duration>,
}
