//! An app's actions (`[[app.action]]`): the button on the app's page and
//! the dashboard (`POST /apps/{app}/actions/{name}/run`, answered with the
//! job's page) and the JSON API (`POST /api/apps/{app}/actions/{name}/run`
//! → `202 {"job": id}`). Both start the same job (`ops::actions`).

use std::collections::BTreeMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use super::Json;
use super::page::{accepted, button_params, show_job};
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
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Result<Response> {
    let params = button_params(form)?;
    let job = crate::ops::actions::run_with(&ctx, &actor, &app, &action, &params).await?;
    Ok(show_job(job, &headers))
}

/// `{"params": {"tag": "v2"}}`; any other key is refused, so a client
/// that believes it is passing something learns that it is not.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunAction {
    #[serde(default)]
    params: BTreeMap<String, String>,
}

/// `POST /api/apps/{app}/actions/{name}/run` → `202 {"job": id}`.
async fn run_action_api(
    State(ctx): State<Context>,
    Path((app, action)): Path<(String, String)>,
    actor: Actor,
    body: Option<Json<RunAction>>,
) -> Result<impl IntoResponse> {
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let job = crate::ops::actions::run_with(&ctx, &actor, &app, &action, &body.params).await?;
    Ok(accepted(job))
}
