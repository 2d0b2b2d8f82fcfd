//! The Deploy button (DESIGN.md "Deploy and rollback", strategy `checkout`,
//! the rfc-app runbook's "git pull, build, restart"):
//!
//! 1. now, before anything is queued: the ref is validated, `git fetch`ed
//!    and resolved to a full SHA (the job deploys exactly that commit, even
//!    if the branch moves meanwhile), and a dirty work tree is refused
//!    (when the app is idle);
//! 2. the job: check out the SHA (refusing a tree changed since), run the
//!    build steps, restart the units, wait until they are active, probe
//!    health;
//! 3. when a step after the checkout fails, the job goes back to the commit
//!    it replaced and rebuilds, restarts and probes that; it ends `failed`,
//!    saying the recovery steps ran, and the release log marks the release bad.

use std::path::{Path, PathBuf};

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::{App, Strategy};
use crate::host::exec::command_line;
use crate::host::git::{self, Sha};
use crate::jobs::{Plan, Request, Step, Work};
use crate::ops::releases::{self, NewRelease};
use crate::{Context, Error, Result};

/// Deploy and rollback requests are prepared one at a time: concurrent
/// fetches of one repository fight over its ref locks, and a request must
/// see the job the previous one queued (see `refuse_dirty_if_idle`).
pub(super) static PREPARING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deploys `git_ref` of `app` for `actor`; returns the job id.
pub async fn request(ctx: &Context, actor: &Actor, app: &str, git_ref: &str) -> Result<i64> {
    let app = ctx.app(app)?;
    ctx.authorize(actor, Some(app), "deploy").await?;
    git::validate_ref(git_ref)?;
    let repo = work_tree(app)?;
    let _one_at_a_time = PREPARING.lock().await;
    git::fetch(repo).await?;
    let sha = git::resolve(repo, git_ref).await?;
    refuse_dirty_if_idle(ctx, app, repo).await?;
    submit(ctx, actor, app, "deploy", git_ref, &sha, None).await
}

/// Refuses a work tree changed by hand at once, rather than in the job.
/// Only when no job of the app is queued or running: a running checkout
/// makes the tree look changed for a moment, and a queued job changes it
/// before this one runs anyway (its own checkout step checks again).
pub(super) async fn refuse_dirty_if_idle(ctx: &Context, app: &App, repo: &Path) -> Result<()> {
    let queue = ctx.jobs.queue(&app.name).await?;
    if queue.running.is_none() && queue.waiting.is_empty() {
        git::ensure_clean(repo).await?;
    }
    Ok(())
}

/// Queues the checkout plan for `sha` and records it in the release log.
pub(super) async fn submit(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    kind: &str,
    git_ref: &str,
    sha: &Sha,
    replaces: Option<i64>,
) -> Result<i64> {
    let plan = checkout_plan(app, work_tree(app)?, sha, git_ref);
    let recovery_step = plan.steps.len();
    let request = Request {
        app: app.name.clone(),
        kind: kind.into(),
        target: git_ref.into(),
        mutating: true,
        plan,
    };
    let job = ctx.jobs.submit(actor, request).await?;
    let release = NewRelease {
        app: &app.name,
        job,
        kind,
        git_ref,
        sha,
        actor,
        recovery_step,
        replaces,
    };
    let id = releases::record(&ctx.db, release).await?;
    // job.request names the ref; this row adds the exact commit it became.
    let event = Event::new(actor, "release.create", &app.name)
        .job(job)
        .detail(serde_json::json!({
            "release": id, "kind": kind, "ref": git_ref, "sha": sha.as_str(), "replaces": replaces,
        }));
    ctx.audit.record(event).await?;
    Ok(job)
}

/// The work tree a `checkout` app deploys in.
pub(super) fn work_tree(app: &App) -> Result<&Path> {
    if app.strategy != Strategy::Checkout {
        return Err(Error::Unavailable(format!(
            "{} uses the {:?} strategy; this opsdeck deploys only the checkout strategy so far",
            app.name, app.strategy
        )));
    }
    app.repo.as_deref().ok_or_else(|| {
        Error::Unavailable(format!(
            "{} has no `repo` in the config, so there is nothing to check out",
            app.name
        ))
    })
}

fn checkout_plan(app: &App, repo: &Path, sha: &Sha, git_ref: &str) -> Plan {
    let checkout = Step {
        title: format!("Check out {} ({git_ref})", sha.short()),
        work: Work::Checkout {
            repo: repo.to_owned(),
            sha: sha.to_string(),
        },
        timeout: None,
    };
    let back = Step {
        title: "Roll back: check out the commit this deploy replaced".into(),
        work: Work::CheckoutPrevious {
            repo: repo.to_owned(),
        },
        timeout: None,
    };
    let mut steps = vec![checkout];
    steps.extend(build_and_restart(app, repo));
    let mut recovery = vec![back];
    recovery.extend(build_and_restart(app, repo));
    Plan {
        steps,
        recovery,
        // A failed checkout changed nothing: no recovery for it.
        recovery_from: 1,
        timeout: None,
    }
}

/// Build, restart, wait until active, health check: what follows a checkout,
/// after a deploy and after going back.
fn build_and_restart(app: &App, repo: &Path) -> Vec<Step> {
    let mut steps: Vec<Step> = app
        .build
        .iter()
        .map(|build| Step {
            title: format!("Build: {}", command_line(&build.run)),
            work: Work::Run {
                argv: build.run.clone(),
                cwd: Some(in_repo(repo, build.cwd.as_deref())),
                env: build.env.clone(),
            },
            timeout: build.timeout,
        })
        .collect();
    steps.extend(restart_and_check(app, &app.units));
    steps
}

/// Restart `units`, wait until they are active, health check: what makes
/// a change to the app live (after a build, after a secret rotation).
pub(super) fn restart_and_check(app: &App, units: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    if !units.is_empty() {
        steps.push(Step {
            title: format!("Restart {}", units.join(", ")),
            work: Work::Restart {
                units: units.to_vec(),
                sudo: app.sudo,
            },
            timeout: None,
        });
        steps.push(Step {
            title: "Wait until the units are active".into(),
            work: Work::WaitActive {
                units: units.to_vec(),
            },
            timeout: None,
        });
    }
    if let Some(health) = &app.health {
        steps.push(Step {
            title: "Health check".into(),
            work: Work::Probe {
                url: health.url.clone(),
                expect: health.expect.clone(),
                timeout: Some(health.timeout),
            },
            // The probe's own timeout ends it; a little more for the last try.
            timeout: Some(health.timeout + std::time::Duration::from_secs(15)),
        });
    }
    steps
}

/// A build step's `cwd` is relative to the work tree.
fn in_repo(repo: &Path, cwd: Option<&Path>) -> PathBuf {
    match cwd {
        Some(cwd) => repo.join(cwd),
        None => repo.to_owned(),
    }
}
