//! The Restore button of a backup sweep's backups (the rfc-app runbook's
//! "Restore a snapshot": `systemctl stop`, `cp backup db`, `systemctl
//! start`; SITG's PostgreSQL the same way with `pg_restore`), as a job
//! that, for either kind (`host::backup`):
//!
//! 1. checks the chosen backup — one of the sweep's own, passing `PRAGMA
//!    integrity_check` or `pg_restore --list` — and refuses it before
//!    anything is stopped;
//! 2. stops the app's units;
//! 3. keeps the database as it is then as a new backup of the sweep (after
//!    the stop, so the copy holds every write the app made);
//! 4. puts the chosen backup back: SQLite's file atomically in the
//!    database's place, keeping its owner and mode; PostgreSQL's dump with
//!    `pg_restore --clean --if-exists --single-transaction`;
//! 5. SQLite: runs `PRAGMA integrity_check` on the result;
//! 6. starts the units, waits until they are active, probes health;
//!
//! and when any step after the first fails, puts the kept copy back and
//! starts the units again: the job fails, saying it did.

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::App;
use crate::host::Host;
use crate::host::backup::{Backup, Backups};
use crate::jobs::{Plan, Request, Step};
use crate::ops::approval;
use crate::ops::deploy::restart_and_check;
use crate::steps::{Work, restore, units};
use crate::{Context, Error, Result};

/// Restores backup `backup` (a file name) of sweep `sweep` of `app` for
/// `actor`; returns the job id. Unknown app or sweep → 404, a role below
/// `restore`'s → 403, a name that is not one of the sweep's backups → 400;
/// refusals are audited.
pub async fn request(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    sweep: &str,
    backup: &str,
) -> Result<i64> {
    let app = ctx.app(app)?;
    let host = Host::of(&ctx.config, app)?;
    // A sweep that makes no backups is a 404 whoever asks.
    let offered = restore::offered(&host, app, sweep).await?;
    ctx.authorize(actor, Some(app), "restore").await?;
    let backup = match restore::pick(offered, app, sweep, backup) {
        Err(Error::BadRequest(why)) => {
            let event = Event::new(actor, "restore", &app.name)
                .detail(serde_json::json!({"sweep": sweep, "backup": backup, "why": why}));
            ctx.audit.refused(event).await?;
            return Err(Error::BadRequest(why));
        }
        found => found?,
    };
    let request = Request {
        app: app.name.clone(),
        kind: "restore".into(),
        target: format!("{sweep} {}", backup.name),
        mutating: true,
        // Its plan (which backup goes back) is fixed now: an approver sees
        // exactly what would be restored.
        gate: approval::gate(app, "restore", None, true),
        plan: plan(app, sweep, restore::of(app, sweep)?, &backup),
    };
    ctx.jobs.submit(actor, request).await
}

/// The backups a Restore offers for `sweep` of `app`, newest first.
pub async fn backups(ctx: &Context, app: &App, sweep: &str) -> Result<Vec<Backup>> {
    restore::offered(&Host::of(&ctx.config, app)?, app, sweep).await
}

fn plan(app: &App, sweep: &str, backups: Backups<'_>, backup: &Backup) -> Plan {
    let sweep = sweep.to_owned();
    let mut steps = vec![Step {
        title: format!("Check backup {}", backup.name),
        work: Work::CheckBackup(restore::CheckBackup {
            sweep: sweep.clone(),
            backup: backup.name.clone(),
        }),
        timeout: None,
    }];
    if !app.units.is_empty() {
        steps.push(Step {
            title: format!("Stop {}", app.units.join(", ")),
            work: Work::Stop(units::Stop {
                units: app.units.clone(),
                sudo: app.sudo,
            }),
            timeout: None,
        });
    }
    steps.extend([
        Step {
            title: "Keep the database as it is now as a backup".into(),
            work: Work::KeepDatabase(restore::KeepDatabase {
                sweep: sweep.clone(),
            }),
            timeout: None,
        },
        Step {
            title: format!("Put backup {} in place", backup.name),
            work: Work::PutBackup(restore::PutBackup {
                sweep: sweep.clone(),
                backup: backup.name.clone(),
            }),
            timeout: None,
        },
    ]);
    if backups.checks_after_restore() {
        steps.push(Step {
            title: "Check the restored database".into(),
            work: Work::CheckDatabase(restore::CheckDatabase {
                sweep: sweep.clone(),
            }),
            timeout: None,
        });
    }
    steps.extend(restart_and_check(app, &app.units));
    let mut recovery = vec![Step {
        title: "Put the previous database back".into(),
        work: Work::PutKept(restore::PutKept { sweep, kept: None }),
        timeout: None,
    }];
    recovery.extend(restart_and_check(app, &app.units));
    Plan {
        steps,
        recovery,
        // A backup refused by the check stopped nothing: nothing to undo.
        recovery_from: 1,
        timeout: None,
    }
}
