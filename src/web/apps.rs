//! The dashboard (`/`: every app the actor may view, its health at a
//! glance, its deploys of the last 30 days, one button per action, its
//! last job, its overdue secrets), an app's page (`/apps/{app}`: health,
//! deploys and releases, actions, secrets, sweeps, who holds the app and
//! who waits, job history, insights), the health fragment both load
//! lazily (and its JSON, `GET /api/apps/{app}/health`), and the action
//! buttons' target.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::figures::{InsightsView, Spark};
use super::page::{AppCard, AwaitingLine, JobLine, ParamField};
use super::sections::{self, DeployApproval, DeployCard, SecretRow, SweepCard};
use super::{Json, Moment, Page};
use crate::auth::{Actor, Role};
use crate::config::App;
use crate::insights::{self, Range};
use crate::jobs::{Job, State as JobState};
use crate::ops::secret_age::{self, Due};
use crate::ops::what_ships::{self, WhatShips};
use crate::steps::params::Lookup;
use crate::{Context, Result};

/// How many recent jobs an app's page lists; `/apps/{app}/jobs` has them all.
const RECENT: i64 = 10;

pub fn router() -> Router<Context> {
    Router::new()
        .route("/", get(dashboard))
        .route("/apps/{app}", get(show))
        .route("/apps/{app}/health", get(health))
        .route("/api/apps", get(list))
        .route("/api/apps/{app}/health", get(health_api))
        .route("/apps/{app}/now", get(now))
}

#[derive(Template, WebTemplate)]
#[template(path = "apps/index.html")]
struct Dashboard {
    page: Page,
    /// Each card, how the app is now, and its secrets to rotate.
    apps: Vec<(AppCard, Now, DueSecrets)>,
    /// Requests the viewer may approve, or asked for, still awaiting.
    awaiting: Vec<AwaitingLine>,
}

/// An app's secrets overdue, due soon or of unknown age: name, how it stands.
type DueSecrets = Vec<(String, Due)>;

/// A card's answer to "how is it now?": what runs, the last deploy (a
/// rotation or a failing diagnostic action does not hide it), what runs or
/// waits on it. Refreshed live (`apps/_now.html`).
#[derive(Template, WebTemplate)]
#[template(path = "apps/_now.html")]
pub struct Now {
    app: String,
    /// The live release: short commit and ref.
    live: Option<(String, String)>,
    /// The newest deploy or rollback: kind, ref, who, when, outcome, job.
    last_deploy: Option<(String, String, String, Moment, String, i64)>,
    /// Whether the newest deploy or rollback ended well.
    last_deploy_ok: bool,
    running: Option<JobLine>,
    queued: usize,
    last_job: Option<JobLine>,
    /// Its deploys of the last 30 days, for an app that deploys.
    deploys: Option<Spark>,
    /// Its uptime over the last 24 hours, for an app the health watch probes.
    uptime: Option<String>,
}

impl Now {
    async fn of(ctx: &Context, app: &App) -> Result<Now> {
        let live = crate::releases::current(&ctx.db, &app.name)
            .await?
            .map(|r| (r.short_sha().to_owned(), r.git_ref.clone()));
        let newest = crate::releases::list(&ctx.db, &app.name, 1).await?.pop();
        let queue = ctx.jobs.queue(&app.name).await?;
        let last_job = ctx.jobs.recent(Some(&app.name), 1).await?.pop();
        let now = chrono::Utc::now().timestamp_millis();
        let deploys = if app.deploys() {
            let recent = insights::recent_deploys(&ctx.db, &app.name, now).await?;
            Some(Spark::new(&app.name, &recent))
        } else {
            None
        };
        Ok(Now {
            app: app.name.clone(),
            live,
            last_deploy_ok: newest
                .as_ref()
                .is_some_and(|r| r.state == JobState::Succeeded || !r.state.is_final()),
            last_deploy: newest.map(|r| {
                (
                    r.kind.clone(),
                    r.git_ref.clone(),
                    r.actor.clone(),
                    Moment::from_millis(r.created_at),
                    r.outcome(),
                    r.job,
                )
            }),
            running: queue.running.as_ref().map(JobLine::from),
            queued: queue.waiting.len(),
            last_job: last_job.as_ref().map(JobLine::from),
            deploys,
            uptime: super::uptime::last_day(&ctx.db, app, now).await?,
        })
    }
}

/// `GET /apps/{app}/now`: the card's live part, for its refresh.
async fn now(State(ctx): State<Context>, Path(name): Path<String>, actor: Actor) -> Result<Now> {
    let app = ctx.app(&name)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    Now::of(&ctx, app).await
}

/// The apps `actor` may view, in config order, with their last job.
pub async fn visible(ctx: &Context, actor: &Actor) -> Result<Vec<(AppCard, Option<Job>)>> {
    let mut cards = Vec::new();
    for app in ctx.viewable(actor) {
        let last = ctx.jobs.recent(Some(&app.name), 1).await?.pop();
        cards.push((AppCard::new(app, actor), last));
    }
    Ok(cards)
}

async fn dashboard(State(ctx): State<Context>, actor: Actor, page: Page) -> Result<Dashboard> {
    let mut apps = Vec::new();
    for (card, _) in visible(&ctx, &actor).await? {
        let app = ctx.app(&card.name)?;
        let due = secret_age::flagged(&ctx, app).await?;
        apps.push((card, Now::of(&ctx, app).await?, due));
    }
    let viewable: Vec<&App> = ctx.viewable(&actor).collect();
    let awaiting = AwaitingLine::list(&ctx, &actor, &viewable, false).await?;
    Ok(Dashboard {
        page,
        apps,
        awaiting,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "apps/show.html")]
struct AppPage {
    page: Page,
    app: AppCard,
    /// Where it deploys from, for apps that deploy (not only run actions):
    /// `(repository, branch, strategy)`.
    source: Option<(String, String, String)>,
    units: Vec<String>,
    /// What runs, the deploy form and the release history (`apps/_deploy.html`).
    deploy: Option<DeployCard>,
    /// The mutating job holding the app, and those waiting, in order.
    running: Option<JobLine>,
    waiting: Vec<JobLine>,
    /// Its requests awaiting approval (they hold no place in the queue).
    awaiting: Vec<AwaitingLine>,
    history: Vec<JobLine>,
    /// Each secret with its fingerprint and last rotation (`apps/_secrets.html`).
    secrets: Vec<SecretRow>,
    sweeps: Vec<SweepCard>,
    /// The ref typed in the deploy form without JavaScript (the form then
    /// reloads this page with `?ref=`), and what ships for it or why not,
    /// shown under the form as htmx would have put it there.
    typed_ref: Option<String>,
    what_ships: Option<std::result::Result<WhatShips, String>>,
    /// Production asks for the app's name before deploying.
    production: bool,
    /// Its figures over the range asked for (`insights/_section.html`).
    insights: InsightsView,
    /// The fields of the app's deploy parameters, in the Deploy form.
    deploy_params: Vec<ParamField>,
    /// Whether deploys wait for an approval, said in the Deploy form.
    deploy_approval: Option<DeployApproval>,
    /// The health watch's uptime bars (none without an `interval`).
    uptime: Vec<super::charts::Chart>,
}

#[derive(Deserialize)]
struct ShowQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    /// The insights' range: `7d`, `30d` (default) or `90d`.
    range: Option<String>,
}

async fn show(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    Query(query): Query<ShowQuery>,
    actor: Actor,
    page: Page,
) -> Result<(StatusCode, AppPage)> {
    let app = ctx.app(&name)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    let range = Range::parse(query.range.as_deref())?;
    let queue = ctx.jobs.queue(&app.name).await?;
    let history = ctx.jobs.recent(Some(&app.name), RECENT).await?;
    let deploy = sections::deploy_card(&ctx, app, &actor).await?;
    let typed_ref = query
        .git_ref
        .filter(|_| deploy.as_ref().is_some_and(|d| d.may_deploy));
    let (status, what_ships) = match &typed_ref {
        None => (StatusCode::OK, None),
        Some(typed) => match what_ships::preview(&ctx, &actor, &app.name, typed.trim()).await {
            Ok(ships) => (StatusCode::OK, Some(Ok(ships))),
            Err(e @ (crate::Error::Database(_) | crate::Error::Internal(_))) => return Err(e),
            Err(e) => (e.status(), Some(Err(e.public_message()))),
        },
    };
    let now = chrono::Utc::now().timestamp_millis();
    let figures = insights::of(&ctx.db, std::slice::from_ref(&app.name), range, now).await?;
    let mut card = AppCard::new(app, &actor);
    let host = crate::host::Host::of(&ctx.config, app)?;
    let look = Lookup {
        app,
        host: &host,
        db: &ctx.db,
    };
    card.list_choices(&look, app).await;
    let deploy_params = if deploy.as_ref().is_some_and(|d| d.may_deploy) {
        sections::deploy_fields(&ctx, app).await?
    } else {
        Vec::new()
    };
    let page = AppPage {
        page,
        app: card,
        source: app.repo.as_ref().map(|repo| {
            (
                repo.display().to_string(),
                app.branch.clone(),
                format!("{:?}", app.strategy).to_lowercase(),
            )
        }),
        units: app.units.clone(),
        deploy,
        running: queue.running.as_ref().map(JobLine::from),
        waiting: queue.waiting.iter().map(JobLine::from).collect(),
        awaiting: AwaitingLine::list(&ctx, &actor, &[app], true).await?,
        history: history.iter().map(JobLine::from).collect(),
        secrets: sections::secret_rows(&ctx, app, &actor).await?,
        sweeps: sections::sweep_cards(&ctx, app, &actor).await?,
        typed_ref,
        what_ships,
        production: AppCard::is_production_environment(&app.environment),
        insights: InsightsView::new(&figures, format!("/apps/{}#insights", app.name), false),
        deploy_params,
        deploy_approval: DeployApproval::of(app, &actor),
        uptime: super::uptime::bars(&ctx.db, app, now).await?,
    };
    Ok((status, page))
}

/// The health fragment (`apps/_health.html`): units and a quick health
/// check, loaded after the page so a hung app never slows it.
#[derive(Template, WebTemplate)]
#[template(path = "apps/_health.html")]
struct HealthFragment {
    health: crate::ops::health::AppHealth,
    host: String,
}

async fn health(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
) -> Result<HealthFragment> {
    let app = ctx.app(&name)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    Ok(HealthFragment {
        health: crate::ops::health::glance(&ctx.config, app).await,
        host: app.host.clone(),
    })
}

/// `GET /api/apps/{app}/health`: what the glance shows, as JSON.
#[derive(Serialize)]
struct HealthJson {
    app: String,
    /// `healthy`, `unhealthy` or `unknown`.
    verdict: &'static str,
    units: Vec<UnitJson>,
    /// Each health check, in config order.
    checks: Vec<CheckJson>,
}

#[derive(Serialize)]
struct UnitJson {
    unit: String,
    /// `active`, `failed`, …; absent when systemd could not be asked.
    active_state: Option<String>,
    sub_state: Option<String>,
    main_pid: Option<u32>,
    /// Why the state is unknown.
    error: Option<String>,
}

#[derive(Serialize)]
struct CheckJson {
    name: String,
    url: String,
    ok: bool,
    /// "answered 200", or why it failed.
    said: String,
}

async fn health_api(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
) -> Result<Json<HealthJson>> {
    let app = ctx.app(&name)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    let health = crate::ops::health::glance(&ctx.config, app).await;
    Ok(Json(HealthJson {
        app: app.name.clone(),
        verdict: health.verdict.as_str(),
        units: health
            .units
            .into_iter()
            .map(|(unit, status)| match status {
                Ok(s) => UnitJson {
                    unit,
                    active_state: Some(s.active_state),
                    sub_state: Some(s.sub_state),
                    main_pid: s.main_pid,
                    error: None,
                },
                Err(why) => UnitJson {
                    unit,
                    active_state: None,
                    sub_state: None,
                    main_pid: None,
                    error: Some(why),
                },
            })
            .collect(),
        checks: health
            .checks
            .into_iter()
            .map(|c| CheckJson {
                ok: c.said.is_ok(),
                said: c.said.unwrap_or_else(|why| why),
                name: c.name,
                url: c.url,
            })
            .collect(),
    }))
}

#[derive(Serialize)]
struct AppJson {
    name: String,
    environment: String,
    host: String,
    actions: Vec<ActionJson>,
    last_job: Option<Job>,
}

#[derive(Serialize)]
struct ActionJson {
    name: String,
    description: String,
    role: Role,
    allowed: bool,
}

impl AppJson {
    fn new(card: AppCard, last_job: Option<Job>) -> AppJson {
        AppJson {
            name: card.name,
            environment: card.environment,
            host: card.host,
            actions: card
                .actions
                .into_iter()
                .map(|a| ActionJson {
                    name: a.name,
                    description: a.description,
                    role: a.needs,
                    allowed: a.allowed,
                })
                .collect(),
            last_job,
        }
    }
}

/// `GET /api/apps`: the apps the caller may view, with their actions and
/// last job.
async fn list(State(ctx): State<Context>, actor: Actor) -> Result<Json<Vec<AppJson>>> {
    let apps = visible(&ctx, &actor).await?;
    Ok(Json(
        apps.into_iter()
            .map(|(card, last)| AppJson::new(card, last))
            .collect(),
    ))
}
