//! The Deploy button (DESIGN.md "Deploy and rollback", strategy `checkout`,
//! the rfc-app runbook's "git pull, build, restart"):
//!
//! 1. now, before anything is queued: the ref is validated, `git fetch`ed
//!    and resolved to a full SHA (the job deploys exactly that commit, even
//!    if the branch moves meanwhile), and a dirty work tree is refused;
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

/// Concurrent fetches of one repository fight over its ref locks; deploy
/// requests are rare, so one fetch at a time is simplest.
static FETCHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deploys `git_ref` of `app` for `actor`; returns the job id.
pub async fn request(ctx: &Context, actor: &Actor, app: &str, git_ref: &str) -> Result<i64> {
    let app = ctx.app(app)?;
    ctx.authorize(actor, Some(app), "deploy").await?;
    git::validate_ref(git_ref)?;
    let repo = work_tree(app)?;
    let sha = {
        let _one_at_a_time = FETCHING.lock().await;
        git::fetch(repo).await?;
        git::resolve(repo, git_ref).await?
    };
    git::ensure_clean(repo).await?;
    submit(ctx, actor, app, "deploy", git_ref, &sha, None).await
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
        title: "Check out the commit this deploy replaced".into(),
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
    if !app.units.is_empty() {
        steps.push(Step {
            title: format!("Restart {}", app.units.join(", ")),
            work: Work::Restart {
                units: app.units.clone(),
                sudo: app.sudo,
            },
            timeout: None,
        });
        steps.push(Step {
            title: "Wait until the units are active".into(),
            work: Work::WaitActive {
                units: app.units.clone(),
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
