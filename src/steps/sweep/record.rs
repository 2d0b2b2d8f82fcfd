//! `sweep_runs`: what each sweep job listed and did, for the page and for
//! the real run that follows a dry run.

use sqlx::SqlitePool;

use super::Preview;
use crate::Result;
use crate::steps::StepJob;

/// Rows are written by the request (which knows the schedule) and by the
/// job (which knows the lists), in either order.
pub async fn started(
    db: &SqlitePool,
    job: i64,
    app: &str,
    sweep: &str,
    dry_run: bool,
    scheduled_for: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sweep_runs (job_id, app, sweep, dry_run, scheduled_for) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job_id) DO UPDATE SET scheduled_for = excluded.scheduled_for",
    )
    .bind(job)
    .bind(app)
    .bind(sweep)
    .bind(dry_run)
    .bind(scheduled_for)
    .execute(db)
    .await?;
    Ok(())
}

/// What the job found; the row may not exist yet (a dry run starts at once).
pub async fn listed(
    job: &StepJob<'_>,
    sweep: &str,
    dry_run: bool,
    listed: &[String],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sweep_runs (job_id, app, sweep, dry_run, listed) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job_id) DO UPDATE SET listed = excluded.listed",
    )
    .bind(job.id)
    .bind(job.app)
    .bind(sweep)
    .bind(dry_run)
    .bind(json(listed))
    .execute(job.db)
    .await?;
    Ok(())
}

pub async fn done(db: &SqlitePool, job: i64, done: &[String], changed: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE sweep_runs SET done = ?, changed = ? WHERE job_id = ?")
        .bind(json(done))
        .bind(changed)
        .bind(job)
        .execute(db)
        .await?;
    Ok(())
}

fn json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn items(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The newest successful dry run of the sweep since its last real run
/// looked at the world: what the next real run must not go beyond.
pub async fn last_preview(db: &SqlitePool, app: &str, sweep: &str) -> Result<Option<Preview>> {
    let row: Option<(i64, Option<String>)> = sqlx::query_as(
        "SELECT r.job_id, r.listed FROM sweep_runs r JOIN jobs j ON j.id = r.job_id
         WHERE r.app = ? AND r.sweep = ? AND r.dry_run = 1 AND j.state = 'succeeded'
           AND r.job_id > COALESCE((SELECT max(job_id) FROM sweep_runs
                                     WHERE app = r.app AND sweep = r.sweep
                                       AND dry_run = 0 AND listed IS NOT NULL), 0)
         ORDER BY r.job_id DESC LIMIT 1",
    )
    .bind(app)
    .bind(sweep)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(job, listed)| Preview {
        job,
        items: items(listed),
    }))
}

/// A sweep's newest run, as the page and the API show it; `job` is its
/// job's id here, the job itself once the page or the API looked it up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastRun<J = i64> {
    pub job: J,
    pub dry_run: bool,
    /// What it listed (a dry run) or did (a run).
    pub items: Vec<String>,
    /// How the world differed from the dry run it followed.
    pub changed: Option<String>,
    /// The schedule's minute (Unix ms) when the scheduler started it.
    pub scheduled_for: Option<i64>,
}

pub async fn last_run(db: &SqlitePool, app: &str, sweep: &str) -> Result<Option<LastRun>> {
    type Row = (
        i64,
        bool,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT job_id, dry_run, listed, done, changed, scheduled_for FROM sweep_runs
         WHERE app = ? AND sweep = ? ORDER BY job_id DESC LIMIT 1",
    )
    .bind(app)
    .bind(sweep)
    .fetch_optional(db)
    .await?;
    Ok(row.map(
        |(job, dry_run, listed, done, changed, scheduled_for)| LastRun {
            job,
            dry_run,
            items: items(if dry_run { listed } else { done }),
            changed,
            scheduled_for,
        },
    ))
}

/// Whether a real run of the sweep is queued or running.
pub async fn active(db: &SqlitePool, app: &str, sweep: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sweep_runs r JOIN jobs j ON j.id = r.job_id
         WHERE r.app = ? AND r.sweep = ? AND r.dry_run = 0 AND j.state IN ('queued', 'running')",
    )
    .bind(app)
    .bind(sweep)
    .fetch_one(db)
    .await?;
    Ok(n > 0)
}
