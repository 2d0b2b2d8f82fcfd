//! The dashboard (`/`: every app the actor may view, its health at a
//! glance, one button per action, its last job), an app's page
//! (`/apps/{app}`: health, deploys and releases, actions, secrets, sweeps,
//! who holds the app and who waits, job history), the health fragment
//! both load lazily, and the action buttons' target.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::Serialize;

use super::page::{AppCard, JobLine};
use super::{Json, Page};
use crate::auth::{Actor, Role};
use crate::jobs::Job;
use crate::{Context, Result};

/// How many recent jobs an app's page lists; `/apps/{app}/jobs` has them all.
const RECENT: i64 = 10;

pub fn router() -> Router<Context> {
    Router::new()
        .route("/", get(dashboard))
        .route("/apps/{app}", get(show))
        .route("/apps/{app}/health", get(health))
        .route("/api/apps", get(list))
}

#[derive(Template, WebTemplate)]
#[template(path = "apps/index.html")]
struct Dashboard {
    page: Page,
    apps: Vec<AppCard>,
}

/// The apps `actor` may view, in config order, with their last job.
pub async fn visible(ctx: &Context, actor: &Actor) -> Result<Vec<(AppCard, Option<Job>)>> {
    let mut cards = Vec::new();
    for app in &ctx.config.apps {
        if actor.role < app.required_role("view") {
            continue;
        }
        let last = ctx.jobs.recent(Some(&app.name), 1).await?.pop();
        let mut card = AppCard::new(app, actor);
        card.last_job = last.as_ref().map(JobLine::from);
        cards.push((card, last));
    }
    Ok(cards)
}

async fn dashboard(State(ctx): State<Context>, actor: Actor, page: Page) -> Result<Dashboard> {
    let apps = visible(&ctx, &actor)
        .await?
        .into_iter()
        .map(|(card, _)| card)
        .collect();
    Ok(Dashboard { page, apps })
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
    deploy: Option<super::deploy::DeployCard>,
    /// The mutating job holding the app, and those waiting, in order.
    running: Option<JobLine>,
    waiting: Vec<JobLine>,
    history: Vec<JobLine>,
    /// Each secret with its fingerprint and last rotation (`apps/_secrets.html`).
    secrets: Vec<super::secrets::SecretRow>,
    sweeps: Vec<super::sweeps::SweepCard>,
}

async fn show(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
    page: Page,
) -> Result<AppPage> {
    let app = ctx.app(&name)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    let queue = ctx.jobs.queue(&app.name).await?;
    let history = ctx.jobs.recent(Some(&app.name), RECENT).await?;
    let mut card = AppCard::new(app, &actor);
    card.list_choices(&crate::host::Host::of(&ctx.config, app)?, app)
        .await;
    Ok(AppPage {
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
        deploy: super::deploy::card(&ctx, app, &actor).await?,
        running: queue.running.as_ref().map(JobLine::from),
        waiting: queue.waiting.iter().map(JobLine::from).collect(),
        history: history.iter().map(JobLine::from).collect(),
        secrets: super::secrets::rows(&ctx, app, &actor).await?,
        sweeps: super::sweeps::cards(&ctx, app, &actor).await?,
    })
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
