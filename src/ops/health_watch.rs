//! Health watch (README "Health watch"): an app with a health check's
//! `interval` is probed in the background — every check, each with its own
//! timeout — and each probe kept as a sample, for its uptime bar. A change
//! from the previous sample (also one from before a restart) is a
//! transition: `health.down` or `health.up`, sent once each; an app whose
//! first sample ever is down is down too.

use std::time::Duration;

use sqlx::SqlitePool;

use crate::audit::{Event, Outcome};
use crate::auth::Actor;
use crate::config::App;
use crate::host::probe;
use crate::{Context, Result, notify};

/// How long samples are kept: the longest bar (7 days) and a day more.
const KEEP: Duration = Duration::from_secs(8 * 24 * 3600);

/// Starts one watch per app that asks for one.
pub fn start(ctx: &Context) {
    for app in &ctx.config.apps {
        if let Some(every) = interval(app) {
            let ctx = ctx.clone();
            let name = app.name.clone();
            tokio::spawn(async move { watch(ctx, name, every).await });
        }
    }
}

/// The app's watch interval: the shortest of its checks' `interval`s.
pub fn interval(app: &App) -> Option<Duration> {
    app.health.iter().filter_map(|h| h.interval).min()
}

async fn watch(ctx: Context, app: String, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = probe_once(&ctx, &app).await {
            tracing::error!(app, error = %e, "cannot record the app's health");
        }
    }
}

/// Asks every check of `app` once, records the sample and, if it changed,
/// the transition.
async fn probe_once(ctx: &Context, name: &str) -> Result<()> {
    let app = ctx.app(name)?;
    let answers = futures_util::future::join_all(app.health.iter().map(|health| async move {
        probe::check(health)
            .await
            .map_err(|e| format!("{}: {}", health.name(), e.public_message()))
    }))
    .await;
    let failed = answers.into_iter().find_map(|a| a.err());
    let up = failed.is_none();
    let before = last(&ctx.db, name).await?;
    record(&ctx.db, name, up, failed.as_deref()).await?;
    let changed = match before {
        Some(was_up) => was_up != up,
        None => !up,
    };
    if changed {
        transition(ctx, name, up, failed.as_deref()).await?;
    }
    Ok(())
}

/// Audits the transition and writes its notification.
async fn transition(ctx: &Context, app: &str, up: bool, why: Option<&str>) -> Result<()> {
    let (kind, outcome, text) = if up {
        ("health.up", Outcome::Ok, format!("{app} is healthy again"))
    } else {
        (
            "health.down",
            Outcome::Failed,
            format!("{app} is down: {}", why.unwrap_or_default()),
        )
    };
    let detail = serde_json::json!({"up": up, "why": why});
    ctx.audit
        .record(
            Event::new(&Actor::system("system:health"), kind, app)
                .outcome(outcome)
                .detail(detail.clone()),
        )
        .await?;
    let event = notify::Event {
        kind,
        app,
        job: None,
        text,
        detail,
    };
    notify::emit(&ctx.db, &ctx.config, event).await;
    Ok(())
}

async fn last(db: &SqlitePool, app: &str) -> Result<Option<bool>> {
    let up: Option<(bool,)> =
        sqlx::query_as("SELECT up FROM health_samples WHERE app = ? ORDER BY at DESC LIMIT 1")
            .bind(app)
            .fetch_optional(db)
            .await?;
    Ok(up.map(|(up,)| up))
}

/// Adds a sample and drops those older than [`KEEP`].
async fn record(db: &SqlitePool, app: &str, up: bool, why: Option<&str>) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let keep = i64::try_from(KEEP.as_millis()).unwrap_or(i64::MAX);
    sqlx::query("INSERT INTO health_samples (app, at, up, detail) VALUES (?, ?, ?, ?)")
        .bind(app)
        .bind(now)
        .bind(up)
        .bind(why)
        .execute(db)
        .await?;
    sqlx::query("DELETE FROM health_samples WHERE app = ? AND at < ?")
        .bind(app)
        .bind(now - keep)
        .execute(db)
        .await?;
    Ok(())
}

/// One slot of an uptime bar: how many probes in it were up, how many down.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slot {
    /// Unix milliseconds.
    pub start: i64,
    pub end: i64,
    pub up: i64,
    pub down: i64,
}

/// The last `span` before `now` cut into `slots` slots, oldest first.
pub async fn uptime(
    db: &SqlitePool,
    app: &str,
    span: Duration,
    slots: usize,
    now: i64,
) -> Result<Vec<Slot>> {
    let span = i64::try_from(span.as_millis()).unwrap_or(i64::MAX / 2);
    let count = i64::try_from(slots.max(1)).unwrap_or(1);
    let width = (span / count).max(1);
    let start = now - width * count;
    let mut bar: Vec<Slot> = (0..count)
        .map(|i| Slot {
            start: start + i * width,
            end: start + (i + 1) * width,
            ..Slot::default()
        })
        .collect();
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT (at - ?) / ?, SUM(up), COUNT(*) FROM health_samples
         WHERE app = ? AND at > ? AND at <= ? GROUP BY 1",
    )
    .bind(start)
    .bind(width)
    .bind(app)
    .bind(start)
    .bind(now)
    .fetch_all(db)
    .await?;
    for (i, up, all) in rows {
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| bar.get_mut(i)) {
            slot.up = up;
            slot.down = all - up;
        }
    }
    Ok(bar)
}
