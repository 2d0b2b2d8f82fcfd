//! The Dry run and Run now buttons of a sweep (DESIGN.md "Sweeps"): the
//! runbooks' cron chores, each a job. What a sweep's step does — list,
//! compare with the dry run before it, remove or create — is
//! `steps::sweep`'s; a `command` sweep's real run is its argv as a job
//! step (like an action's: parameters, `cwd`, `timeout`, the env file),
//! its dry run shows the command as written without running it.

use std::collections::BTreeMap;

use crate::auth::Actor;
use crate::config::words::fill;
use crate::config::{App, Sweep, SweepKind};
use crate::host::exec::command_line;
use crate::jobs::{Job, Plan, Request, Step};
use crate::ops::actions::Command;
use crate::ops::approval;
use crate::ops::params::{check_step, checked, with_values};
use crate::steps::Work;
use crate::steps::params::Of;
use crate::steps::sweep::{self, record};
use crate::{Context, Error, Result};

pub(super) use crate::steps::sweep::find;

/// A sweep's newest job, as the page and the API show it.
pub type LastRun = record::LastRun<Job>;

/// The sweep's newest run and its job, if it ever ran.
pub async fn last_run(ctx: &Context, app: &str, sweep: &str) -> Result<Option<LastRun>> {
    let Some(last) = record::last_run(&ctx.db, app, sweep).await? else {
        return Ok(None);
    };
    let job = ctx.jobs.job(last.job).await?;
    Ok(Some(LastRun {
        job,
        dry_run: last.dry_run,
        items: last.items,
        changed: last.changed,
        scheduled_for: last.scheduled_for,
    }))
}

/// Starts a dry run or a real run of sweep `name` of `app` for `actor`;
/// returns the job id.
pub async fn request(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    name: &str,
    dry_run: bool,
) -> Result<i64> {
    request_with(ctx, actor, app, name, dry_run, &BTreeMap::new()).await
}

/// Like [`request`], a command sweep's run with parameter values `given`.
/// A value its parameter refuses → 400, audited as denied; nothing is
/// queued. A dry run runs nothing, so it takes none.
pub async fn request_with(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    name: &str,
    dry_run: bool,
    given: &BTreeMap<String, String>,
) -> Result<i64> {
    let app = ctx.app(app)?;
    let sweep = find(app, name)?;
    match sweep.role {
        Some(role) => ctx.require_role(actor, Some(app), "sweep", role).await?,
        None => ctx.authorize(actor, Some(app), "sweep").await?,
    }
    if dry_run && !given.is_empty() {
        return Err(Error::BadRequest(format!(
            "a dry run lists what sweep {} would run without running it, so it takes no parameters",
            sweep.name
        )));
    }
    let values = if dry_run {
        BTreeMap::new()
    } else {
        checked(ctx, actor, app, &Of::Sweep(sweep.name.clone()), given).await?
    };
    submit(ctx, actor, app, sweep, dry_run, None, &values).await
}

/// Queues the sweep's job, a command sweep's run with `values` (checked);
/// `scheduled_for` is the schedule's minute (Unix ms) when the scheduler
/// asks.
pub(super) async fn submit(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    sweep: &Sweep,
    dry_run: bool,
    scheduled_for: Option<i64>,
    values: &BTreeMap<String, String>,
) -> Result<i64> {
    let mut steps = Vec::new();
    match (sweep.kind, &sweep.run) {
        (SweepKind::Command, Some(argv)) if !dry_run => {
            let of = Of::Sweep(sweep.name.clone());
            steps.extend(check_step(of, values));
            let command = Command {
                run: argv,
                cwd: sweep.cwd.as_deref(),
                env: &BTreeMap::new(),
                env_file: sweep.env_file,
                timeout: sweep.timeout,
            };
            let filled: Vec<String> = argv.iter().map(|w| fill(w, values)).collect();
            let title = format!("Run {}", command_line(&filled));
            steps.push(command.step(app, title, values)?);
        }
        _ => {
            let previewed = if dry_run {
                None
            } else {
                record::last_preview(&ctx.db, &app.name, &sweep.name).await?
            };
            steps.push(Step {
                title: if dry_run {
                    format!("List what sweep {} would do", sweep.name)
                } else {
                    format!("Sweep {}", sweep.name)
                },
                work: Work::Sweep(sweep::Sweep {
                    sweep: sweep.name.clone(),
                    dry_run,
                    previewed,
                }),
                timeout: None,
            });
        }
    }
    let request = Request {
        app: app.name.clone(),
        kind: "sweep".into(),
        target: if dry_run {
            format!("{} (dry run)", sweep.name)
        } else {
            with_values(&sweep.name, values)
        },
        // A dry run changes nothing, so it need not wait for the app.
        mutating: !dry_run,
        gate: approval::gate(app, "sweep", sweep.approval, !dry_run),
        plan: Plan {
            steps,
            recovery: Vec::new(),
            recovery_from: 0,
            timeout: None,
        },
    };
    let job = ctx.jobs.submit(actor, request).await?;
    record::started(&ctx.db, job, &app.name, &sweep.name, dry_run, scheduled_for).await?;
    Ok(job)
}
