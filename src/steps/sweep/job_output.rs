//! `job-output`: deletes the stored output of the app's jobs that ended
//! more than `days` ago. The jobs themselves (state, steps, who, when) stay,
//! and audit rows are never touched (their triggers refuse it anyway).

use sqlx::SqlitePool;

use super::{Found, Item};
use crate::Result;
use crate::config::Sweep;
use crate::steps::StepJob;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub(super) async fn find(job: &StepJob<'_>, sweep: &Sweep) -> Result<Found> {
    let days = i64::from(sweep.days.unwrap_or(0));
    let before = chrono::Utc::now().timestamp_millis() - days * DAY_MS;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT j.id FROM jobs j
         WHERE j.app = ? AND j.finished_at < ?
           AND EXISTS (SELECT 1 FROM job_output o WHERE o.job_id = j.id)
         ORDER BY j.id",
    )
    .bind(job.app)
    .bind(before)
    .fetch_all(job.db)
    .await?;
    Ok(Found {
        items: ids
            .into_iter()
            .map(|job| Item::PruneOutput { job })
            .collect(),
        kept: vec![format!(
            "the output of jobs that ended in the last {days} days"
        )],
    })
}

pub(super) async fn prune(db: &SqlitePool, job: i64) -> Result<String> {
    let gone = sqlx::query("DELETE FROM job_output WHERE job_id = ?")
        .bind(job)
        .execute(db)
        .await?
        .rows_affected();
    Ok(format!("deleted the output of job {job} ({gone} chunks)"))
}
