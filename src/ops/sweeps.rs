//! The Dry run and Run now buttons of a sweep (DESIGN.md "Sweeps"): the
//! runbooks' cron chores, each a job. What a sweep's step does — list,
//! compare with the dry run before it, remove or create — is
//! `steps::sweep`'s; a `command` sweep's real run is its argv as a job
//! step, its dry run shows the command without running it.

use crate::auth::Actor;
use crate::config::{App, Sweep, SweepKind};
use crate::host::exec::command_line;
use crate::jobs::{Job, Plan, Request, Step};
use crate::steps::sweep::{self, record};
use crate::steps::{Work, run};
use crate::{Context, Result};

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
    let app = ctx.app(app)?;
    let sweep = find(app, name)?;
    match sweep.role {
        Some(role) => ctx.require_role(actor, Some(app), "sweep", role).await?,
        None => ctx.authorize(actor, Some(app), "sweep").await?,
    }
    submit(ctx, actor, app, sweep, dry_run, None).await
}

/// Queues the sweep's job; `scheduled_for` is the schedule's minute (Unix
/// ms) when the scheduler asks.
pub(super) async fn submit(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    sweep: &Sweep,
    dry_run: bool,
    scheduled_for: Option<i64>,
) -> Result<i64> {
    let step = match (sweep.kind, &sweep.run) {
        (SweepKind::Command, Some(argv)) if !dry_run => Step {
            title: format!("Run {}", command_line(argv)),
            work: Work::Run(run::Run {
                argv: argv.clone(),
                cwd: app.repo.clone(),
                env: Default::default(),
            }),
            timeout: None,
        },
        _ => {
            let previewed = if dry_run {
                None
            } else {
                record::last_preview(&ctx.db, &app.name, &sweep.name).await?
            };
            Step {
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
            }
        }
    };
    let request = Request {
        app: app.name.clone(),
        kind: "sweep".into(),
        target: if dry_run {
            format!("{} (dry run)", sweep.name)
        } else {
            sweep.name.clone()
        },
        // A dry run changes nothing, so it need not wait for the app.
        mutating: !dry_run,
        plan: Plan {
            steps: vec![step],
            recovery: Vec::new(),
            recovery_from: 0,
            timeout: None,
        },
    };
    let job = ctx.jobs.submit(actor, request).await?;
    record::started(&ctx.db, job, &app.name, &sweep.name, dry_run, scheduled_for).await?;
    Ok(job)
}
