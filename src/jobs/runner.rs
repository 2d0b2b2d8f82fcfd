//! Runs one job: its steps in order, each printing its exact command line
//! first, the recovery steps when one fails, and the job's end recorded in
//! the database, the audit log and for every follower.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::State;
use super::engine::{Inner, Stop, job_actor};
use super::output::{self, Live};
use super::plan::{Plan, Step};
use super::store::{self, Runnable};
use crate::audit::{Event, Outcome};
use crate::host::exec::Ended;
use crate::notify;
use crate::steps::redact::Redactor;
use crate::steps::{Bounds, Lines, Memory, StepJob, Work, secret};

/// How a sequence of steps ended.
enum Steps {
    Succeeded,
    Failed {
        title: String,
        exit_code: Option<i32>,
    },
    StepTimedOut {
        title: String,
        limit: Duration,
    },
    JobTimedOut {
        limit: Duration,
    },
    Stopped(Stop),
}

pub(super) async fn run(
    inner: Arc<Inner>,
    job: Runnable,
    live: Arc<Live>,
    stop: watch::Receiver<Option<Stop>>,
) {
    let actor = job_actor(&job.actor, &job.role);
    let audit = |action: &str| Event::new(&actor, action, &job.app).job(job.id);
    if let Err(e) = inner.audit.record(audit("job.start")).await {
        tracing::error!(job = job.id, error = %e, "cannot audit the job's start");
    }
    let redactor = Arc::new(Redactor::default());
    secret::learn_secret_files(&inner.config, &job.app, &redactor).await;
    let (lines, received) = mpsc::channel(64);
    let recorder = tokio::spawn(output::record(
        live.clone(),
        inner.db.clone(),
        job.id,
        received,
        redactor.clone(),
    ));
    let limit = job.plan.timeout.unwrap_or(inner.config.jobs.job_timeout);
    let held = inner.take_held(job.id);
    let lost = job.plan.holds_input() && held.is_none();
    let run = Run {
        inner: &inner,
        job: &job,
        lines,
        stop,
        deadline: Instant::now() + limit,
        job_limit: limit,
        reached: 0,
        memory: Memory::holding(held),
        redactor: redactor.clone(),
    };
    let (state, summary) = if lost {
        // Its value lived in the memory of an opsdeck that has stopped
        // since: nothing to write, and nothing was.
        let summary = "opsdeck restarted before this job ran, and the value it was given was held in memory only: nothing was written; enter the value again";
        run.say(summary.to_owned()).await;
        drop(run);
        (State::Interrupted, summary.to_owned())
    } else {
        run.plan().await
    };
    let summary = redactor.mask(&summary).into_owned();
    let printed = recorder.await.unwrap_or(0);
    let outcome = match state {
        State::Succeeded => Outcome::Ok,
        State::Cancelled => Outcome::Cancelled,
        State::Interrupted => Outcome::Error,
        _ => Outcome::Failed,
    };
    let end = audit("job.end")
        .outcome(outcome)
        .detail(serde_json::json!({"state": state, "summary": summary, "lines": printed}));
    // The end and its audit row commit together: whoever sees the job
    // ended finds the row (a script polling the job, then the log).
    let (id, ended) = (job.id, summary.clone());
    let finish: crate::audit::Along = Box::new(move |conn| {
        Box::pin(async move { store::finish_on(conn, id, state, &ended).await })
    });
    if let Err(e) = inner.audit.record_with(end, finish).await {
        tracing::error!(job = job.id, error = %e, "cannot audit the job's end");
        if let Err(e) = store::finish(&inner.db, job.id, state, &summary).await {
            tracing::error!(job = job.id, error = %e, "cannot record the job's end");
        }
    }
    // One INSERT per receiver: the deliverer sends it, never this job.
    let what = (
        job.id,
        job.app.as_str(),
        job.kind.as_str(),
        job.target.as_str(),
    );
    notify::job_ended(&inner.db, &inner.config, what, state, &summary).await;
    live.end(state);
}

struct Run<'a> {
    inner: &'a Inner,
    job: &'a Runnable,
    lines: Lines,
    stop: watch::Receiver<Option<Stop>>,
    deadline: Instant,
    job_limit: Duration,
    /// The index of the step that runs or ran last.
    reached: usize,
    /// What the steps replaced, for the recovery steps.
    memory: Memory,
    /// Masks the app's env-file values in every line printed.
    redactor: Arc<Redactor>,
}

impl Run<'_> {
    /// Runs the plan, then its recovery if a step failed; the job's final
    /// state and summary.
    async fn plan(mut self) -> (State, String) {
        let plan = &self.job.plan;
        let ended = self.steps(&plan.steps, 0).await;
        let (state, failure) = match ended {
            Ok(Steps::Succeeded) => {
                return (
                    State::Succeeded,
                    match plan.steps.len() {
                        1 => "the step succeeded".to_string(),
                        n => format!("all {n} steps succeeded"),
                    },
                );
            }
            Ok(Steps::Failed { title, exit_code }) => (
                State::Failed,
                match exit_code {
                    Some(code) => format!("step \"{title}\" failed with exit code {code}"),
                    None => format!("step \"{title}\" failed"),
                },
            ),
            Ok(Steps::StepTimedOut { title, limit }) => (
                State::TimedOut,
                format!(
                    "step \"{title}\" did not finish within {} and was stopped",
                    human(limit)
                ),
            ),
            Ok(Steps::JobTimedOut { limit }) => {
                return (
                    State::TimedOut,
                    format!(
                        "the job did not finish within {} and was stopped",
                        human(limit)
                    ),
                );
            }
            Ok(Steps::Stopped(stop)) => return stopped(stop),
            Err(e) => {
                tracing::error!(job = self.job.id, error = %e, "job failed inside opsdeck");
                return (
                    State::Failed,
                    format!("opsdeck could not run this job: {}", e.public_message()),
                );
            }
        };
        if plan.recovery.is_empty() || self.reached < plan.recovery_from {
            return (state, failure);
        }
        self.say(format!("{failure}; running the recovery steps"))
            .await;
        let first = plan.steps.len();
        let pinned = self.pinned(plan);
        let recovered = match store::add_recovery(&self.inner.db, self.job.id, &pinned).await {
            Ok(()) => self.steps(&pinned.recovery, first).await,
            Err(e) => Err(e),
        };
        match recovered {
            Ok(Steps::Succeeded) => (state, format!("{failure}; the recovery steps succeeded")),
            Ok(Steps::Stopped(stop)) => stopped(stop),
            _ => (state, format!("{failure}; {}", super::RECOVERY_FAILED)),
        }
    }

    /// The plan with its recovery steps naming what this job replaced (the
    /// commit, the release) instead of a placeholder, for the job page, the
    /// stored plan and the command lines printed.
    fn pinned(&self, plan: &Plan) -> Plan {
        let mut plan = plan.clone();
        for step in &mut plan.recovery {
            if let Some((work, words)) = step.work.pinned(&self.memory) {
                step.work = work;
                step.title = format!("{} ({words})", step.title);
            }
        }
        plan
    }

    /// Runs `steps` (numbered from `first` in the job) until one does not succeed.
    async fn steps(&mut self, steps: &[Step], first: usize) -> crate::Result<Steps> {
        for (i, step) in steps.iter().enumerate() {
            let idx = first + i;
            if let Some(stop) = self.stop.borrow().clone() {
                return Ok(Steps::Stopped(stop));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Steps::JobTimedOut {
                    limit: self.job_limit,
                });
            }
            let limit = step.timeout.unwrap_or(self.inner.config.jobs.step_timeout);
            self.reached = idx;
            store::step_started(&self.inner.db, self.job.id, idx).await?;
            self.say(format!("$ {}", step.work.command_line())).await;
            let ended = self.work(&step.work, limit.min(left)).await;
            let (state, exit_code) = match ended {
                Ended::Exited(Some(0)) => ("succeeded", Some(0)),
                Ended::Exited(code) => ("failed", code),
                Ended::TimedOut => ("timed_out", None),
                Ended::Stopped => match self.stop.borrow().clone() {
                    Some(Stop::Shutdown) => ("interrupted", None),
                    _ => ("cancelled", None),
                },
            };
            store::step_ended(&self.inner.db, self.job.id, idx, state, exit_code).await?;
            match ended {
                Ended::Exited(Some(0)) => {}
                Ended::Exited(exit_code) => {
                    let title = step.title.clone();
                    return Ok(Steps::Failed { title, exit_code });
                }
                Ended::TimedOut if limit > left => {
                    return Ok(Steps::JobTimedOut {
                        limit: self.job_limit,
                    });
                }
                Ended::TimedOut => {
                    return Ok(Steps::StepTimedOut {
                        title: step.title.clone(),
                        limit,
                    });
                }
                Ended::Stopped => {
                    let stop = self.stop.borrow().clone().unwrap_or(Stop::Shutdown);
                    return Ok(Steps::Stopped(stop));
                }
            }
        }
        Ok(Steps::Succeeded)
    }

    /// Does one step, then audits what it changed (fingerprints, never values).
    async fn work(&mut self, work: &Work, limit: Duration) -> Ended {
        let bounds = Bounds {
            limit,
            stopped: Box::pin(self.stopped()),
            lines: self.lines.clone(),
        };
        let mut job = StepJob {
            config: &self.inner.config,
            db: &self.inner.db,
            server_key: &self.inner.server_key,
            redactor: &self.redactor,
            id: self.job.id,
            app: &self.job.app,
            tag: format!("{}:{}", self.inner.instance, self.job.id),
            memory: &mut self.memory,
            audit: Vec::new(),
        };
        let ended = work.perform(&mut job, bounds).await;
        let rows = job.audit;
        let actor = job_actor(&self.job.actor, &self.job.role);
        for (action, detail) in rows {
            let event = Event::new(&actor, action, &self.job.app)
                .job(self.job.id)
                .detail(detail);
            if let Err(e) = self.inner.audit.record(event).await {
                tracing::error!(job = self.job.id, error = %e, "cannot audit a step's change");
            }
        }
        ended
    }

    /// Resolves when the job is asked to stop (cancel, shutdown).
    fn stopped(&self) -> impl Future<Output = ()> + use<> {
        let mut stop = self.stop.clone();
        async move {
            // A dropped sender never stops the step.
            if stop.wait_for(Option::is_some).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Prints one line of opsdeck's own into the job output.
    async fn say(&self, line: String) {
        let _ = self.lines.send(line.into()).await;
    }
}

fn stopped(stop: Stop) -> (State, String) {
    match stop {
        Stop::Cancel { by } => (State::Cancelled, format!("cancelled by {by}")),
        Stop::Shutdown => (
            State::Interrupted,
            "opsdeck shut down while this job was running".into(),
        ),
    }
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
