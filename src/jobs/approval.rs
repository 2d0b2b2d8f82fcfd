//! Four-eyes approvals (README "Approvals"): a request that needs one
//! waits as `awaiting_approval` — holding no app lock, so other jobs run
//! meanwhile — until someone else with the role approves it (it joins the
//! app's queue with the plan stored at request time, so it ships the commit
//! pinned then), denies it, or it expires. Who may decide is checked above
//! (`ops::approval`); this module moves the job and audits each step.

use std::sync::Arc;
use std::time::Duration;

use super::engine::{Engine, Inner, job_actor, lock};
use super::{Job, State, store};
use crate::actor::{Actor, Role};
use crate::audit::{Event, Outcome};
use crate::notify;
use crate::{Error, Result};

/// Whether a request waits for a second person's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Runs when its turn comes.
    Open,
    /// Waits until someone else with this role (or a higher one) approves.
    Approval(Role),
    /// Needed `role`'s approval; an owner skipped it for `reason`.
    Emergency { role: Role, reason: String },
}

/// What an approver decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

/// The longest the expiry watch sleeps: a new request wakes it anyway, so
/// this only bounds how late an expiry is noticed if a wake-up were lost.
const WATCH_AT_MOST: Duration = Duration::from_secs(60);

impl Engine {
    /// Approves or denies awaiting job `id` for `reason` (already checked:
    /// `actor` may, and is not who asked). An approved job joins its app's
    /// queue; a denied one ends `denied`. A request past its expiry is
    /// expired instead and refused (409).
    pub async fn decide(
        &self,
        id: i64,
        actor: &Actor,
        decision: Decision,
        reason: &str,
    ) -> Result<Job> {
        let inner = &self.inner;
        let queue = inner.queue.lock().await;
        let job = self.job(id).await?;
        let Some(approval) = job
            .approval
            .as_ref()
            .filter(|_| job.state == State::AwaitingApproval)
        else {
            return Err(Error::Conflict(format!(
                "job {id} is not awaiting approval: it is {}",
                job.state
            )));
        };
        if approval.expires_at <= store::now() {
            drop(queue);
            inner.expire_due().await?;
            return Err(Error::Conflict(format!(
                "job {id} expired before it was approved; ask for it again"
            )));
        }
        // Audited before it takes effect: nothing is decided unaudited.
        let action = format!("approval.{}", decision.as_str());
        inner
            .audit
            .record(Event::new(actor, &action, &job.app).job(id).detail(
                serde_json::json!({"reason": reason, "requested_by": job.actor, "role": approval.role}),
            ))
            .await?;
        let (state, summary) = match decision {
            Decision::Approve => (State::Queued, None),
            Decision::Deny => (
                State::Denied,
                Some(format!("denied by {}: {reason}", actor.login)),
            ),
        };
        let by = &actor.login;
        // Under the queue lock nothing else moves it (the expiry watch takes
        // the lock too), so this holds; if not, nothing was changed.
        if !store::decide(&inner.db, id, state, by, reason, summary.as_deref()).await? {
            return Err(Error::Conflict(format!(
                "job {id} is no longer awaiting approval"
            )));
        }
        drop(queue);
        match decision {
            Decision::Approve => inner.enqueue(id, &job.app).await?,
            Decision::Deny => inner.close_unrun(&job, State::Denied).await?,
        }
        self.job(id).await
    }

    /// Requests awaiting approval, of one app or of all, oldest first.
    pub async fn awaiting(&self, app: Option<&str>) -> Result<Vec<Job>> {
        store::awaiting(&self.inner.db, app).await
    }
}

impl Inner {
    /// The `approval.requested` event: an audit row, and a notification
    /// for whoever listens.
    pub(super) async fn approval_requested(
        &self,
        actor: &Actor,
        id: i64,
        app: &str,
        role: Role,
        expires_at: i64,
    ) -> Result<()> {
        self.audit
            .record(
                Event::new(actor, "approval.request", app)
                    .job(id)
                    .detail(serde_json::json!({"role": role, "expires_at": expires_at})),
            )
            .await?;
        let text = format!(
            "{app}: job {id} by {} awaits the approval of someone with the {role} role",
            actor.login
        );
        let detail = serde_json::json!({"requested_by": actor.login, "role": role, "expires_at": expires_at});
        let event = notify::Event {
            kind: "approval.requested",
            app,
            job: Some(id),
            text,
            detail,
        };
        notify::emit(&self.db, &self.config, event).await;
        self.approvals_changed.notify_one();
        Ok(())
    }

    /// Ends every request past its expiry as `expired`, each audited.
    pub(super) async fn expire_due(&self) -> Result<()> {
        let _queue = self.queue.lock().await;
        for (id, needed) in store::due_to_expire(&self.db, store::now()).await? {
            let job = store::job(&self.db, id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("there is no job {id}")))?;
            let system = Actor::system("system:approvals");
            // The state and its row commit together: whoever sees the
            // request expired finds why in the log.
            let expire: crate::audit::Along =
                Box::new(move |conn| Box::pin(store::expire_on(conn, id)));
            match self
                .audit
                .record_with(
                    Event::new(&system, "approval.expire", &job.app)
                        .job(id)
                        .outcome(Outcome::Failed)
                        .detail(serde_json::json!({"requested_by": job.actor, "role": needed})),
                    expire,
                )
                .await
            {
                Ok(_) => self.close_unrun(&job, State::Expired).await?,
                // No longer awaiting: nothing written. (Deciding takes the
                // queue lock too, so it is not expected.)
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// After a request ended without running (denied, expired): its
    /// `job.end` row, its live stream closed, its held value dropped.
    async fn close_unrun(&self, job: &Job, state: State) -> Result<()> {
        let owner = job_actor(&job.actor, &job.role);
        self.audit
            .record(
                Event::new(&owner, "job.end", &job.app)
                    .job(job.id)
                    .outcome(Outcome::Failed)
                    .detail(serde_json::json!({"state": state})),
            )
            .await?;
        lock(&self.held).remove(&job.id);
        if let Some(live) = lock(&self.live).remove(&job.id) {
            live.end(state);
        }
        Ok(())
    }

    /// Expires requests as their time comes, for as long as opsdeck runs
    /// (also those a previous run left awaiting).
    pub(super) async fn watch_expiry(self: Arc<Self>) {
        loop {
            if let Err(e) = self.expire_due().await {
                tracing::error!(error = %e, "cannot expire approval requests");
            }
            let wait = match store::next_expiry(&self.db).await {
                Ok(Some(at)) => Duration::from_millis(
                    u64::try_from(at.saturating_sub(store::now())).unwrap_or(0),
                )
                .min(WATCH_AT_MOST),
                Ok(None) | Err(_) => WATCH_AT_MOST,
            };
            let _ = tokio::time::timeout(wait, self.approvals_changed.notified()).await;
        }
    }
}
