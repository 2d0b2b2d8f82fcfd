//! Notifications (README "Notifications"): an event meant for a
//! `[[notify]]` receiver is written to the outbox table where it happens —
//! one INSERT, so a job never waits on a receiver — and the deliverer
//! (`deliver.rs`) sends it, retrying with backoff, across restarts.

mod deliver;
mod store;

use serde_json::Value;
use sqlx::SqlitePool;

use crate::config::Config;
use crate::jobs::State;

pub use deliver::deliver_forever;
pub use store::{Delivery, Tally, recent, tally};

/// One event, before it is written for each receiver that wants it.
pub struct Event<'a> {
    /// One of `config::NOTIFY_EVENTS`.
    pub kind: &'static str,
    pub app: &'a str,
    pub job: Option<i64>,
    /// One sentence for people: what Slack and Matrix show.
    pub text: String,
    /// The facts, for a program (`json`'s `detail`).
    pub detail: Value,
}

/// Writes `event` to the outbox once for each `[[notify]]` that asked for
/// it (and for its app). A failure is logged, never returned: the event's
/// cause (a job's end) has happened and is recorded either way.
pub async fn emit(db: &SqlitePool, config: &Config, event: Event<'_>) {
    let targets = config.notify.iter().filter(|target| {
        target.events.iter().any(|e| e == event.kind)
            && (target.apps.is_empty() || target.apps.iter().any(|a| a == event.app))
    });
    for target in targets {
        if let Err(e) = store::insert(db, &target.name, &event).await {
            tracing::error!(target = target.name, event = event.kind, error = %e, "cannot write a notification to the outbox");
        }
    }
}

/// The event a job's end is, if any: `job.failed` (failed or timed out),
/// `job.interrupted`, or `deploy.succeeded`.
pub async fn job_ended(
    db: &SqlitePool,
    config: &Config,
    job: (i64, &str, &str, &str),
    state: State,
    summary: &str,
) {
    let (id, app, kind, target) = job;
    let event = match (state, kind) {
        (State::Failed | State::TimedOut, _) => "job.failed",
        (State::Interrupted, _) => "job.interrupted",
        (State::Succeeded, "deploy") => "deploy.succeeded",
        _ => return,
    };
    let what = if target.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {target}")
    };
    let text = match summary {
        "" => format!("{app}: {what} {state} (job {id})"),
        summary => format!("{app}: {what} {state} (job {id}): {summary}"),
    };
    let detail =
        serde_json::json!({"kind": kind, "target": target, "state": state, "summary": summary});
    emit(
        db,
        config,
        Event {
            kind: event,
            app,
            job: Some(id),
            text,
            detail,
        },
    )
    .await;
}
