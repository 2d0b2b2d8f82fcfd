//! The engine's SQL: jobs, their steps and their output chunks.

use sqlx::SqlitePool;

use super::plan::{Plan, Step};
use super::{Approval, Job, State, StepRecord};
use crate::{Error, Result};

pub fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const JOB_COLUMNS: &str = "id, app, kind, target, actor, role, state, summary, created_at, started_at, finished_at, cancelled_by, approval_role, approval_expires_at, decided_by, decided_at, decision_reason, emergency";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    app: String,
    kind: String,
    target: String,
    actor: String,
    role: String,
    state: String,
    summary: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    cancelled_by: Option<String>,
    approval_role: Option<String>,
    approval_expires_at: Option<i64>,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    decision_reason: Option<String>,
    emergency: Option<String>,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Job {
        Job {
            id: r.id,
            app: r.app,
            kind: r.kind,
            target: r.target,
            actor: r.actor,
            role: r.role,
            // Only the engine writes states, all of them parseable.
            state: State::parse(&r.state).unwrap_or(State::Interrupted),
            summary: r.summary,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            cancelled_by: r.cancelled_by,
            approval: r.approval_role.map(|role| Approval {
                role,
                expires_at: r.approval_expires_at.unwrap_or_default(),
                decided_by: r.decided_by,
                decided_at: r.decided_at,
                reason: r.decision_reason,
            }),
            emergency: r.emergency,
            steps: Vec::new(),
        }
    }
}

/// A job as the runner needs it.
pub struct Runnable {
    pub id: i64,
    pub app: String,
    pub kind: String,
    pub target: String,
    pub actor: String,
    pub role: String,
    pub plan: Plan,
}

pub struct NewJob<'a> {
    pub app: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    pub mutating: bool,
    pub plan: &'a Plan,
    /// `queued`, or `awaiting_approval` with `approval`.
    pub state: State,
    /// The role that approves it and when the request expires.
    pub approval: Option<(&'a str, i64)>,
    pub emergency: Option<&'a str>,
}

/// Inserts a queued (or awaiting) job with its steps pending.
pub async fn insert(db: &SqlitePool, job: NewJob<'_>) -> Result<i64> {
    let plan = serde_json::to_string(job.plan).map_err(anyhow::Error::from)?;
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO jobs (app, kind, target, actor, role, state, mutating, plan, created_at,
                           approval_role, approval_expires_at, emergency)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(job.app)
    .bind(job.kind)
    .bind(job.target)
    .bind(job.actor)
    .bind(job.role)
    .bind(job.state.as_str())
    .bind(job.mutating)
    .bind(plan)
    .bind(now())
    .bind(job.approval.map(|(role, _)| role))
    .bind(job.approval.map(|(_, expires)| expires))
    .bind(job.emergency)
    .fetch_one(&mut *tx)
    .await?;
    insert_steps(&mut tx, id, 0, &job.plan.steps).await?;
    tx.commit().await?;
    Ok(id)
}

/// Adds the recovery's step rows after the plan's, and stores the plan as
/// the recovery runs it (its values pinned from what the job replaced).
pub async fn add_recovery(db: &SqlitePool, job: i64, plan: &Plan) -> Result<()> {
    let stored = serde_json::to_string(plan).map_err(anyhow::Error::from)?;
    let mut tx = db.begin().await?;
    insert_steps(&mut tx, job, plan.steps.len(), &plan.recovery).await?;
    sqlx::query("UPDATE jobs SET plan = ? WHERE id = ?")
        .bind(stored)
        .bind(job)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_steps(
    tx: &mut sqlx::SqliteConnection,
    job: i64,
    first: usize,
    steps: &[Step],
) -> Result<()> {
    for (i, step) in steps.iter().enumerate() {
        sqlx::query("INSERT INTO job_steps (job_id, idx, title, command) VALUES (?, ?, ?, ?)")
            .bind(job)
            .bind(i64::try_from(first + i).unwrap_or(i64::MAX))
            .bind(&step.title)
            .bind(step.work.command_line())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Who queued the same request, and when, if it is still waiting (in the
/// queue or for its approval).
pub async fn queued_duplicate(
    db: &SqlitePool,
    app: &str,
    kind: &str,
    target: &str,
) -> Result<Option<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT actor, created_at FROM jobs WHERE app = ? AND kind = ? AND target = ? AND state IN ('queued', 'awaiting_approval') LIMIT 1",
    )
    .bind(app)
    .bind(kind)
    .bind(target)
    .fetch_optional(db)
    .await?)
}

/// The oldest queued mutating job of `app`.
pub async fn next_queued(db: &SqlitePool, app: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM jobs WHERE app = ? AND state = 'queued' AND mutating = 1 ORDER BY id LIMIT 1",
    )
    .bind(app)
    .fetch_optional(db)
    .await?)
}

/// Every queued job: `(id, app, mutating)`, oldest first.
pub async fn all_queued(db: &SqlitePool) -> Result<Vec<(i64, String, bool)>> {
    Ok(
        sqlx::query_as("SELECT id, app, mutating FROM jobs WHERE state = 'queued' ORDER BY id")
            .fetch_all(db)
            .await?,
    )
}

/// Moves a queued job to `running` and returns what the runner needs.
pub async fn start(db: &SqlitePool, id: i64) -> Result<Runnable> {
    let (app, kind, target, actor, role, plan): (String, String, String, String, String, String) =
        sqlx::query_as(
            "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'
         RETURNING app, kind, target, actor, role, plan",
        )
        .bind(now())
        .bind(id)
        .fetch_one(db)
        .await?;
    let plan = serde_json::from_str(&plan)
        .map_err(|e| anyhow::anyhow!("job {id} has a plan this opsdeck cannot read: {e}"))?;
    Ok(Runnable {
        id,
        app,
        kind,
        target,
        actor,
        role,
        plan,
    })
}

pub async fn step_started(db: &SqlitePool, job: i64, idx: usize) -> Result<()> {
    sqlx::query(
        "UPDATE job_steps SET state = 'running', started_at = ? WHERE job_id = ? AND idx = ?",
    )
    .bind(now())
    .bind(job)
    .bind(i64::try_from(idx).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn step_ended(
    db: &SqlitePool,
    job: i64,
    idx: usize,
    state: &str,
    exit_code: Option<i32>,
) -> Result<()> {
    sqlx::query("UPDATE job_steps SET state = ?, finished_at = ?, exit_code = ? WHERE job_id = ? AND idx = ?")
        .bind(state)
        .bind(now())
        .bind(exit_code)
        .bind(job)
        .bind(i64::try_from(idx).unwrap_or(i64::MAX))
        .execute(db)
        .await?;
    Ok(())
}

/// Ends a job: its state, its summary, and `skipped` for steps never run.
pub async fn finish(db: &SqlitePool, id: i64, state: State, summary: &str) -> Result<()> {
    finish_on(&mut *db.acquire().await?, id, state, summary).await
}

/// `finish` on a connection, for a caller whose transaction also holds
/// the job's `job.end` audit row.
pub async fn finish_on(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
    state: State,
    summary: &str,
) -> Result<()> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    sqlx::query("UPDATE jobs SET state = ?, summary = ?, finished_at = ? WHERE id = ?")
        .bind(state.as_str())
        .bind(summary)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    skip_unrun_steps(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Cancels a job that has not started; false if it is no longer waiting.
pub async fn cancel_queued(db: &SqlitePool, id: i64, by: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', cancelled_by = ?, finished_at = ?,
         summary = 'cancelled by ' || ? || ' before it started'
         WHERE id = ? AND state IN ('queued', 'awaiting_approval')",
    )
    .bind(by)
    .bind(now())
    .bind(by)
    .bind(id)
    .execute(db)
    .await?;
    if done.rows_affected() == 1 {
        skip_unrun_steps(db, id).await?;
    }
    Ok(done.rows_affected() == 1)
}

pub async fn set_cancelled_by(db: &SqlitePool, id: i64, by: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET cancelled_by = ? WHERE id = ?")
        .bind(by)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A job a previous run left `running`, now `interrupted`.
#[derive(sqlx::FromRow)]
pub struct Interrupted {
    pub id: i64,
    pub app: String,
    pub kind: String,
    pub target: String,
    pub actor: String,
    pub role: String,
    pub summary: String,
}

/// Marks every job a previous run left `running` as `interrupted`;
/// returns each one's row.
pub async fn interrupt_running(db: &SqlitePool) -> Result<Vec<Interrupted>> {
    let mut tx = db.begin().await?;
    let jobs: Vec<Interrupted> = sqlx::query_as(
        "UPDATE jobs SET state = 'interrupted', finished_at = ?,
         summary = 'opsdeck stopped while this job was running; it was not retried'
         WHERE state = 'running' RETURNING id, app, kind, target, actor, role, summary",
    )
    .bind(now())
    .fetch_all(&mut *tx)
    .await?;
    for Interrupted { id, .. } in &jobs {
        sqlx::query(
            "UPDATE job_steps SET state = CASE state WHEN 'running' THEN 'interrupted' ELSE 'skipped' END,
             finished_at = CASE state WHEN 'running' THEN ? ELSE finished_at END
             WHERE job_id = ? AND state IN ('running', 'pending')",
        )
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(jobs)
}

pub async fn job(db: &SqlitePool, id: i64) -> Result<Option<Job>> {
    let row: Option<JobRow> =
        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut job = Job::from(row);
    job.steps = sqlx::query_as::<_, StepRecord>(
        "SELECT title, command, state, started_at, finished_at, exit_code FROM job_steps WHERE job_id = ? ORDER BY idx",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(Some(job))
}

pub async fn state(db: &SqlitePool, id: i64) -> Result<Option<State>> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(state.as_deref().and_then(State::parse))
}

/// Newest first, of one app or of all.
pub async fn recent(db: &SqlitePool, app: Option<&str>, limit: i64) -> Result<Vec<Job>> {
    let rows: Vec<JobRow> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE ?1 IS NULL OR app = ?1 ORDER BY id DESC LIMIT ?2"
    ))
    .bind(app)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Job::from).collect())
}

/// Requests awaiting approval, of one app or of all, oldest first.
pub async fn awaiting(db: &SqlitePool, app: Option<&str>) -> Result<Vec<Job>> {
    let rows: Vec<JobRow> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'awaiting_approval' AND (?1 IS NULL OR app = ?1) ORDER BY id"
    ))
    .bind(app)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Job::from).collect())
}

/// Records the decision on an awaiting job: `queued` when approved, ended
/// (`denied`) with `summary` when not; false if it was no longer awaiting.
pub async fn decide(
    db: &SqlitePool,
    id: i64,
    to: State,
    by: &str,
    reason: &str,
    summary: Option<&str>,
) -> Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE jobs SET state = ?, decided_by = ?, decided_at = ?, decision_reason = ?,
         summary = ?, finished_at = CASE WHEN ? IS NULL THEN NULL ELSE ? END
         WHERE id = ? AND state = 'awaiting_approval'",
    )
    .bind(to.as_str())
    .bind(by)
    .bind(now())
    .bind(reason)
    .bind(summary)
    .bind(summary)
    .bind(now())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if summary.is_some() {
        skip_unrun_steps(&mut *tx, id).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// The requests whose approval did not come by `at`: `(id, approval
/// role)` of each, oldest first (`expire_on` ends each).
pub async fn due_to_expire(db: &SqlitePool, at: i64) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, approval_role FROM jobs
         WHERE state = 'awaiting_approval' AND approval_expires_at <= ? ORDER BY id",
    )
    .bind(at)
    .fetch_all(db)
    .await?)
}

/// Ends request `id` `expired`, on a connection whose transaction also
/// holds its `approval.expire` audit row; a conflict (nothing changed,
/// and the transaction undone) if it no longer awaits approval.
pub async fn expire_on(conn: &mut sqlx::SqliteConnection, id: i64) -> Result<()> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let done = sqlx::query(
        "UPDATE jobs SET state = 'expired', finished_at = ?,
         summary = 'expired: nobody with the ' || approval_role || ' role approved it in time; it did not run'
         WHERE id = ? AND state = 'awaiting_approval'",
    )
    .bind(now())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "job {id} is no longer awaiting approval"
        )));
    }
    skip_unrun_steps(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the steps of ended job `id` that never ran `skipped` (a job that
/// never started: all of them).
async fn skip_unrun_steps<'c>(
    db: impl sqlx::Executor<'c, Database = sqlx::Sqlite>,
    id: i64,
) -> Result<()> {
    sqlx::query("UPDATE job_steps SET state = 'skipped' WHERE job_id = ? AND state = 'pending'")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Whether job `id` changes its app (waits for the app's other jobs).
pub async fn mutating(db: &SqlitePool, id: i64) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT mutating FROM jobs WHERE id = ?")
        .bind(id)
        .fetch_one(db)
        .await?)
}

/// Every job awaiting approval.
pub async fn all_awaiting(db: &SqlitePool) -> Result<Vec<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM jobs WHERE state = 'awaiting_approval'")
            .fetch_all(db)
            .await?,
    )
}

/// When the next awaiting request expires, if any does.
pub async fn next_expiry(db: &SqlitePool) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(approval_expires_at) FROM jobs WHERE state = 'awaiting_approval'",
    )
    .fetch_one(db)
    .await?)
}

/// The app's running and queued mutating jobs, oldest first.
pub async fn active(db: &SqlitePool, app: &str) -> Result<Vec<Job>> {
    let rows: Vec<JobRow> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE app = ? AND mutating = 1 AND state IN ('running', 'queued') ORDER BY id"
    ))
    .bind(app)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Job::from).collect())
}

pub async fn insert_chunk(
    db: &SqlitePool,
    job: i64,
    first: u64,
    last: u64,
    // Owned: sqlx keeps the bound value, and would copy a borrowed one.
    data: Vec<u8>,
    stderr: Option<String>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO job_output (job_id, first_line, last_line, data, stderr) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(job)
    .bind(i64::try_from(first).unwrap_or(i64::MAX))
    .bind(i64::try_from(last).unwrap_or(i64::MAX))
    .bind(data)
    .bind(stderr)
        .execute(db)
        .await?;
    Ok(())
}

/// Up to `limit` stored chunks holding lines after `after`, up to chunks
/// starting at `until`: `(first_line, data, stderr)`.
pub async fn chunks(
    db: &SqlitePool,
    job: i64,
    after: u64,
    until: u64,
    limit: i64,
) -> Result<Vec<(i64, Vec<u8>, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT first_line, data, stderr FROM job_output WHERE job_id = ? AND last_line > ? AND first_line <= ?
         ORDER BY first_line LIMIT ?",
    )
    .bind(job)
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(i64::try_from(until).unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db)
    .await?)
}
