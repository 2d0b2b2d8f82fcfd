//! The Dry run and Run now buttons of a sweep (DESIGN.md "Sweeps"): the
//! runbooks' cron chores, each a job.
//!
//! A sweep's job looks at the world, lists what it would remove or create,
//! and — unless it is a dry run — does exactly that. A real run that follows
//! a dry run computes the list again and compares: it only does what the dry
//! run listed and is still due, and says what changed in between. Every list
//! is kept (`sweep_runs`) for the page and for the next run to compare with.
//! A `command` sweep's real run is its argv as a job step; its dry run shows
//! the command without running it.

use std::path::PathBuf;

use sqlx::SqlitePool;
use tokio::sync::mpsc;

use crate::auth::Actor;
use crate::config::{App, Config, Sweep, SweepKind};
use crate::error::Quoted;
use crate::host::Host;
use crate::host::exec::command_line;
use crate::jobs::plan::Preview;
use crate::jobs::{Plan, Request, Step, Work};
use crate::{Context, Error, Result};

mod gitea_branches;
mod job_output;
pub(crate) mod record;
mod releases;
mod sqlite_backup;

pub use record::{LastRun, last_run};

/// One thing a sweep removes or creates.
#[derive(Debug, Clone)]
enum Item {
    RemoveRelease(PathBuf),
    CreateBackup {
        database: PathBuf,
        dir: PathBuf,
    },
    RemoveBackup(PathBuf),
    DeleteBranch {
        repo: String,
        branch: String,
        /// Why it is due ("merged 40 days ago"); not part of the label,
        /// since it changes by the day.
        why: String,
    },
    PruneOutput {
        job: i64,
    },
}

impl Item {
    /// How the item is listed, and compared between a dry run and the run
    /// after it: stable for as long as the item is the same thing.
    fn label(&self) -> String {
        match self {
            Item::RemoveRelease(dir) => format!("remove release {}", dir.display()),
            Item::CreateBackup { database, dir } => format!(
                "create a backup of {} in {}",
                database.display(),
                dir.display()
            ),
            Item::RemoveBackup(file) => format!("remove backup {}", file.display()),
            Item::DeleteBranch { repo, branch, .. } => format!("delete branch {branch} of {repo}"),
            Item::PruneOutput { job } => format!("delete the output of job {job}"),
        }
    }
}

/// What a sweep found: what to do, and what it leaves alone and why.
#[derive(Debug, Default)]
struct Found {
    items: Vec<Item>,
    kept: Vec<String>,
}

/// What a sweep's job step needs.
pub struct SweepJob<'a> {
    pub config: &'a Config,
    pub db: &'a SqlitePool,
    pub job: i64,
    pub app: &'a str,
}

impl<'a> SweepJob<'a> {
    /// The job's app, as the config has it now.
    fn app(&self) -> Result<&'a App> {
        self.config
            .app(self.app)
            .ok_or_else(|| Error::Conflict(format!("{} is no longer in the config", self.app)))
    }

    /// Where the app's files are: this machine or another host.
    fn host(&self) -> Result<Host> {
        Host::of(self.config, self.app()?)
    }
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

pub(super) fn find<'a>(app: &'a App, name: &str) -> Result<&'a Sweep> {
    app.sweeps
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::NotFound(format!("{} has no sweep named {}", app.name, Quoted(name))))
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
            work: Work::Run {
                argv: argv.clone(),
                cwd: app.repo.clone(),
                env: Default::default(),
            },
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
                work: Work::Sweep {
                    sweep: sweep.name.clone(),
                    dry_run,
                    previewed,
                },
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

type Lines = mpsc::Sender<crate::host::lines::Lines>;

async fn say(lines: &Lines, line: String) {
    let _ = lines.send(line.into()).await;
}

/// The job step of a sweep (`Work::Sweep`): lists, and unless `dry_run`,
/// does what it listed (only what `previewed` also listed, if given).
pub async fn perform(
    job: &SweepJob<'_>,
    name: &str,
    dry_run: bool,
    previewed: Option<&Preview>,
    lines: &Lines,
) -> Result<()> {
    let app = job.app()?;
    let sweep = find(app, name)?;
    let found = match sweep.kind {
        SweepKind::Releases => releases::find(job, app, sweep.keep.unwrap_or(app.keep)).await?,
        SweepKind::SqliteBackup => sqlite_backup::find(&job.host()?, sweep).await?,
        SweepKind::GiteaBranches => gitea_branches::find(job.config, sweep).await?,
        SweepKind::JobOutput => job_output::find(job, sweep).await?,
        SweepKind::Command => {
            let argv = sweep.run.as_deref().unwrap_or_default();
            let listed = vec![format!("run {}", command_line(argv))];
            say(lines, format!("would {}", listed[0])).await;
            return record::listed(job, name, dry_run, &listed).await;
        }
    };
    for kept in &found.kept {
        say(lines, format!("keep {kept}")).await;
    }
    let listed: Vec<String> = found.items.iter().map(Item::label).collect();
    record::listed(job, name, dry_run, &listed).await?;
    if dry_run {
        for item in &found.items {
            let why = match item {
                Item::DeleteBranch { why, .. } => format!(" ({why})"),
                _ => String::new(),
            };
            say(lines, format!("would {}{why}", item.label())).await;
        }
        say(lines, count("would", listed.len())).await;
        return Ok(());
    }
    let (todo, changed) = match previewed {
        Some(preview) => compare(found.items, preview),
        None => (found.items, None),
    };
    if let Some(changed) = &changed {
        say(lines, changed.clone()).await;
    }
    let mut done = Vec::new();
    let mut failure = None;
    for item in &todo {
        match apply(job, item).await {
            Ok(did) => {
                say(lines, did.clone()).await;
                done.push(did);
            }
            Err(e) => {
                failure = Some(format!(
                    "could not {}: {}",
                    item.label(),
                    e.public_message()
                ));
                break;
            }
        }
    }
    record::done(job.db, job.job, &done, changed.as_deref()).await?;
    match failure {
        Some(failure) => Err(Error::Conflict(failure)),
        None => {
            say(lines, count("did", done.len())).await;
            Ok(())
        }
    }
}

/// The cleanup step at the end of a `releases` deploy: the `releases`
/// sweep's rule with `keep`, run at once without a dry run (the rule never
/// removes current or the rollback target). It prints what it did or why
/// it could not; either way the deploy stands.
pub async fn after_deploy(job: &SweepJob<'_>, keep: usize, lines: &Lines) -> Vec<String> {
    let app = match job.app() {
        Ok(app) => app,
        Err(e) => return vec![format!("no cleanup: {}", e.public_message())],
    };
    let found = match releases::find(job, app, keep).await {
        Ok(found) => found,
        Err(e) => return vec![format!("cleanup skipped: {}", e.public_message())],
    };
    for kept in &found.kept {
        say(lines, format!("keep {kept}")).await;
    }
    let mut said = Vec::new();
    for item in &found.items {
        match apply(job, item).await {
            Ok(did) => say(lines, did).await,
            Err(e) => {
                said.push(format!(
                    "cleanup stopped: could not {}: {}",
                    item.label(),
                    e.public_message()
                ));
                break;
            }
        }
    }
    said
}

fn count(verb: &str, n: usize) -> String {
    match (verb, n) {
        ("would", 0) => "nothing to do".into(),
        ("would", n) => format!("{n} thing{} to do", if n == 1 { "" } else { "s" }),
        (_, 0) => "nothing done".into(),
        (_, n) => format!("done: {n} thing{}", if n == 1 { "" } else { "s" }),
    }
}

/// What a run does after dry run `preview`: only what both lists have; and
/// a sentence on what differs, if anything does.
fn compare(items: Vec<Item>, preview: &Preview) -> (Vec<Item>, Option<String>) {
    let now: Vec<String> = items.iter().map(Item::label).collect();
    let gone: Vec<&String> = preview.items.iter().filter(|l| !now.contains(l)).collect();
    let new: Vec<&String> = now.iter().filter(|l| !preview.items.contains(l)).collect();
    let todo = items
        .into_iter()
        .filter(|item| preview.items.contains(&item.label()))
        .collect();
    if gone.is_empty() && new.is_empty() {
        return (todo, None);
    }
    let mut said = format!("things changed since the dry run (job {}):", preview.job);
    if !gone.is_empty() {
        let gone: Vec<&str> = gone.iter().map(|s| s.as_str()).collect();
        said.push_str(&format!(
            " no longer due, so not done: {};",
            gone.join("; ")
        ));
    }
    if !new.is_empty() {
        let new: Vec<&str> = new.iter().map(|s| s.as_str()).collect();
        said.push_str(&format!(
            " newly due but not in the dry run, so left for the next run: {};",
            new.join("; ")
        ));
    }
    said.pop();
    (todo, Some(said))
}

/// Does one item; what was done, in the past tense.
async fn apply(job: &SweepJob<'_>, item: &Item) -> Result<String> {
    match item {
        Item::RemoveRelease(dir) => releases::remove(&job.host()?, dir).await,
        Item::CreateBackup { database, dir } => {
            sqlite_backup::create(&job.host()?, database, dir).await
        }
        Item::RemoveBackup(file) => sqlite_backup::remove(&job.host()?, file).await,
        Item::DeleteBranch { repo, branch, .. } => {
            gitea_branches::delete(job.config, repo, branch).await
        }
        Item::PruneOutput { job: id } => job_output::prune(job.db, *id).await,
    }
}
