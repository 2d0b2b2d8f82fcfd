//! Sweeps: the buttons of the app page's Sweeps section (`Dry run`, `Run
//! now` with a command sweep's parameter fields, a backup's `Restore`),
//! the JSON API `POST /api/apps/{app}/sweeps/{name}/run {"dry_run",
//! "params"?}`, `POST /api/apps/{app}/sweeps/{name}/restore {"backup"}`
//! and `GET /api/apps/{app}/sweeps` (each sweep as the page shows it:
//! `sections::SweepCard`).

use std::collections::BTreeMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::Json;
use super::page::{accepted, button_params, show_job};
use super::sections::{SweepCard, sweep_cards};
use crate::auth::Actor;
use crate::ops::{restore, sweeps};
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/apps/{app}/sweeps/{sweep}/dry-run", post(dry_run_button))
        .route("/apps/{app}/sweeps/{sweep}/run", post(run_button))
        .route("/api/apps/{app}/sweeps", get(list))
        .route("/api/apps/{app}/sweeps/{sweep}/run", post(run_api))
        .route("/apps/{app}/sweeps/{sweep}/restore", post(restore_button))
        .route("/api/apps/{app}/sweeps/{sweep}/restore", post(restore_api))
}

/// `GET /api/apps/{app}/sweeps`.
async fn list(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    actor: Actor,
) -> Result<Json<Vec<SweepCard>>> {
    let app = ctx.app(&app)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    Ok(Json(sweep_cards(&ctx, app, &actor).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    /// Required: a client must say whether it means to change anything.
    dry_run: bool,
    /// A command sweep's parameters (`{"tag": "v2"}`), for a real run.
    #[serde(default)]
    params: BTreeMap<String, String>,
}

/// `POST /api/apps/{app}/sweeps/{name}/run {"dry_run", "params"?}` →
/// `202 {"job": id}`.
async fn run_api(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    Json(body): Json<Run>,
) -> Result<impl IntoResponse> {
    let job = sweeps::request_with(&ctx, &actor, &app, &sweep, body.dry_run, &body.params).await?;
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

/// Run now, with the sweep's parameter fields (`param.<name>`).
async fn run_button(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    headers: HeaderMap,
    form: std::result::Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Result<Response> {
    let params = button_params(form)?;
    let job = sweeps::request_with(&ctx, &actor, &app, &sweep, false, &params).await?;
    Ok(show_job(job, &headers))
}

/// `{"backup": "<file name>"}`: one of the sweep's backups, by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restore {
    backup: String,
}

/// `POST /api/apps/{app}/sweeps/{name}/restore {"backup"}` → `202 {"job": id}`.
async fn restore_api(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    Json(body): Json<Restore>,
) -> Result<impl IntoResponse> {
    let job = restore::request(&ctx, &actor, &app, &sweep, &body.backup).await?;
    Ok(accepted(job))
}

/// The form's fields besides the page's own (`csrf`).
#[derive(Deserialize)]
struct RestoreForm {
    backup: String,
}

/// A backup's Restore button (asked to confirm): starts the job, shows it.
async fn restore_button(
    State(ctx): State<Context>,
    Path((app, sweep)): Path<(String, String)>,
    actor: Actor,
    headers: HeaderMap,
    form: Result<Form<RestoreForm>, FormRejection>,
) -> Result<Response> {
    let Form(form) =
        form.map_err(|e| Error::BadRequest(format!("the form names no backup: {e}")))?;
    let job = restore::request(&ctx, &actor, &app, &sweep, &form.backup).await?;
    Ok(show_job(job, &headers))
}
