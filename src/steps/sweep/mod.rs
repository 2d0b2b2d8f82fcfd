//! Sweep steps (DESIGN.md "Sweeps"): the runbooks' cron chores. A sweep's
//! step looks at the world, lists what it would remove or create, and —
//! unless it is a dry run — does exactly that. A real run that follows a
//! dry run computes the list again and compares: it only does what the dry
//! run listed and is still due, and says what changed in between. Every
//! list is kept (`sweep_runs`, [`record`]) for the page and for the next
//! run to compare with. A deploy's cleanup step ([`CleanupReleases`]) runs
//! the `releases` sweep's rule.
//!
//! Each kind finds its items in its own module; the file and API work is
//! in `host` (release trees, database backups, Gitea).

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Lines, Perform, StepJob, say};
use crate::config::{App, SweepKind};
use crate::error::Quoted;
use crate::host::exec::{Ended, command_line};
use crate::host::{self, Host};
use crate::{Error, Result};

mod backup;
mod gitea_branches;
mod job_output;
pub mod record;
mod releases;

/// A built-in sweep of the job's app: lists what it would remove or create
/// and, unless `dry_run`, does it — only what `previewed` (the dry run
/// before it) listed too, when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    pub sweep: String,
    pub dry_run: bool,
    pub previewed: Option<Preview>,
}

/// What a sweep's dry run listed, carried by the real run after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub job: i64,
    pub items: Vec<String>,
}

/// After a deploy went live: the `releases` sweep's rule with the app's
/// `keep`, this job's release counted as live. A failure is reported,
/// never a reason to roll a healthy release back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReleases {
    pub keep: usize,
}

impl Perform for Sweep {
    fn command_line(&self) -> String {
        let sweep = &self.sweep;
        match (&self.previewed, self.dry_run) {
            (_, true) => format!("sweep {sweep} --dry-run (list only)"),
            (Some(p), false) => format!(
                "sweep {sweep} (what dry run job {} listed, if still due)",
                p.job
            ),
            (None, false) => format!("sweep {sweep}"),
        }
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        let lines = bounds.lines.clone();
        Box::pin(bounds.in_process(async move {
            let previewed = self.previewed.as_ref();
            perform(job, &self.sweep, self.dry_run, previewed, &lines).await?;
            Ok(Vec::new())
        }))
    }
}

impl Perform for CleanupReleases {
    fn command_line(&self) -> String {
        format!("sweep releases (keep {} good releases)", self.keep)
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        let lines = bounds.lines.clone();
        Box::pin(bounds.in_process(async move { Ok(after_deploy(job, self.keep, &lines).await) }))
    }
}

/// One thing a sweep removes or creates.
#[derive(Debug, Clone)]
enum Item {
    RemoveRelease(PathBuf),
    CreateBackup {
        /// The sweep it is made for, by name.
        sweep: String,
        /// The database as messages name it.
        database: String,
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
            Item::CreateBackup { database, dir, .. } => {
                format!("create a backup of {database} in {}", dir.display())
            }
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

/// Where the job's app keeps its files: this machine or another host.
fn host(job: &StepJob<'_>) -> Result<Host> {
    Host::of(job.config, job.app()?)
}

/// The sweep `name` of `app`, or 404.
pub fn find<'a>(app: &'a App, name: &str) -> Result<&'a crate::config::Sweep> {
    app.sweeps
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::NotFound(format!("{} has no sweep named {}", app.name, Quoted(name))))
}

/// The job step of a sweep (`Work::Sweep`): lists, and unless `dry_run`,
/// does what it listed (only what `previewed` also listed, if given).
async fn perform(
    job: &StepJob<'_>,
    name: &str,
    dry_run: bool,
    previewed: Option<&Preview>,
    lines: &Lines,
) -> Result<()> {
    let app = job.app()?;
    let sweep = find(app, name)?;
    let found = match sweep.kind {
        SweepKind::Releases => releases::find(job, app, sweep.keep.unwrap_or(app.keep)).await?,
        SweepKind::SqliteBackup | SweepKind::PostgresBackup => {
            backup::find(&host(job)?, sweep).await?
        }
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
    record::done(job.db, job.id, &done, changed.as_deref()).await?;
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
async fn after_deploy(job: &StepJob<'_>, keep: usize, lines: &Lines) -> Vec<String> {
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
async fn apply(job: &StepJob<'_>, item: &Item) -> Result<String> {
    match item {
        Item::RemoveRelease(dir) => releases::remove(&host(job)?, dir).await,
        Item::CreateBackup { sweep, .. } => {
            let sweep = find(job.app()?, sweep)?;
            let (_, said) = backup::backups(sweep)?.create(&host(job)?).await?;
            Ok(said)
        }
        Item::RemoveBackup(file) => host::backup::remove(&host(job)?, file).await,
        Item::DeleteBranch { repo, branch, .. } => {
            gitea_branches::delete(job.config, repo, branch).await
        }
        Item::PruneOutput { job: id } => job_output::prune(job.db, *id).await,
    }
}
