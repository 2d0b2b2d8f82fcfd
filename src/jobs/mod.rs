//! The job engine (DESIGN.md "Jobs"): every button starts a job — a Plan of
//! Steps run on the server, one mutating job per app at a time, its output
//! numbered, stored and streamed live, its start and end audited.

mod approval;
mod engine;
mod output;
pub mod plan;
mod runner;
mod store;

use serde::Serialize;

use crate::actor::{Actor, Role};

pub use approval::{Decision, Gate};
pub use engine::{Engine, Request, already_queued};

/// How a job's summary ends when its recovery failed as well: the app may
/// be down, and the job page says so loudest.
pub const RECOVERY_FAILED: &str = "the recovery steps failed too";
pub use output::{Followed, Follower};
pub use plan::{Plan, Step};

/// Where a job is in its life: `queued → running → succeeded | failed |
/// cancelled | timed_out | interrupted`; a request that needs approval
/// starts `awaiting_approval → queued | denied | expired | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    Interrupted,
    AwaitingApproval,
    Denied,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::TimedOut => "timed_out",
            State::Interrupted => "interrupted",
            State::AwaitingApproval => "awaiting_approval",
            State::Denied => "denied",
            State::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [
            State::Queued,
            State::Running,
            State::Succeeded,
            State::Failed,
            State::Cancelled,
            State::TimedOut,
            State::Interrupted,
            State::AwaitingApproval,
            State::Denied,
            State::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Whether the job has ended (nothing will change any more).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            State::Queued | State::Running | State::AwaitingApproval
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as pages and the API show it. Times are Unix milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub app: String,
    /// `action`, `deploy`, `rollback`, `rotate`, `sweep`.
    pub kind: String,
    /// The action, secret or sweep name, the ref or the release.
    pub target: String,
    /// Who asked for it, and their role then.
    pub actor: String,
    pub role: String,
    pub state: State,
    /// One sentence on how it ended.
    pub summary: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub cancelled_by: Option<String>,
    /// The approval it needed, if it needed one.
    pub approval: Option<Approval>,
    /// Why an owner deployed it without the approval it needed.
    pub emergency: Option<String>,
    /// Empty in lists (history, queue).
    pub steps: Vec<StepRecord>,
}

impl Job {
    /// `action cleanup-sessions`, `deploy main`, `rollback` — in the
    /// operator's words, for lists and titles.
    pub fn what(&self) -> String {
        match self.target.as_str() {
            "" => self.kind.clone(),
            target => format!("{} {target}", self.kind),
        }
    }

    /// The role that approves it, if it needs an approval.
    pub fn approver_role(&self) -> Option<Role> {
        let approval = self.approval.as_ref()?;
        // Only the engine writes it, from a Role; the strictest otherwise.
        Some(Role::parse(&approval.role).unwrap_or(Role::Owner))
    }

    /// Whether `actor` may approve or deny it now: it awaits approval, they
    /// have the role and did not ask for it (`ops::approval` enforces it).
    pub fn may_decide(&self, actor: &Actor) -> bool {
        self.state == State::AwaitingApproval
            && actor.login != self.actor
            && self.approver_role().is_some_and(|role| actor.role >= role)
    }
}

/// The approval a job waits for, or the decision it got.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// The role that approves it (or any higher one).
    pub role: String,
    /// Unix milliseconds; it cannot be approved after.
    pub expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    /// The approver's or denier's reason.
    pub reason: Option<String>,
}

/// One step of a job as it ran (or has yet to run).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StepRecord {
    pub title: String,
    /// The exact command line, as printed in the output.
    pub command: String,
    /// `pending`, `running`, `succeeded`, `failed`, `cancelled`,
    /// `timed_out`, `interrupted` or `skipped`.
    pub state: String,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
}

/// Who holds an app (its running mutating job) and who waits, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub running: Option<Job>,
    pub waiting: Vec<Job>,
}
