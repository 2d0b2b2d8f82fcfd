//! The queue: jobs are submitted `queued`, one mutating job per app runs
//! at a time in the order they were asked for, apps run in parallel.
//! Also cancel, restart recovery and the shutdown drain.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use tokio::sync::{Notify, watch};

use super::approval::Gate;
use super::output::{Follower, Live};
use super::plan::Plan;
use super::{Job, Queue, State, runner, store};
use crate::actor::Actor;
use crate::audit::{Audit, Event, Outcome};
use crate::config::Config;
use crate::host::exec;
use crate::host::secret::ServerKey;
use crate::notify;
use crate::steps::{self, Held};
use crate::{Error, Result};

/// A job to run, as an `ops` module builds it.
#[derive(Debug, Clone)]
pub struct Request {
    pub app: String,
    /// `action`, `deploy`, `rollback`, `rotate`, `sweep`.
    pub kind: String,
    /// The action, secret or sweep name, the ref or the release.
    pub target: String,
    /// Whether it changes the app (then it waits for the app's other
    /// mutating jobs); a dry run does not.
    pub mutating: bool,
    pub plan: Plan,
    /// Whether it waits for an approval first (`ops::approval::gate`).
    pub gate: Gate,
}

/// The refusal of a request identical to one still waiting: `what` (e.g.
/// `deploy main`) of `app`, queued by `who` at `at` (Unix milliseconds).
pub fn already_queued(what: &str, app: &str, who: &str, at: i64) -> Error {
    Error::Conflict(format!(
        "{what} of {app} is already queued by {who} at {}",
        chrono::DateTime::from_timestamp_millis(at)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    ))
}

/// Why a running job is asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    Cancel { by: String },
    Shutdown,
}

#[derive(Clone)]
pub struct Engine {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub config: Arc<Config>,
    pub db: SqlitePool,
    pub audit: Audit,
    /// Tags every job child's environment as `OPSDECK_JOB=<instance>:<job>`,
    /// so that a restart finds what a crashed run left behind, and only
    /// that (several opsdecks, each with its own data_dir, may share a host).
    pub instance: String,
    /// Fingerprints secret values in rotation output and audit rows.
    pub server_key: ServerKey,
    /// Taken to change which jobs run; held across the few database writes
    /// that must not interleave (duplicate check + insert, queued → running).
    pub(super) queue: tokio::sync::Mutex<Scheduling>,
    pub(super) live: Mutex<HashMap<i64, Arc<Live>>>,
    running: Mutex<HashMap<i64, watch::Sender<Option<Stop>>>>,
    /// The value each waiting job was given to hold (never stored; see
    /// `steps::Held`), until it starts.
    pub(super) held: Mutex<HashMap<i64, Held>>,
    job_ended: Notify,
    /// Wakes the expiry watch: a request came to await approval.
    pub(super) approvals_changed: Notify,
}

pub(super) struct Scheduling {
    accepting: bool,
    /// Apps whose mutating job is running.
    busy: HashSet<String>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Engine {
    /// Starts the engine after recovering from the previous run: jobs it
    /// left `running` become `interrupted` (audited, never retried) and the
    /// processes they left are killed; `queued` jobs run.
    pub async fn start(
        config: Arc<Config>,
        db: SqlitePool,
        audit: Audit,
        server_key: ServerKey,
    ) -> anyhow::Result<Engine> {
        let inner = Arc::new(Inner {
            instance: instance_tag(&config.server.data_dir),
            server_key,
            config,
            db,
            audit,
            queue: tokio::sync::Mutex::new(Scheduling {
                accepting: true,
                busy: HashSet::new(),
            }),
            live: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            job_ended: Notify::new(),
            approvals_changed: Notify::new(),
        });
        for job in store::interrupt_running(&inner.db).await? {
            let actor = job_actor(&job.actor, &job.role);
            inner
                .audit
                .record(
                    Event::new(&actor, "job.end", &job.app)
                        .job(job.id)
                        .outcome(Outcome::Error)
                        .detail(serde_json::json!({"state": State::Interrupted})),
                )
                .await?;
            let what = (
                job.id,
                job.app.as_str(),
                job.kind.as_str(),
                job.target.as_str(),
            );
            notify::job_ended(
                &inner.db,
                &inner.config,
                what,
                State::Interrupted,
                &job.summary,
            )
            .await;
        }
        // Processes are found both by the process group recorded when their
        // step started (a step that cleared its environment, `env -i` or
        // `sudo`, lost the tag) and by their environment tag (a child that
        // made itself a new session left the group but kept the tag).
        let groups = steps::groups::kill_left(&inner.db).await?;
        if groups > 0 {
            tracing::warn!(groups, "killed process groups left by interrupted jobs");
        }
        let prefix = format!("{}:", inner.instance);
        let killed = tokio::task::spawn_blocking(move || {
            crate::host::procs::kill_tagged(exec::JOB_TAG, &prefix)
        })
        .await?;
        if killed > 0 {
            tracing::warn!(killed, "killed processes left by interrupted jobs");
        }
        let queued = store::all_queued(&inner.db).await?;
        for (id, ..) in &queued {
            lock(&inner.live).insert(*id, Live::new());
        }
        // Requests awaiting approval keep awaiting (the expiry watch ends
        // those whose time passed meanwhile, first thing).
        for id in store::all_awaiting(&inner.db).await? {
            lock(&inner.live).insert(id, Live::new());
        }
        tokio::spawn(inner.clone().watch_expiry());
        let engine = Engine { inner };
        for (id, app, mutating) in queued {
            if mutating {
                engine.inner.kick(&app).await;
            } else {
                engine.inner.launch(id, false).await;
            }
        }
        Ok(engine)
    }

    /// Queues a job, or with a [`Gate::Approval`] makes it await approval;
    /// returns its id. An identical request still waiting is refused with
    /// who asked for it and when.
    pub async fn submit(&self, actor: &Actor, request: Request) -> Result<i64> {
        self.queue_job(actor, request, None).await
    }

    /// Queues a job given `held` to hold in memory until it runs (a pasted
    /// secret, which its plan must not contain).
    pub async fn submit_holding(&self, actor: &Actor, request: Request, held: Held) -> Result<i64> {
        self.queue_job(actor, request, Some(held)).await
    }

    async fn queue_job(&self, actor: &Actor, request: Request, held: Option<Held>) -> Result<i64> {
        let inner = &self.inner;
        let queue = inner.queue.lock().await;
        if !queue.accepting {
            return Err(Error::Unavailable(
                "opsdeck is shutting down and accepts no new jobs; try again in a minute".into(),
            ));
        }
        let Request {
            app,
            kind,
            target,
            mutating,
            plan,
            gate,
        } = &request;
        if let Some((who, at)) = store::queued_duplicate(&inner.db, app, kind, target).await? {
            let what = if target.is_empty() {
                kind.clone()
            } else {
                format!("{kind} {target}")
            };
            return Err(already_queued(&what, app, &who, at));
        }
        let expires_at = store::now()
            + i64::try_from(inner.config.jobs.approval_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let (state, approval, emergency) = match gate {
            Gate::Open => (State::Queued, None, None),
            Gate::Approval(role) => (
                State::AwaitingApproval,
                Some((role.as_str(), expires_at)),
                None,
            ),
            Gate::Emergency { reason, .. } => (State::Queued, None, Some(reason.as_str())),
        };
        let new = store::NewJob {
            app,
            kind,
            target,
            actor: &actor.login,
            role: actor.role.as_str(),
            mutating: *mutating,
            plan,
            state,
            approval,
            emergency,
        };
        let id = store::insert(&inner.db, new).await?;
        lock(&inner.live).insert(id, Live::new());
        // Before the queue lock is let go: the job cannot start without it.
        if let Some(held) = held {
            lock(&inner.held).insert(id, held);
        }
        let request = Event::new(actor, "job.request", app)
            .job(id)
            .detail(serde_json::json!({"kind": kind, "target": target}));
        let audited = match inner.audit.record(request).await {
            Ok(_) => inner.audit_gate(actor, id, app, gate, expires_at).await,
            Err(e) => Err(e),
        };
        if let Err(e) = audited {
            // Nothing runs unaudited.
            store::finish(
                &inner.db,
                id,
                State::Failed,
                "not run: its request could not be audited",
            )
            .await?;
            if let Some(live) = lock(&inner.live).remove(&id) {
                live.end(State::Failed);
            }
            lock(&inner.held).remove(&id);
            return Err(e);
        }
        drop(queue);
        if state == State::Queued {
            inner.enqueue(id, app).await?;
        }
        Ok(id)
    }

    /// Cancels a queued job, or stops a running one (its whole process
    /// tree); the runner records how it ended.
    pub async fn cancel(&self, id: i64, actor: &Actor) -> Result<()> {
        let inner = &self.inner;
        let _queue = inner.queue.lock().await;
        let job = self.job(id).await?;
        match job.state {
            State::Queued | State::AwaitingApproval => {
                store::cancel_queued(&inner.db, id, &actor.login).await?;
                lock(&inner.held).remove(&id);
                inner.record_cancel(actor, &job).await?;
                let owner = job_actor(&job.actor, &job.role);
                inner
                    .audit
                    .record(
                        Event::new(&owner, "job.end", &job.app)
                            .job(id)
                            .outcome(Outcome::Failed)
                            .detail(serde_json::json!({"state": State::Cancelled})),
                    )
                    .await?;
                if let Some(live) = lock(&inner.live).remove(&id) {
                    live.end(State::Cancelled);
                }
                Ok(())
            }
            State::Running => {
                store::set_cancelled_by(&inner.db, id, &actor.login).await?;
                inner.record_cancel(actor, &job).await?;
                if let Some(stop) = lock(&inner.running).get(&id) {
                    stop.send_replace(Some(Stop::Cancel {
                        by: actor.login.clone(),
                    }));
                }
                Ok(())
            }
            ended => Err(Error::Conflict(format!(
                "job {id} has already ended ({ended})"
            ))),
        }
    }

    /// Stops accepting jobs, lets running ones finish for `grace`, then
    /// stops them (they end `interrupted`). Queued jobs wait for the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.queue.lock().await.accepting = false;
        let deadline = tokio::time::Instant::now() + grace;
        if !self.inner.wait_idle(deadline).await {
            for stop in lock(&self.inner.running).values() {
                stop.send_replace(Some(Stop::Shutdown));
            }
            let killed = tokio::time::Instant::now() + exec::KILL_GRACE * 3;
            self.inner.wait_idle(killed).await;
        }
    }

    /// A job with its steps, or 404.
    pub async fn job(&self, id: i64) -> Result<Job> {
        store::job(&self.inner.db, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("there is no job {id}")))
    }

    /// History, newest first, of one app or all.
    pub async fn recent(&self, app: Option<&str>, limit: i64) -> Result<Vec<Job>> {
        store::recent(&self.inner.db, app, limit).await
    }

    /// Who holds `app` and who waits for it.
    pub async fn queue(&self, app: &str) -> Result<Queue> {
        let mut jobs = store::active(&self.inner.db, app).await?;
        let running = jobs
            .iter()
            .position(|j| j.state == State::Running)
            .map(|i| jobs.remove(i));
        Ok(Queue {
            running,
            waiting: jobs,
        })
    }

    /// Follows a job's output after line `after` until the job ends.
    pub async fn follow(&self, id: i64, after: u64) -> Result<Follower> {
        self.follower(id, after, false).await
    }

    /// The output printed so far, after line `after`.
    pub async fn output(&self, id: i64, after: u64) -> Result<Follower> {
        self.follower(id, after, true).await
    }

    async fn follower(&self, id: i64, after: u64, only_now: bool) -> Result<Follower> {
        if store::state(&self.inner.db, id).await?.is_none() {
            return Err(Error::NotFound(format!("there is no job {id}")));
        }
        let live = lock(&self.inner.live).get(&id).cloned();
        Ok(Follower::new(
            self.inner.db.clone(),
            id,
            live,
            after,
            only_now,
        ))
    }
}

impl Inner {
    /// Runs queued job `id` when its turn comes: after the app's other
    /// mutating jobs, or at once when it changes nothing.
    pub(super) async fn enqueue(self: &Arc<Self>, id: i64, app: &str) -> Result<()> {
        if store::mutating(&self.db, id).await? {
            self.kick(app).await;
        } else {
            self.launch(id, false).await;
        }
        Ok(())
    }

    /// The audit row a gated request adds to its `job.request`: the
    /// approval it awaits, or the emergency that skipped it.
    async fn audit_gate(
        &self,
        actor: &Actor,
        id: i64,
        app: &str,
        gate: &Gate,
        expires_at: i64,
    ) -> Result<()> {
        match gate {
            Gate::Open => Ok(()),
            Gate::Approval(role) => {
                self.approval_requested(actor, id, app, *role, expires_at)
                    .await
            }
            Gate::Emergency { role, reason } => {
                self.audit
                    .record(
                        Event::new(actor, "approval.emergency", app)
                            .job(id)
                            .detail(serde_json::json!({"reason": reason, "skipped": role})),
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// Starts `app`'s oldest queued mutating job unless one is running.
    /// (A named future type: kick → launch → ended → kick is a cycle.)
    fn kick<'a>(
        self: &'a Arc<Self>,
        app: &'a str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut queue = self.queue.lock().await;
            if !queue.accepting || queue.busy.contains(app) {
                return;
            }
            match store::next_queued(&self.db, app).await {
                Ok(Some(id)) => {
                    queue.busy.insert(app.to_string());
                    drop(queue);
                    self.launch(id, true).await;
                }
                Ok(None) => {}
                Err(e) => tracing::error!(app, error = %e, "cannot read the job queue"),
            }
        })
    }

    /// Moves a queued job to running and runs it in a task of its own; when
    /// it ends, the app's next job starts.
    async fn launch(self: &Arc<Self>, id: i64, mutating: bool) {
        let job = match store::start(&self.db, id).await {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(job = id, error = %e, "cannot start job");
                return self.fail_to_start(id, mutating, &e).await;
            }
        };
        let (stop, stopped) = watch::channel(None);
        lock(&self.running).insert(id, stop);
        let live = lock(&self.live).entry(id).or_insert_with(Live::new).clone();
        let inner = self.clone();
        let app = job.app.clone();
        tokio::spawn(async move {
            let run = tokio::spawn(runner::run(inner.clone(), job, live.clone(), stopped));
            if run.await.is_err() {
                let summary = "opsdeck hit an internal error while running this job; the details are in its log";
                let _ = store::finish(&inner.db, id, State::Failed, summary).await;
                live.end(State::Failed);
            }
            inner.ended(id, &app, mutating).await;
        });
    }

    async fn fail_to_start(self: &Arc<Self>, id: i64, mutating: bool, e: &Error) {
        let summary = format!("could not start: {}", e.public_message());
        let _ = store::finish(&self.db, id, State::Failed, &summary).await;
        let app = store::job(&self.db, id).await.ok().flatten().map(|j| j.app);
        if let Some(live) = lock(&self.live).remove(&id) {
            live.end(State::Failed);
        }
        if let Some(app) = app {
            self.ended(id, &app, mutating).await;
        }
    }

    /// The value job `id` was given to hold, taken as it starts.
    pub(super) fn take_held(&self, id: i64) -> Option<Held> {
        lock(&self.held).remove(&id)
    }

    async fn ended(self: &Arc<Self>, id: i64, app: &str, mutating: bool) {
        lock(&self.running).remove(&id);
        lock(&self.live).remove(&id);
        // A job that failed to start never took its value.
        lock(&self.held).remove(&id);
        if mutating {
            self.queue.lock().await.busy.remove(app);
            self.kick(app).await;
        }
        self.job_ended.notify_waiters();
    }

    /// Waits until no job runs; false if `deadline` came first.
    async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let ended = self.job_ended.notified();
            if lock(&self.running).is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return lock(&self.running).is_empty();
            }
        }
    }

    async fn record_cancel(&self, actor: &Actor, job: &Job) -> Result<()> {
        self.audit
            .record(
                Event::new(actor, "job.cancel", &job.app)
                    .job(job.id)
                    .detail(serde_json::json!({"state": job.state})),
            )
            .await?;
        Ok(())
    }
}

/// The actor a job acts for in its own audit rows: who asked for it.
pub(super) fn job_actor(login: &str, role: &str) -> Actor {
    Actor {
        login: login.to_string(),
        role: crate::actor::Role::parse(role).unwrap_or(crate::actor::Role::Viewer),
        via: crate::actor::Via::System,
        remote: String::new(),
    }
}

fn instance_tag(data_dir: &Path) -> String {
    let dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..6])
}
