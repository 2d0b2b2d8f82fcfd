//! The Deploy button (DESIGN.md "Deploy and rollback"), the rfc-app
//! runbook's "git pull, build, restart" and the wppackages build promotion:
//!
//! 1. now, before anything is queued: the ref is validated, `git fetch`ed
//!    and resolved to a full SHA (the job deploys exactly that commit, even
//!    if the branch moves meanwhile), and with `checkout` a dirty work tree
//!    is refused (when the app is idle);
//! 2. the job, `checkout`: check out the SHA (refusing a tree changed
//!    since), build, restart the units, wait until they are active, probe;
//!    `releases`: export the SHA into `releases/<UTC timestamp>-<sha7>/`,
//!    link the shared files, build there, switch `current` atomically,
//!    restart, wait, probe, then remove old releases beyond `keep`;
//! 3. when a step after the point of no return fails (the checkout, the
//!    switch), the job goes back to what it replaced — checks out and
//!    rebuilds the old commit, or switches `current` back — restarts and
//!    probes that; it ends `failed`, saying the recovery steps ran, and the
//!    release log marks the release bad. A failed build of a new release
//!    changes nothing live, so it needs no recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::{App, Strategy};
use crate::error::{MAX_ECHOED, Quoted, clip};
use crate::host::Host;
use crate::host::exec::command_line;
use crate::host::git::{self, Sha};
use crate::host::release_tree::{self, ReleaseTree};
use crate::jobs::{Gate, Plan, Request, Step, already_queued};
use crate::ops::params::{self, with_values};
use crate::ops::{approval, command};
use crate::releases::{self, NewRelease};
use crate::steps::params::Of;
use crate::steps::{Work, checkout, probe, release, run, sweep, units};
use crate::{Context, Error, Result};

/// Deploy and rollback requests are prepared one at a time: concurrent
/// fetches of one repository fight over its ref locks, and a request must
/// see the job the previous one queued (see `refuse_dirty_if_idle`).
pub(super) static PREPARING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deploys `git_ref` of `app` for `actor`; returns the job id.
pub async fn request(ctx: &Context, actor: &Actor, app: &str, git_ref: &str) -> Result<i64> {
    request_with(ctx, actor, app, git_ref, &BTreeMap::new(), None).await
}

/// Like [`request`], with values `given` for the app's deploy parameters
/// (`command` strategy). A value its parameter refuses → 400, audited as
/// denied; nothing is queued. With `emergency` (a reason), an owner skips
/// the approval the app's deploys need.
pub async fn request_with(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    git_ref: &str,
    given: &BTreeMap<String, String>,
    emergency: Option<&str>,
) -> Result<i64> {
    match prepare(ctx, actor, app, git_ref, None, given, emergency).await? {
        Prepared::Queued(job) => Ok(job),
        // Only a deploy with an expected commit can find it moved.
        Prepared::Moved(now) => Err(Error::Conflict(format!(
            "{} moved to {} while the deploy was prepared; try again",
            Quoted(git_ref),
            now.short()
        ))),
    }
}

/// Deploys `git_ref` only if it still is commit `previewed` — what the
/// page's "what ships" showed the person who clicked Deploy — with the
/// deploy parameters' values `given` in the form (and its emergency
/// reason, as [`request_with`]).
pub async fn request_previewed(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    git_ref: &str,
    previewed: &str,
    given: &BTreeMap<String, String>,
    emergency: Option<&str>,
) -> Result<i64> {
    let still = Still {
        git_ref,
        sha: previewed,
    };
    match prepare(ctx, actor, app, git_ref, Some(still), given, emergency).await? {
        Prepared::Queued(job) => Ok(job),
        Prepared::Moved(now) => Err(Error::Conflict(format!(
            "{git_ref} moved since the preview: it was {}, it is now {}; look at what ships again",
            previewed.get(..7).unwrap_or(previewed),
            now.short()
        ))),
    }
}

/// What became of a pushed commit (the Gitea webhook).
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Deploying(i64),
    /// The branch is elsewhere now: its tip after the fetch.
    Stale {
        tip: Sha,
    },
}

/// Deploys commit `after`, pushed to `branch`, only if it still is the
/// branch's tip once fetched. A push is a claim about the branch: a
/// delayed, replayed or forged-but-signed delivery naming an older commit
/// must not move the app back to it.
pub async fn request_push(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    branch: &str,
    after: &str,
) -> Result<Pushed> {
    let still = Still {
        git_ref: branch,
        sha: after,
    };
    // Nobody is there to give values: the deploy parameters' defaults
    // (the config makes sure each required one has one).
    let defaults = BTreeMap::new();
    Ok(
        match prepare(ctx, actor, app, after, Some(still), &defaults, None).await? {
            Prepared::Queued(job) => Pushed::Deploying(job),
            Prepared::Moved(tip) => Pushed::Stale { tip },
        },
    )
}

/// A condition a deploy is queued under, checked right after the fetch:
/// `git_ref` still resolves to `sha`.
struct Still<'a> {
    git_ref: &'a str,
    sha: &'a str,
}

enum Prepared {
    Queued(i64),
    /// `Still::git_ref` resolves to this other commit now; nothing queued.
    Moved(Sha),
}

async fn prepare(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    git_ref: &str,
    still: Option<Still<'_>>,
    given: &BTreeMap<String, String>,
    emergency: Option<&str>,
) -> Result<Prepared> {
    let app = ctx.app(app)?;
    ctx.authorize(actor, Some(app), "deploy").await?;
    let gate = approval::deploy_gate(ctx, actor, app, emergency).await?;
    if let Err(refused) = git::validate_ref(git_ref) {
        // Refused like a deploy parameter: 400 and a `denied` row, so a
        // probe of odd refs (`0.1.9;reboot`) shows in the audit log. The
        // reason quotes the ref, clipped.
        let why = refused.public_message();
        let event =
            Event::new(actor, "deploy.ref", &app.name).detail(serde_json::json!({ "why": why }));
        ctx.audit.refused(event).await?;
        return Err(refused);
    }
    let host = Host::of(&ctx.config, app)?;
    let of = Of::Deploy(git_ref.to_owned());
    if app.strategy == Strategy::Command && app.repo.is_none() {
        if still.is_some_and(|still| !still.sha.is_empty()) {
            return Err(Error::Unavailable(format!(
                "{} has no `repo` in the config, so a commit cannot be deployed; name the tag to deploy",
                app.name
            )));
        }
        let params = params::checked(ctx, actor, app, &of, given).await?;
        let shipment = command::deploy(app, git_ref, None, git_ref, &params);
        let _one_at_a_time = PREPARING.lock().await;
        return submit(
            ctx, actor, app, "deploy", git_ref, None, None, shipment, gate,
        )
        .await
        .map(Prepared::Queued);
    }
    let repo = repository(app)?;
    let _one_at_a_time = PREPARING.lock().await;
    git::fetch(&host, repo).await?;
    let sha = git::resolve(&host, repo, git_ref).await?;
    if let Some(still) = still {
        let now = if still.git_ref == git_ref {
            sha.clone()
        } else {
            git::resolve(&host, repo, still.git_ref).await?
        };
        if !now.as_str().eq_ignore_ascii_case(still.sha) {
            return Ok(Prepared::Moved(now));
        }
    }
    // After the fetch: a `commit` parameter may name what it brought.
    let params = params::checked(ctx, actor, app, &of, given).await?;
    let shipment = match app.strategy {
        Strategy::Releases => {
            let root = releases_root(app)?;
            let tree = ReleaseTree::new(host.clone(), root);
            let name = new_release_name(ctx, app, &tree, &sha).await?;
            Shipment {
                plan: release_plan(app, repo, root, &sha, &name),
                dir: Some(name),
                values: BTreeMap::new(),
                params: BTreeMap::new(),
            }
        }
        Strategy::Command => {
            let tag = if git::is_tag(&host, repo, git_ref).await? {
                git_ref.to_owned()
            } else {
                sha.short().to_owned()
            };
            command::deploy(app, git_ref, Some(&sha), &tag, &params)
        }
        Strategy::Checkout => {
            refuse_dirty_if_idle(ctx, app, &host, repo).await?;
            Shipment {
                plan: checkout_plan(app, repo, &sha, git_ref),
                dir: None,
                values: BTreeMap::new(),
                params: BTreeMap::new(),
            }
        }
    };
    submit(
        ctx,
        actor,
        app,
        "deploy",
        git_ref,
        Some(&sha),
        None,
        shipment,
        gate,
    )
    .await
    .map(Prepared::Queued)
}

/// What a deploy or rollback job does, and the release directory it
/// makes or goes to (`releases` strategy) or the values its steps run
/// with (`command`), among them the deploy parameters' (`params`, also
/// shown in the job's title).
pub(super) struct Shipment {
    pub plan: Plan,
    pub dir: Option<String>,
    pub values: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
}

/// Refuses a work tree changed by hand at once, rather than in the job.
/// Only when no job of the app is queued or running: a running checkout
/// makes the tree look changed for a moment, and a queued job changes it
/// before this one runs anyway (its own checkout step checks again).
pub(super) async fn refuse_dirty_if_idle(
    ctx: &Context,
    app: &App,
    host: &Host,
    repo: &Path,
) -> Result<()> {
    let queue = ctx.jobs.queue(&app.name).await?;
    if queue.running.is_none() && queue.waiting.is_empty() {
        git::ensure_clean(host, repo).await?;
    }
    Ok(())
}

/// Queues `shipment` and records it in the release log.
#[allow(clippy::too_many_arguments)] // a column of the release log each, and the gate
pub(super) async fn submit(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    kind: &str,
    git_ref: &str,
    sha: Option<&Sha>,
    replaces: Option<i64>,
    shipment: Shipment,
    gate: Gate,
) -> Result<i64> {
    // Identical means the same commit, however it was named: `main` and a
    // tag on the same commit are one deploy.
    if let Some(queued) = releases::queued_to(&ctx.db, &app.name, kind, sha, git_ref).await? {
        let what = format!("{kind} {}", clip(&queued.git_ref, MAX_ECHOED));
        let refused = already_queued(&what, &app.name, &queued.actor, queued.at);
        return Err(if queued.git_ref == git_ref {
            refused
        } else {
            Error::Conflict(format!(
                "{} (job #{}); {} is the same commit, {}",
                refused.public_message(),
                queued.job,
                Quoted(git_ref),
                sha.map_or("", Sha::short)
            ))
        });
    }
    let Shipment {
        plan,
        dir,
        values,
        params,
    } = shipment;
    let committed_at = match sha {
        Some(sha) => commit_time(ctx, app, sha).await,
        None => None,
    };
    let recovery_step = plan.steps.len();
    let request = Request {
        app: app.name.clone(),
        kind: kind.into(),
        target: with_values(git_ref, &params),
        mutating: true,
        plan,
        gate,
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
        dir: dir.as_deref(),
        values: &values,
        committed_at,
    };
    let id = releases::record(&ctx.db, release).await?;
    // job.request names the ref; this row adds the exact commit it became.
    let event = Event::new(actor, "release.create", &app.name)
        .job(job)
        .detail(serde_json::json!({
            "release": id, "kind": kind, "ref": git_ref, "sha": sha.map(Sha::as_str),
            "replaces": replaces, "dir": dir, "values": values,
        }));
    ctx.audit.record(event).await?;
    Ok(job)
}

/// `sha`'s committer time, for the release log: lead time starts there.
/// Only a figure hangs on it, so a repository that cannot say (it was
/// just resolved there, so hardly ever) is logged, not a refused deploy.
async fn commit_time(ctx: &Context, app: &App, sha: &Sha) -> Option<i64> {
    let repo = app.repo.as_deref()?;
    let read = async { git::committed_at(&Host::of(&ctx.config, app)?, repo, sha).await };
    match read.await {
        Ok(at) => Some(at),
        Err(e) => {
            tracing::warn!(app = %app.name, sha = %sha, "no commit time for the release log: {e}");
            None
        }
    }
}

/// The git repository `app` deploys from: the work tree (`checkout`), the
/// clone releases are exported from (`releases`), or the one refs are
/// resolved in (`command`).
pub(super) fn repository(app: &App) -> Result<&Path> {
    app.repo.as_deref().ok_or_else(|| {
        Error::Unavailable(format!(
            "{} has no `repo` in the config, so there is nothing to deploy",
            app.name
        ))
    })
}

/// Where a `releases` app's `releases/`, `shared/` and `current` live.
pub(super) fn releases_root(app: &App) -> Result<&Path> {
    app.path.as_deref().ok_or_else(|| {
        Error::Unavailable(format!(
            "{} has no `path` in the config, so it has nowhere to keep releases",
            app.name
        ))
    })
}

/// `<UTC timestamp>-<sha7>`, its timestamp later than every release made
/// before (on disk or queued), so names sort in deploy order even for two
/// deploys within one second or after the clock stepped back.
async fn new_release_name(
    ctx: &Context,
    app: &App,
    tree: &ReleaseTree,
    sha: &Sha,
) -> Result<String> {
    const STAMP: &str = "%Y%m%d%H%M%S";
    let mut names = releases::dirs(&ctx.db, &app.name).await?;
    names.extend(tree.names().await?);
    let latest = names
        .iter()
        .filter_map(|name| name.split('-').next())
        .filter_map(|stamp| chrono::NaiveDateTime::parse_from_str(stamp, STAMP).ok())
        .max();
    let now = chrono::Utc::now().naive_utc();
    let at = match latest {
        // Names have whole seconds: compare those.
        Some(latest) if latest.and_utc().timestamp() >= now.and_utc().timestamp() => {
            latest + chrono::Duration::seconds(1)
        }
        _ => now,
    };
    Ok(format!("{}-{}", at.format(STAMP), sha.short()))
}

pub(super) fn checkout_plan(app: &App, repo: &Path, sha: &Sha, git_ref: &str) -> Plan {
    let checkout = Step {
        title: format!("Check out {} ({git_ref})", sha.short()),
        work: Work::Checkout(checkout::Checkout {
            repo: repo.to_owned(),
            sha: sha.to_string(),
        }),
        timeout: None,
    };
    let back = Step {
        title: "Roll back: check out the commit this deploy replaced".into(),
        work: Work::CheckoutPrevious(checkout::CheckoutPrevious {
            repo: repo.to_owned(),
            sha: None,
        }),
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

/// The releases plan: make the release, build it, switch, restart, probe,
/// clean up. The recovery switches back: the release before is still
/// built, so going back costs a restart.
fn release_plan(app: &App, repo: &Path, root: &Path, sha: &Sha, name: &str) -> Plan {
    let dir = release_tree::release_dir(root, name);
    let make = Step {
        title: format!("Make release {name}"),
        work: Work::MakeRelease(release::MakeRelease {
            repo: repo.to_owned(),
            sha: sha.to_string(),
            root: root.to_owned(),
            name: name.to_owned(),
            shared: app.shared.clone(),
        }),
        timeout: None,
    };
    let mut steps = vec![make];
    steps.extend(builds(app, &dir));
    let recovery_from = steps.len();
    let mut switch_and_restart = switch_plan(app, root, name);
    steps.append(&mut switch_and_restart.steps);
    steps.push(Step {
        title: format!("Clean up: keep {} good releases", app.keep),
        work: Work::CleanupReleases(sweep::CleanupReleases { keep: app.keep }),
        timeout: None,
    });
    Plan {
        steps,
        recovery: switch_and_restart.recovery,
        recovery_from,
        timeout: None,
    }
}

/// Switch `current` to release `name`, restart, probe; switch back when
/// that fails. A rollback with `releases` is exactly this.
pub(super) fn switch_plan(app: &App, root: &Path, name: &str) -> Plan {
    let mut steps = vec![Step {
        title: format!("Switch current to {name}"),
        work: Work::SwitchRelease(release::SwitchRelease {
            root: root.to_owned(),
            name: name.to_owned(),
        }),
        timeout: None,
    }];
    steps.extend(restart_and_check(app, &app.units));
    let mut recovery = vec![Step {
        title: "Roll back: switch current back to the release this job replaced".into(),
        work: Work::SwitchBack(release::SwitchBack {
            root: root.to_owned(),
            release: None,
        }),
        timeout: None,
    }];
    recovery.extend(restart_and_check(app, &app.units));
    Plan {
        steps,
        recovery,
        recovery_from: 0,
        timeout: None,
    }
}

/// Build, restart, wait until active, health check: what follows a checkout,
/// after a deploy and after going back.
fn build_and_restart(app: &App, repo: &Path) -> Vec<Step> {
    let mut steps = builds(app, repo);
    steps.extend(restart_and_check(app, &app.units));
    steps
}

/// The app's build steps, run in `dir` (the work tree or the new release).
fn builds(app: &App, dir: &Path) -> Vec<Step> {
    app.build
        .iter()
        .map(|build| Step {
            title: format!("Build: {}", command_line(&build.run)),
            work: Work::Run(run::Run::new(
                build.run.clone(),
                Some(in_dir(dir, build.cwd.as_deref())),
                build.env.clone(),
            )),
            timeout: build.timeout,
        })
        .collect()
}

/// Restart `units`, wait until they are active, health check: what makes
/// a change to the app live (after a build, after a secret rotation).
pub(super) fn restart_and_check(app: &App, units: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    if !units.is_empty() {
        steps.push(Step {
            title: format!("Restart {}", units.join(", ")),
            work: Work::Restart(units::Restart {
                units: units.to_vec(),
                sudo: app.sudo,
            }),
            timeout: None,
        });
        steps.push(Step {
            title: "Wait until the units are active".into(),
            work: Work::WaitActive(units::WaitActive {
                units: units.to_vec(),
            }),
            timeout: None,
        });
    }
    if !app.health.is_empty() {
        steps.push(Step {
            title: "Health check".into(),
            work: Work::Probe(probe::Probe::of(&app.health)),
            timeout: Some(probe::limit(&app.health)),
        });
    }
    steps
}

/// A build step's `cwd` is relative to the work tree or the release.
pub(super) fn in_dir(dir: &Path, cwd: Option<&Path>) -> PathBuf {
    match cwd {
        Some(cwd) => dir.join(cwd),
        None => dir.to_owned(),
    }
}
