//! Sweeps: the buttons of the app page's Sweeps section (`Dry run`, `Run
//! now`), the JSON API `POST /api/apps/{app}/sweeps/{name}/run {"dry_run"}`
//! and `GET /api/apps/{app}/sweeps`, and what the page shows of each sweep.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::page::{accepted, show_job};
use super::{Json, Moment};
use crate::auth::{Actor, Role};
use crate::config::App;
use crate::ops::schedule::next_run;
use crate::ops::sweeps::{self, LastRun};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/apps/{app}/sweeps/{sweep}/dry-run", post(dry_run_button))
        .route("/apps/{app}/sweeps/{sweep}/run", post(run_button))
        .route("/api/apps/{app}/sweeps", get(list))
        .route("/api/apps/{app}/sweeps/{sweep}/run", post(run_api))
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
pub async fn cards(ctx: &Context, app: &App, actor: &Actor) -> Result<Vec<SweepCard>> {
    let now = chrono::Utc::now();
    let mut cards = Vec::new();
    for sweep in &app.sweeps {
        let role = sweep.role.unwrap_or_else(|| app.required_role("sweep"));
        cards.push(SweepCard {
            name: sweep.name.clone(),
            kind: sweep.kind.as_str().into(),
            schedule: sweep.schedule.clone(),
            timezone: sweep.timezone.clone().unwrap_or_else(|| "UTC".into()),
            next_run: next_run(sweep, now).map(|t| t.timestamp_millis()),
            last_run: sweeps::last_run(ctx, &app.name, &sweep.name).await?,
            role,
            allowed: actor.role >= role,
        });
    }
    Ok(cards)
}

/// `GET /api/apps/{app}/sweeps`.
async fn list(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    actor: Actor,
) -> Result<Json<Vec<SweepCard>>> {
    let app = ctx.app(&app)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    Ok(Json(cards(&ctx, app, &actor).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    /// Required: a client must say whether it means to change anything.
    dry_run: bool,
}

/// `POST /api/apps/{app}/sweeps/{name}/run {"dry_run"}` → `202 {"job": id}`.
async fn run_api(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    Json(body): Json<Run>,
) -> Result<impl IntoResponse> {
    let job = sweeps::request(&ctx, &actor, &app, &sweep, body.dry_run).await?;
    Ok(accepted(job))
}

async fn dry_run_button(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response> {
    let job = sweeps::request(&ctx, &actor, &app, &sweep, true).await?;
    Ok(show_job(job, &headers))
}

async fn run_button(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response> {
    let job = sweeps::request(&ctx, &actor, &app, &sweep, false).await?;
    Ok(show_job(job, &headers))
}
