//! The in-process scheduler (DESIGN.md "Sweeps"): every sweep with a
//! `schedule` runs at its minutes, in its `timezone`, as `system:scheduler`.
//!
//! - It remembers the last minute it handled per sweep (`sweep_schedule`),
//!   so a minute is handled once, across restarts too.
//! - A minute found more than [`LATE`] in the past was missed (opsdeck was
//!   down): it runs once at start when the sweep's `catch_up` is on (the
//!   default), however many minutes were missed; otherwise it is skipped.
//! - A sweep whose previous run is still queued or running is not started
//!   again: the minute is skipped, and the audit log says so.
//!
//! Time is a [`Clock`], so tests move it instead of waiting for it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::audit::{Event, Outcome};
use crate::auth::Actor;
use crate::config::{App, Sweep, parse_schedule, parse_time_zone};
use crate::ops::{params, sweeps};
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

/// What a tick did about one sweep's minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub app: String,
    pub sweep: String,
    /// The schedule's minute.
    pub minute: DateTime<Utc>,
    /// The job started, or why none was.
    pub job: std::result::Result<i64, String>,
}

/// When the sweep runs next after `now`, if it has a schedule.
pub fn next_run(sweep: &Sweep, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (cron, tz) = schedule(sweep)?;
    cron.find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn schedule(sweep: &Sweep) -> Option<(croner::Cron, Tz)> {
    let cron = parse_schedule(sweep.schedule.as_deref()?).ok()?;
    let tz = match &sweep.timezone {
        Some(zone) => parse_time_zone(zone).ok()?,
        None => Tz::UTC,
    };
    Some((cron, tz))
}

/// The scheduled sweeps of `ctx`'s config.
pub struct Scheduler {
    ctx: Context,
}

impl Scheduler {
    pub fn new(ctx: Context) -> Scheduler {
        Scheduler { ctx }
    }

    fn scheduled(&self) -> impl Iterator<Item = (&App, &Sweep)> {
        self.ctx
            .config
            .apps
            .iter()
            .flat_map(|app| app.sweeps.iter().map(move |s| (app, s)))
            .filter(|(_, s)| s.schedule.is_some())
    }

    /// Ticks at every scheduled minute until the process ends.
    pub async fn run(self, clock: &dyn Clock) {
        loop {
            let now = clock.now();
            if let Err(e) = self.tick(now).await {
                tracing::error!(error = %e, "the scheduler could not check its sweeps");
            }
            let Some(next) = self.scheduled().filter_map(|(_, s)| next_run(s, now)).min() else {
                return;
            };
            clock.sleep_until(next).await;
        }
    }

    /// Starts every sweep whose minute came since the last tick (at most
    /// once each), as it is at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Fired>> {
        let mut fired = Vec::new();
        for (app, sweep) in self.scheduled() {
            if let Some(f) = self.check(app, sweep, now).await? {
                fired.push(f);
            }
        }
        Ok(fired)
    }

    async fn check(&self, app: &App, sweep: &Sweep, now: DateTime<Utc>) -> Result<Option<Fired>> {
        let Some((cron, tz)) = schedule(sweep) else {
            return Ok(None);
        };
        let db = &self.ctx.db;
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_fire FROM sweep_schedule WHERE app = ? AND sweep = ?")
                .bind(&app.name)
                .bind(&sweep.name)
                .fetch_optional(db)
                .await?;
        // First sight of this schedule: nothing was missed before it existed.
        let Some(last) = last.and_then(DateTime::from_timestamp_millis) else {
            remember(db, app, sweep, now).await?;
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
        remember(db, app, sweep, minute).await?;
        let missed = now - minute > LATE;
        let job = if missed && !sweep.catch_up {
            Err("missed while opsdeck was down; catch_up is off".to_string())
        } else if crate::steps::sweep::record::active(db, &app.name, &sweep.name).await? {
            Err("its previous run is still queued or running".to_string())
        } else {
            let actor = Actor::system(ACTOR);
            // Nobody is there to give values: the defaults (the config
            // makes sure each required parameter has one).
            let of = Of::Sweep(sweep.name.clone());
            let at = Some(minute.timestamp_millis());
            let started = match params::values(&self.ctx, app, &of, &BTreeMap::new()).await {
                Ok(values) => {
                    sweeps::submit(&self.ctx, &actor, app, sweep, false, at, &values).await
                }
                Err(e) => Err(e),
            };
            started.map_err(|e| e.public_message())
        };
        if let Err(why) = &job {
            tracing::warn!(app = %app.name, sweep = %sweep.name, %minute, why, "scheduled sweep not started");
            let event = Event::new(&Actor::system(ACTOR), "sweep.skip", &app.name)
                .outcome(Outcome::Failed)
                .detail(serde_json::json!({
                    "sweep": sweep.name, "minute": minute.to_rfc3339(), "why": why,
                }));
            self.ctx.audit.record(event).await?;
        } else if missed {
            tracing::info!(app = %app.name, sweep = %sweep.name, %minute, "running a sweep missed while opsdeck was down");
        }
        Ok(Some(Fired {
            app: app.name.clone(),
            sweep: sweep.name.clone(),
            minute,
            job,
        }))
    }
}

async fn remember(
    db: &sqlx::SqlitePool,
    app: &App,
    sweep: &Sweep,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sweep_schedule (app, sweep, last_fire) VALUES (?, ?, ?)
         ON CONFLICT (app, sweep) DO UPDATE SET last_fire = excluded.last_fire",
    )
    .bind(&app.name)
    .bind(&sweep.name)
    .bind(at.timestamp_millis())
    .execute(db)
    .await?;
    Ok(())
}
