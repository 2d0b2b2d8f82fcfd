//! The insights' SQL: each query walks the `jobs_insights` index (or
//! `jobs_went_live`, migration 0110) over the window and answers with a
//! few rows — counts per day, the failed deploys — and numbers packed
//! into one text per app or kind (`group_concat`): a row per job would
//! cost more in the driver than the figures themselves. Job durations
//! and lead times, one number per job, come from per-day lists the
//! database keeps as jobs end (`job_durations`, `lead_times`, migration
//! 0160). 100,000 jobs in a 90-day range stay within the page's 50 ms
//! (`benches/insights.rs`).

use sqlx::SqlitePool;

use super::figures::{Cause, Facts, Failure, Ran, Restore};
use super::{KINDS, Window};
use crate::{Error, Result};

/// Names (apps, kinds) as the JSON array `json_each` reads.
fn json_list<T: serde::Serialize>(names: &[T]) -> Result<String> {
    Ok(serde_json::to_string(names).map_err(anyhow::Error::from)?)
}

/// Everything a window's figures need; the four queries run at once, each
/// on a connection of its own.
pub(super) async fn read(db: &SqlitePool, apps: &[String], window: &Window) -> Result<Facts> {
    let json = json_list(apps)?;
    let ((ran, failures), lead, durations) = tokio::try_join!(
        deploys_of(db, &json, window),
        lead_times(db, &json, window),
        durations(db, &json, window),
    )?;
    Ok(Facts {
        ran,
        failures,
        lead,
        durations,
    })
}

/// The deploys per day and the failed ones: what the deploys chart (and
/// a dashboard card's sparkline) draws.
pub(super) async fn deploys(
    db: &SqlitePool,
    apps: &[String],
    window: &Window,
) -> Result<(Vec<Ran>, Vec<Failure>)> {
    deploys_of(db, &json_list(apps)?, window).await
}

async fn deploys_of(
    db: &SqlitePool,
    apps: &str,
    window: &Window,
) -> Result<(Vec<Ran>, Vec<Failure>)> {
    tokio::try_join!(ran(db, apps, window), failures(db, apps, window))
}

/// Deploys that ran to an end, per app and day.
async fn ran(db: &SqlitePool, apps: &str, window: &Window) -> Result<Vec<Ran>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT app, (created_at - ?2) / 86400000, count(*) FROM jobs
         WHERE kind = 'deploy' AND app IN (SELECT value FROM json_each(?1))
           AND created_at >= ?2 AND created_at < ?3
           AND state IN ('succeeded', 'failed', 'timed_out', 'interrupted')
         GROUP BY 1, 2",
    )
    .bind(apps)
    .bind(window.since)
    .bind(window.until)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(app, day, count)| Ran { app, day, count })
        .collect())
}

/// Failed deploys — their job did not succeed, or a rollback that went
/// live replaced them — each with the first deploy or rollback of its app
/// that went live after it was requested.
async fn failures(db: &SqlitePool, apps: &str, window: &Window) -> Result<Vec<Failure>> {
    type Row = (
        String,
        i64,
        i64,
        Option<i64>,
        String,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "WITH failed (app, job, requested, ended, why) AS (
             SELECT app, id, created_at, finished_at, state FROM jobs
             WHERE kind = 'deploy' AND app IN (SELECT value FROM json_each(?1))
               AND created_at >= ?2 AND created_at < ?3
               AND state IN ('failed', 'timed_out', 'interrupted')
             UNION ALL
             -- From the rollbacks (few) to what they replaced.
             SELECT d.app, d.id, d.created_at, d.finished_at, 'rolled_back'
             FROM jobs bj
             JOIN releases b ON b.job_id = bj.id
             JOIN releases r ON r.id = b.replaces
             JOIN jobs d ON d.id = r.job_id
             WHERE bj.kind = 'rollback' AND bj.app IN (SELECT value FROM json_each(?1))
               AND bj.created_at >= ?2 AND bj.state = 'succeeded'
               AND d.kind = 'deploy' AND d.state = 'succeeded'
               AND d.created_at >= ?2 AND d.created_at < ?3
         )
         SELECT f.app, f.job, f.requested, f.ended, f.why, n.id, n.finished_at
         FROM failed f
         LEFT JOIN jobs n ON n.id = (
             SELECT g.id FROM jobs g
             WHERE g.app = f.app AND g.kind IN ('deploy', 'rollback') AND g.state = 'succeeded'
               AND g.created_at > f.requested
             ORDER BY g.created_at LIMIT 1)",
    )
    .bind(apps)
    .bind(window.since)
    .bind(window.until)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(app, job, requested, ended, why, next, next_at)| {
            let cause = Cause::parse(&why).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("job {job}: unexpected state {why:?}"))
            })?;
            Ok(Failure {
                app,
                job,
                requested,
                ended: ended.unwrap_or(requested),
                cause,
                restored: next.zip(next_at).map(|(job, at)| Restore { job, at }),
            })
        })
        .collect()
}

/// Each deploy that went live: from its commit's time to its job's end,
/// one packed list per app, from the per-day lists the database keeps
/// (migration 0160).
async fn lead_times(
    db: &SqlitePool,
    apps: &str,
    window: &Window,
) -> Result<Vec<(String, Vec<i64>)>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT app, group_concat(leads) FROM lead_times
         WHERE app IN (SELECT value FROM json_each(?1)) AND day >= ?2 AND day <= ?3
         GROUP BY app",
    )
    .bind(apps)
    .bind(window.first_day())
    .bind(window.last_day())
    .fetch_all(db)
    .await?;
    unpack_all(rows)
}

/// How long each job that ran took, one packed list per kind: from the
/// per-day lists the database keeps as jobs end (migration 0160), a few
/// hundred rows for a 90-day range rather than a row per job.
async fn durations(
    db: &SqlitePool,
    apps: &str,
    window: &Window,
) -> Result<Vec<(String, Vec<i64>)>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT kind, group_concat(durations) FROM job_durations
         WHERE kind IN (SELECT value FROM json_each(?4))
           AND app IN (SELECT value FROM json_each(?1))
           AND day >= ?2 AND day <= ?3
         GROUP BY kind",
    )
    .bind(apps)
    .bind(window.first_day())
    .bind(window.last_day())
    .bind(json_list(&KINDS)?)
    .fetch_all(db)
    .await?;
    unpack_all(rows)
}

fn unpack_all(rows: Vec<(String, Option<String>)>) -> Result<Vec<(String, Vec<i64>)>> {
    rows.into_iter()
        .map(|(key, packed)| Ok((key, unpack(packed.as_deref().unwrap_or(""))?)))
        .collect()
}

/// `group_concat`'s "12,7,300" back into numbers.
fn unpack(packed: &str) -> Result<Vec<i64>> {
    packed
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse().map_err(|_| {
                Error::Internal(anyhow::anyhow!("not a number in a packed list: {n:?}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unpack;

    #[test]
    fn packed_lists_come_back_as_numbers() {
        assert_eq!(unpack("").unwrap(), Vec::<i64>::new());
        assert_eq!(unpack("12,7,300").unwrap(), vec![12, 7, 300]);
        assert!(unpack("12,x").is_err());
    }
}
