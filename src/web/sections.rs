//! What the app page shows in its Deploy, Secrets and Sweeps sections,
//! built from the release log, the deploy parameters, the app's secrets
//! and its sweeps (with a `sqlite-backup` sweep's backups and their
//! Restore buttons). Shared by
//! the app page (`apps.rs`) and the sweeps API, so that no page file
//! imports another: the section's buttons and their routes stay in
//! `deploy.rs`, `secrets.rs` and `sweeps.rs`.

use serde::Serialize;

use super::Moment;
use super::page::{ParamField, param_fields};
use crate::auth::{Actor, Role};
use crate::config::{App, Strategy, SweepKind};
use crate::host::Host;
use crate::ops::schedule::next_run;
use crate::ops::sweeps::{self, LastRun};
use crate::ops::{restore, secret_age, secrets};
use crate::releases::{self, Release};
use crate::steps::params::Lookup;
use crate::{Context, Result};

/// How many releases the app page lists.
const HISTORY: i64 = 20;

/// The app page's Deploy section (`apps/_deploy.html`).
pub struct DeployCard {
    pub branch: String,
    pub live: Option<ReleaseLine>,
    pub history: Vec<ReleaseLine>,
    pub may_deploy: bool,
    pub may_rollback: bool,
    /// `command` strategy without a repository: the form names a tag and
    /// deploys it, with no "what ships" (there are no commits to list).
    pub tag_only: bool,
    /// Production asks for the app's name before deploying.
    pub production: bool,
}

/// One row of the release history.
pub struct ReleaseLine {
    pub id: i64,
    pub job: i64,
    pub kind: String,
    pub git_ref: String,
    pub short_sha: String,
    pub actor: String,
    pub at: Moment,
    pub outcome: String,
    pub good: bool,
    /// The release live now.
    pub live: bool,
    /// Its commit is what runs now (the live release, or an earlier one of
    /// the same commit): nothing to roll back to.
    pub runs_now: bool,
    pub dir: String,
    /// The question its Rollback button asks.
    pub confirm: String,
}

/// What the app page shows of deploys; `None` for an app that only runs
/// actions.
pub async fn deploy_card(ctx: &Context, app: &App, actor: &Actor) -> Result<Option<DeployCard>> {
    if !app.deploys() {
        return Ok(None);
    }
    let tag_only = app.strategy == Strategy::Command && app.repo.is_none();
    let log = releases::list(&ctx.db, &app.name, HISTORY).await?;
    let live = log
        .iter()
        .find(|r| r.state == crate::jobs::State::Succeeded);
    let live_id = live.map(|r| r.id);
    let line = |r: &Release| ReleaseLine {
        id: r.id,
        job: r.job,
        kind: r.kind.clone(),
        git_ref: r.git_ref.clone(),
        short_sha: r.what().to_owned(),
        actor: r.actor.clone(),
        at: Moment::from_millis(r.created_at),
        outcome: r.outcome(),
        good: r.good(),
        live: Some(r.id) == live_id,
        runs_now: live.is_some_and(|live| live.runs_same(r)),
        dir: r.dir.clone().unwrap_or_default(),
        confirm: format!(
            "Roll {} ({}) back to release {} ({}, {} by {})?",
            app.name,
            app.environment,
            r.id,
            r.what(),
            r.kind,
            r.actor
        ),
    };
    let history: Vec<ReleaseLine> = log.iter().map(line).collect();
    Ok(Some(DeployCard {
        branch: app.branch.clone(),
        live: log.iter().find(|r| Some(r.id) == live_id).map(line),
        history,
        may_deploy: actor.role >= app.required_role("deploy"),
        may_rollback: actor.role >= app.required_role("rollback"),
        tag_only,
        production: super::page::AppCard::is_production_environment(&app.environment),
    }))
}

/// The Deploy form's fields for the app's deploy parameters (`command`
/// strategy), with what each offers.
pub async fn deploy_fields(ctx: &Context, app: &App) -> Result<Vec<ParamField>> {
    if app.deploy_params.is_empty() {
        return Ok(Vec::new());
    }
    let host = Host::of(&ctx.config, app)?;
    let look = Lookup {
        app,
        host: &host,
        db: &ctx.db,
    };
    Ok(param_fields(&look, &app.deploy_params, "deploy-param").await)
}

/// One secret on the app page.
pub struct SecretRow {
    pub name: String,
    /// `KEY in /path/.env`, or the key file.
    pub place: String,
    pub fingerprint: String,
    /// Entered by hand (`generate = "set"`): a Set link, not a Rotate button.
    pub set_by_hand: bool,
    /// The question asked before rotating: the note, or a plain one.
    pub confirm: String,
    pub needs: Role,
    pub allowed: bool,
    pub webhook_repo: Option<String>,
    pub github_repo: Option<String>,
    /// The `store` command's line.
    pub store: Option<String>,
    /// Who rotated it last, and when.
    pub last_rotated: Option<(String, Moment)>,
    /// How it stands against its `max_age`, if it has one.
    pub due: Option<DueLine>,
    /// When its `schedule` rotates it next.
    pub next_rotation: Option<Moment>,
}

/// A secret's age against its `max_age`, as the pages show it.
pub struct DueLine {
    /// "overdue by 12 days", "due in 5 days".
    pub words: String,
    pub class: &'static str,
    /// "90 days".
    pub max_age: String,
    /// The age counts from its file's last change, not a rotation.
    pub from_file: bool,
}

impl DueLine {
    fn new(age: &secret_age::Age) -> DueLine {
        DueLine {
            words: age.due.words(),
            class: age.due.class(),
            max_age: secret_age::span(age.max_age_ms),
            from_file: age
                .since
                .is_some_and(|(_, since)| since == secret_age::Since::FileChanged),
        }
    }
}

/// The app page's secrets section.
pub async fn secret_rows(ctx: &Context, app: &App, actor: &Actor) -> Result<Vec<SecretRow>> {
    Ok(secrets::list(ctx, app)
        .await?
        .into_iter()
        .map(|s| {
            let ask = format!("Rotate {} of {} ({})?", s.name, app.name, app.environment);
            SecretRow {
                confirm: if s.note.is_empty() {
                    ask
                } else {
                    format!("{ask} {}", s.note)
                },
                allowed: actor.role >= s.needs,
                needs: s.needs,
                last_rotated: s
                    .last_rotated
                    .map(|(who, at)| (who, Moment::from_millis(at))),
                due: s.age.as_ref().map(DueLine::new),
                next_rotation: s.next_rotation.map(Moment::from_millis),
                name: s.name,
                place: s.place,
                fingerprint: s.fingerprint,
                set_by_hand: s.set_by_hand,
                webhook_repo: s.webhook_repo,
                github_repo: s.github_repo,
                store: s.store,
            }
        })
        .collect())
}

/// One sweep as the app page and the API show it.
#[derive(Serialize)]
pub struct SweepCard {
    pub name: String,
    pub kind: String,
    pub schedule: Option<String>,
    pub timezone: String,
    /// Unix milliseconds.
    pub next_run: Option<i64>,
    pub last_run: Option<LastRun>,
    /// The role the buttons need, and whether the actor has it.
    pub role: Role,
    pub allowed: bool,
    /// A command sweep's parameters: the Run now form's fields.
    pub params: Vec<ParamField>,
    /// `sqlite-backup`: its backups and their Restore buttons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreCard>,
}

/// A `sqlite-backup` sweep's backups, newest first, each of which Restore
/// puts back.
#[derive(Serialize)]
pub struct RestoreCard {
    pub backups: Vec<BackupLine>,
    /// Why they could not be listed.
    pub error: Option<String>,
    /// The role Restore needs (`permissions.restore`, owner by default),
    /// and whether the actor has it.
    pub role: Role,
    pub allowed: bool,
}

/// One backup on the app page.
#[derive(Serialize)]
pub struct BackupLine {
    /// Its file name: what a Restore sends.
    pub name: String,
    pub bytes: u64,
    /// When it was taken, Unix milliseconds.
    pub taken: i64,
    /// The question its Restore button asks.
    #[serde(skip)]
    pub confirm: String,
}

impl BackupLine {
    pub fn taken_at(&self) -> Moment {
        Moment::from_millis(self.taken)
    }

    /// `12.3 MB`, `512 bytes`.
    pub fn size(&self) -> String {
        let units = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
        match units.iter().find(|(_, n)| self.bytes as f64 >= *n) {
            Some((unit, n)) => format!("{:.1} {unit}", self.bytes as f64 / n),
            None => format!("{} bytes", self.bytes),
        }
    }
}

/// The Restore part of sweep `sweep` of `app`, if it makes backups.
async fn restore_card(
    ctx: &Context,
    app: &App,
    sweep: &crate::config::Sweep,
    actor: &Actor,
) -> Option<RestoreCard> {
    if sweep.kind != SweepKind::SqliteBackup {
        return None;
    }
    let role = app.required_role("restore");
    let (backups, error) = match restore::backups(ctx, app, &sweep.name).await {
        Ok(backups) => (backups, None),
        Err(e) => (Vec::new(), Some(e.public_message())),
    };
    let units = if app.units.is_empty() {
        String::new()
    } else {
        format!(" {} will be stopped meanwhile.", app.units.join(", "))
    };
    let backups = backups
        .into_iter()
        .map(|b| {
            let mut line = BackupLine {
                confirm: String::new(),
                name: b.name,
                bytes: b.bytes,
                taken: b.taken,
            };
            line.confirm = format!(
                "Restore the database of {} ({}) from backup {} ({}, taken {})?{units} The database as it is now is kept as a backup first.",
                app.name,
                app.environment,
                line.name,
                line.size(),
                line.taken_at().utc
            );
            line
        })
        .collect();
    Some(RestoreCard {
        backups,
        error,
        role,
        allowed: actor.role >= role,
    })
}

impl SweepCard {
    pub fn next_run_at(&self) -> Option<Moment> {
        self.next_run.map(Moment::from_millis)
    }

    pub fn last_run_at(&self) -> Option<Moment> {
        self.last_run
            .as_ref()
            .map(|r| Moment::from_millis(r.job.created_at))
    }
}

/// The app's sweeps, in config order.
pub async fn sweep_cards(ctx: &Context, app: &App, actor: &Actor) -> Result<Vec<SweepCard>> {
    let now = chrono::Utc::now();
    let host = Host::of(&ctx.config, app)?;
    let look = Lookup {
        app,
        host: &host,
        db: &ctx.db,
    };
    let mut cards = Vec::new();
    for sweep in &app.sweeps {
        let role = sweep.role.unwrap_or_else(|| app.required_role("sweep"));
        let form = format!("sweep-{}-param", sweep.name);
        cards.push(SweepCard {
            name: sweep.name.clone(),
            kind: sweep.kind.as_str().into(),
            schedule: sweep.schedule.clone(),
            timezone: sweep.timezone.clone().unwrap_or_else(|| "UTC".into()),
            next_run: next_run(sweep, now).map(|t| t.timestamp_millis()),
            last_run: sweeps::last_run(ctx, &app.name, &sweep.name).await?,
            role,
            allowed: actor.role >= role,
            params: param_fields(&look, &sweep.params, &form).await,
            restore: restore_card(ctx, app, sweep, actor).await,
        });
    }
    Ok(cards)
}
