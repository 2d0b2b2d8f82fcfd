//! An app's actions (`[[app.action]]`): the button on the app's page and
//! the dashboard (`POST /apps/{app}/actions/{name}/run`, answered with the
//! job's page) and the JSON API (`POST /api/apps/{app}/actions/{name}/run`
//! → `202 {"job": id}`). Both start the same job (`ops::actions`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::Json;
use super::page::{accepted, show_job};
use crate::auth::Actor;
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/apps/{app}/actions/{action}/run", post(run_action))
        .route("/api/apps/{app}/actions/{action}/run", post(run_action_api))
}

/// An action button: starts the job and shows it. htmx gets `HX-Redirect`
/// (it would otherwise follow the redirect inside its request and swap the
/// job page into the button).
async fn run_action(
    State(ctx): State<Context>,
    Path((app, action)): Path<(String, String)>,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response> {
    let job = crate::ops::actions::run(&ctx, &actor, &app, &action).await?;
    Ok(show_job(job, &headers))
}

/// An action takes no parameters; a body, if sent, must be an empty JSON
/// object, so a client that believes it is passing something learns that
/// it is not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunAction {}

/// `POST /api/apps/{app}/actions/{name}/run` → `202 {"job": id}`.
async fn run_action_api(
    State(ctx): State<Context>,
    Path((app, action)): Path<(String, String)>,
    actor: Actor,
    _body: Option<Json<RunAction>>,
) -> Result<impl IntoResponse> {
    let job = crate::ops::actions::run(&ctx, &actor, &app, &action).await?;
    Ok(accepted(job))
}
