//! The in-process scheduler (DESIGN.md "Sweeps"): every sweep and every
//! secret with a `schedule` runs (is rotated) at its minutes, in its
//! `timezone`, as `system:scheduler`.
//!
//! - It remembers the last minute it handled per sweep (`sweep_schedule`)
//!   and per secret (`secret_schedule`), so a minute is handled once,
//!   across restarts too.
//! - A minute found more than [`LATE`] in the past was missed (opsdeck was
//!   down): it runs once at start when `catch_up` is on (the default),
//!   however many minutes were missed; otherwise it is skipped.
//! - A sweep or rotation whose previous run is still queued or running is
//!   not started again: the minute is skipped, and the audit log says so.
//!
//! Time is a [`Clock`], so tests move it instead of waiting for it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::audit::{Event, Outcome};
use crate::auth::Actor;
use crate::config::{App, Secret, Sweep, parse_schedule, parse_time_zone};
use crate::ops::{params, secrets, sweeps};
use crate::steps::params::Of;
use crate::{Context, Result};

/// A minute handled later than this after it came was missed, not due.
const LATE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

pub const ACTOR: &str = "system:scheduler";

/// Where the scheduler gets the time from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Returns at `at` (or right away when it has passed).
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// What a tick did about one scheduled minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub app: String,
    /// `sweep nightly`, `rotation of SESSION_SECRET`.
    pub what: String,
    /// The schedule's minute.
    pub minute: DateTime<Utc>,
    /// The job started, or why none was.
    pub job: std::result::Result<i64, String>,
}

/// What a schedule needs of a sweep or a secret: its `schedule` (5-field
/// cron, see [`parse_schedule`]), `timezone` (UTC when none) and
/// `catch_up` (run once at start when a minute was missed while opsdeck
/// was down).
pub trait Timed {
    fn timing(&self) -> (Option<&str>, Option<&str>, bool);
}

impl Timed for Sweep {
    fn timing(&self) -> (Option<&str>, Option<&str>, bool) {
        let (schedule, zone) = (self.schedule.as_deref(), self.timezone.as_deref());
        (schedule, zone, self.catch_up)
    }
}

impl Timed for Secret {
    fn timing(&self) -> (Option<&str>, Option<&str>, bool) {
        let (schedule, zone) = (self.schedule.as_deref(), self.timezone.as_deref());
        (schedule, zone, self.catch_up)
    }
}

/// When it runs next after `now`, if it has a schedule.
pub fn next_run(timed: &dyn Timed, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (cron, tz) = schedule(timed)?;
    cron.find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn schedule(timed: &dyn Timed) -> Option<(croner::Cron, Tz)> {
    let (schedule, zone, _) = timed.timing();
    let cron = parse_schedule(schedule?).ok()?;
    let tz = match zone {
        Some(zone) => parse_time_zone(zone).ok()?,
        None => Tz::UTC,
    };
    Some((cron, tz))
}

/// One scheduled thing of an app.
#[derive(Clone, Copy)]
enum Task<'a> {
    Sweep(&'a Sweep),
    Rotation(&'a Secret),
}

impl Task<'_> {
    fn timed(&self) -> &dyn Timed {
        match self {
            Task::Sweep(sweep) => *sweep,
            Task::Rotation(secret) => *secret,
        }
    }

    fn name(&self) -> &str {
        match self {
            Task::Sweep(sweep) => &sweep.name,
            Task::Rotation(secret) => &secret.name,
        }
    }

    fn what(&self) -> String {
        match self {
            Task::Sweep(sweep) => format!("sweep {}", sweep.name),
            Task::Rotation(secret) => format!("rotation of {}", secret.name),
        }
    }

    /// The table that remembers its last minute, and the column naming it
    /// there (written into the SQL, never from input).
    fn memory(&self) -> (&'static str, &'static str) {
        match self {
            Task::Sweep(_) => ("sweep_schedule", "sweep"),
            Task::Rotation(_) => ("secret_schedule", "secret"),
        }
    }

    /// The audit action of a minute skipped, and its detail's key.
    fn skipped(&self) -> (&'static str, &'static str) {
        match self {
            Task::Sweep(_) => ("sweep.skip", "sweep"),
            Task::Rotation(_) => ("rotate.skip", "secret"),
        }
    }

    /// Whether its previous run is still queued or running.
    async fn active(&self, ctx: &Context, app: &App) -> Result<bool> {
        match self {
            Task::Sweep(sweep) => {
                crate::steps::sweep::record::active(&ctx.db, &app.name, &sweep.name).await
            }
            Task::Rotation(secret) => secrets::active(ctx, app, secret).await,
        }
    }

    /// Starts its job as the scheduler, for `minute`.
    async fn submit(&self, ctx: &Context, app: &App, minute: DateTime<Utc>) -> Result<i64> {
        let actor = Actor::system(ACTOR);
        match self {
            Task::Sweep(sweep) => {
                // Nobody is there to give values: the defaults (the config
                // makes sure each required parameter has one).
                let of = Of::Sweep(sweep.name.clone());
                let values = params::values(ctx, app, &of, &BTreeMap::new()).await?;
                let at = Some(minute.timestamp_millis());
                sweeps::submit(ctx, &actor, app, sweep, false, at, &values).await
            }
            Task::Rotation(secret) => {
                let request = secrets::request(ctx, app, secret)?;
                ctx.jobs.submit(&actor, request).await
            }
        }
    }
}

/// The scheduled sweeps and secrets of `ctx`'s config.
pub struct Scheduler {
    ctx: Context,
}

impl Scheduler {
    pub fn new(ctx: Context) -> Scheduler {
        Scheduler { ctx }
    }

    fn scheduled(&self) -> impl Iterator<Item = (&App, Task<'_>)> {
        self.ctx
            .config
            .apps
            .iter()
            .flat_map(|app| {
                let sweeps = app.sweeps.iter().map(Task::Sweep);
                let rotations = app.secrets.iter().map(Task::Rotation);
                sweeps.chain(rotations).map(move |task| (app, task))
            })
            .filter(|(_, task)| task.timed().timing().0.is_some())
    }

    /// Ticks at every scheduled minute until the process ends.
    pub async fn run(self, clock: &dyn Clock) {
        loop {
            let now = clock.now();
            if let Err(e) = self.tick(now).await {
                tracing::error!(error = %e, "the scheduler could not check its schedules");
            }
            let Some(next) = self
                .scheduled()
                .filter_map(|(_, task)| next_run(task.timed(), now))
                .min()
            else {
                return;
            };
            clock.sleep_until(next).await;
        }
    }

    /// Starts every sweep and rotation whose minute came since the last
    /// tick (at most once each), as it is at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Fired>> {
        let mut fired = Vec::new();
        for (app, task) in self.scheduled() {
            if let Some(f) = self.check(app, task, now).await? {
                fired.push(f);
            }
        }
        Ok(fired)
    }

    async fn check(&self, app: &App, task: Task<'_>, now: DateTime<Utc>) -> Result<Option<Fired>> {
        let Some((cron, tz)) = schedule(task.timed()) else {
            return Ok(None);
        };
        let ctx = &self.ctx;
        let (table, column) = task.memory();
        let last: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT last_fire FROM {table} WHERE app = ? AND {column} = ?"
        ))
        .bind(&app.name)
        .bind(task.name())
        .fetch_optional(&ctx.db)
        .await?;
        // First sight of this schedule: nothing was missed before it existed.
        let Some(last) = last.and_then(DateTime::from_timestamp_millis) else {
            remember(&ctx.db, app, task, now).await?;
            return Ok(None);
        };
        let Some(minute) = cron
            .find_previous_occurrence(&now.with_timezone(&tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|minute| *minute > last)
        else {
            return Ok(None);
        };
        // Remembered first: whatever happens next, this minute is handled once.
        remember(&ctx.db, app, task, minute).await?;
        let missed = now - minute > LATE;
        let job = if missed && !task.timed().timing().2 {
            Err("missed while opsdeck was down; catch_up is off".to_string())
        } else if task.active(ctx, app).await? {
            Err("its previous run is still queued or running".to_string())
        } else {
            task.submit(ctx, app, minute)
                .await
                .map_err(|e| e.public_message())
        };
        let what = task.what();
        if let Err(why) = &job {
            tracing::warn!(app = %app.name, %what, %minute, why, "scheduled job not started");
            let (action, key) = task.skipped();
            let mut detail = serde_json::json!({ "minute": minute.to_rfc3339(), "why": why });
            detail[key] = task.name().into();
            let event = Event::new(&Actor::system(ACTOR), action, &app.name)
                .outcome(Outcome::Failed)
                .detail(detail);
            ctx.audit.record(event).await?;
        } else if missed {
            tracing::info!(app = %app.name, %what, %minute, "running a scheduled job missed while opsdeck was down");
        }
        Ok(Some(Fired {
            app: app.name.clone(),
            what,
            minute,
            job,
        }))
    }
}

async fn remember(
    db: &sqlx::SqlitePool,
    app: &App,
    task: Task<'_>,
    at: DateTime<Utc>,
) -> Result<()> {
    let (table, column) = task.memory();
    sqlx::query(&format!(
        "INSERT INTO {table} (app, {column}, last_fire) VALUES (?, ?, ?)
         ON CONFLICT (app, {column}) DO UPDATE SET last_fire = excluded.last_fire"
    ))
    .bind(&app.name)
    .bind(task.name())
    .bind(at.timestamp_millis())
    .execute(db)
    .await?;
    Ok(())
}
