//! The process group of every running step, kept in the database
//! (`step_groups`) so that after a crash whatever a step left behind is
//! killed even when it cleared its environment (`env -i`, `sudo`) and so
//! lost the `OPSDECK_JOB` tag the other sweep looks for. A child that made
//! itself a new session (`setsid`) leaves the group but keeps the tag:
//! together the two find both.
//!
//! The session is not recorded: a step's processes share opsdeck's own
//! session, so matching it would kill opsdeck's neighbours.

use nix::sys::signal::Signal;
use sqlx::SqlitePool;

use crate::Result;
use crate::host::run_as::RunAs;
use crate::host::{exec, procs};

/// Records that job `job`'s step runs in group `pgid` (as `run_as`).
/// Without the row a crash could leave it running: an error fails the step.
pub async fn record(db: &SqlitePool, job: i64, pgid: u32, run_as: Option<&RunAs>) -> Result<()> {
    let started = procs::group_and_start(pgid).map_or(0, |(_, started)| started);
    sqlx::query(
        "INSERT OR REPLACE INTO step_groups (job, pgid, started, boot_id, run_as, run_group)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(job)
    .bind(i64::from(pgid))
    .bind(i64::try_from(started).unwrap_or(i64::MAX))
    .bind(procs::boot_id())
    .bind(run_as.map(|r| r.user.clone()))
    .bind(run_as.and_then(|r| r.group.clone()))
    .execute(db)
    .await?;
    Ok(())
}

/// The step in group `pgid` ended and its group was emptied.
pub async fn forget(db: &SqlitePool, job: i64, pgid: u32) {
    // A row left behind only costs a look at /proc after the next restart.
    let _ = sqlx::query("DELETE FROM step_groups WHERE job = ? AND pgid = ?")
        .bind(job)
        .bind(i64::from(pgid))
        .execute(db)
        .await;
}

/// At start-up, before any job runs: SIGKILLs what is left of every
/// recorded group (the steps a crash interrupted) and forgets them all;
/// how many groups still had processes.
pub async fn kill_left(db: &SqlitePool) -> Result<usize> {
    type Row = (i64, i64, String, Option<String>, Option<String>);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT pgid, started, boot_id, run_as, run_group FROM step_groups")
            .fetch_all(db)
            .await?;
    let boot = procs::boot_id();
    let mut killed = 0;
    for (pgid, started, boot_id, user, group) in rows {
        let (Ok(pgid), Ok(started)) = (u32::try_from(pgid), u64::try_from(started)) else {
            continue;
        };
        if boot_id != boot || !still_that_group(pgid, started) {
            continue;
        }
        killed += 1;
        let run_as = user.map(|user| RunAs { user, group });
        tokio::task::spawn_blocking(move || {
            exec::signal_group(pgid, Signal::SIGKILL);
            if let Some(run_as) = run_as {
                run_as.signal_group(pgid, Signal::SIGKILL);
            }
        })
        .await
        .map_err(|e| crate::Error::Internal(e.into()))?;
    }
    sqlx::query("DELETE FROM step_groups").execute(db).await?;
    Ok(killed)
}

/// Whether group `pgid` still has processes and is the step's: its leader,
/// if alive, is the process that started then (a leader with another start
/// time means the number was reused); every member started after it.
fn still_that_group(pgid: u32, started: u64) -> bool {
    if let Some((_, leader)) = procs::group_and_start(pgid) {
        return leader == started;
    }
    procs::pids().any(|pid| {
        procs::group_and_start(pid).is_some_and(|(group, at)| group == pgid && at >= started)
    })
}
