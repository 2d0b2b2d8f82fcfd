//! Steps of a database restore (the rfc-app runbook's "Restore a
//! snapshot": stop, copy the backup over the database, start; SITG's
//! PostgreSQL the same way with `pg_restore`): the chosen backup checked
//! before anything stops, the database as it is kept as a backup of the
//! sweep, the backup put back, the result checked (SQLite), and — the
//! recovery — the kept copy put back. The database work is
//! `host::backup`'s, for either kind; the units' steps are
//! [`super::units`]'s.
//!
//! A backup is named by its file name and found again among the sweep's
//! own backups each time: no path a request gives reaches a file.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Memory, Perform, StepJob, Work, path};
use crate::config::{App, Sweep};
use crate::error::Quoted;
use crate::host::Host;
use crate::host::backup::{Backup, Backups};
use crate::host::exec::Ended;
use crate::{Error, Result};

/// Checks that `backup` is one of the sweep's backups and passes its
/// kind's check (`PRAGMA integrity_check`, `pg_restore --list`): a
/// restore's first step, before anything is stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckBackup {
    pub sweep: String,
    pub backup: String,
}

/// Keeps the database as it is now as a new backup of the sweep (named
/// like the sweep's, so it is offered for a restore too), for the
/// recovery to put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepDatabase {
    pub sweep: String,
}

/// Puts `backup` in the database's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutBackup {
    pub sweep: String,
    pub backup: String,
}

/// `PRAGMA integrity_check` on the SQLite database just put in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDatabase {
    pub sweep: String,
}

/// Recovery: puts back the copy [`KeepDatabase`] kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutKept {
    pub sweep: String,
    /// That copy, written in when the recovery starts (`Work::pinned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
}

/// The copy of the database this job kept, for its recovery.
#[derive(Debug, Default)]
pub(super) struct Kept(Option<PathBuf>);

/// The backup sweep `name` of `app` and what it backs up.
fn files<'a>(app: &'a App, name: &str) -> Result<(&'a Sweep, Backups<'a>)> {
    let sweep = super::sweep::find(app, name)?;
    let backups = Backups::of(sweep).ok_or_else(|| {
        Error::NotFound(format!(
            "sweep {name} of {} makes no database backups to restore",
            app.name
        ))
    })?;
    Ok((sweep, backups))
}

/// What sweep `name` of `app` backs up, if it is a backup sweep: how a
/// restore's plan knows its kind.
pub fn of<'a>(app: &'a App, name: &str) -> Result<Backups<'a>> {
    files(app, name).map(|(_, backups)| backups)
}

/// The backups of `sweep` (a backup sweep of `app`), newest first: what
/// the Restore form and a `backup` parameter offer.
pub async fn offered(host: &Host, app: &App, sweep: &str) -> Result<Vec<Backup>> {
    let mut backups = of(app, sweep)?.list(host).await?;
    backups.reverse();
    Ok(backups)
}

/// The backup of `sweep` named `name`, or why there is none.
async fn find(host: &Host, app: &App, sweep: &str, name: &str) -> Result<Backup> {
    pick(offered(host, app, sweep).await?, app, sweep, name)
}

/// The backup named `name` among `offered` (the backups of `sweep`), or
/// 400 saying it is not one: the only way a name a request gives becomes
/// a path.
pub fn pick(offered: Vec<Backup>, app: &App, sweep: &str, name: &str) -> Result<Backup> {
    offered.into_iter().find(|b| b.name == name).ok_or_else(|| {
        Error::BadRequest(format!(
            "{} is not one of the backups of sweep {sweep} of {}",
            Quoted(name),
            app.name
        ))
    })
}

impl Perform for CheckBackup {
    fn command_line(&self) -> String {
        format!(
            "check backup {} of sweep {} (PRAGMA integrity_check or pg_restore --list)",
            self.backup, self.sweep
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            let backup = find(&host, job.app()?, &self.sweep, &self.backup).await?;
            let said = of(job.app()?, &self.sweep)?
                .check(&host, &backup.path)
                .await?;
            Ok(vec![said])
        }))
    }
}

impl Perform for KeepDatabase {
    fn command_line(&self) -> String {
        format!(
            "a new backup of sweep {} (the database as it is now, kept to go back to)",
            self.sweep
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let (kept, said) = of(job.app()?, &self.sweep)?.create(&job.host()?).await?;
            job.memory.restore.0 = Some(kept);
            Ok(vec![said])
        }))
    }
}

impl Perform for PutBackup {
    fn command_line(&self) -> String {
        format!(
            "put backup {} of sweep {} back (SQLite: a copy renamed over the file, owner and mode kept, its -wal, -shm, -journal removed; PostgreSQL: pg_restore --clean --if-exists --single-transaction)",
            self.backup, self.sweep
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            let (sweep, backups) = files(job.app()?, &self.sweep)?;
            let backup = find(&host, job.app()?, &sweep.name, &self.backup).await?;
            let said = backups.put_back(&host, &backup.path).await?;
            job.audit.push((
                "database.restore",
                serde_json::json!({
                    "sweep": sweep.name,
                    "database": backups.database(),
                    "backup": backup.name,
                    "kept": job.memory.restore.0,
                }),
            ));
            Ok(vec![said])
        }))
    }
}

impl Perform for CheckDatabase {
    fn command_line(&self) -> String {
        format!(
            "PRAGMA integrity_check on the database of sweep {}",
            self.sweep
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let backups = of(job.app()?, &self.sweep)?;
            Ok(vec![backups.check_database(&job.host()?).await?])
        }))
    }
}

impl Perform for PutKept {
    fn command_line(&self) -> String {
        let kept = match &self.kept {
            Some(kept) => path(kept),
            None => "<the copy this job kept>".to_owned(),
        };
        format!("put {kept} back as the database (as a Restore puts a backup back)")
    }

    fn pinned(&self, memory: &Memory) -> Option<(Work, String)> {
        let kept = memory.restore.0.clone()?;
        let words = kept
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let step = PutKept {
            sweep: self.sweep.clone(),
            kept: Some(kept),
        };
        Some((Work::PutKept(step), words))
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let Some(kept) = job.memory.restore.0.clone() else {
                return Ok(vec![
                    "this job kept no copy, so it changed no database: nothing to put back".into(),
                ]);
            };
            let (sweep, backups) = files(job.app()?, &self.sweep)?;
            let said = backups.put_back(&job.host()?, &kept).await?;
            job.audit.push((
                "database.put_back",
                serde_json::json!({"sweep": sweep.name, "database": backups.database(), "backup": kept}),
            ));
            Ok(vec![
                said,
                "the previous database is back: this restore is undone".into(),
            ])
        }))
    }
}
