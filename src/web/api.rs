//! The JSON API of apps and their actions (DESIGN.md "The contract"):
//! `GET /api/apps`, `POST /api/apps/{app}/actions/{name}/run`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::Json;
use super::apps::AppCard;
use crate::auth::{Actor, Role};
use crate::jobs::Job;
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps", get(list))
        .route("/api/apps/{app}/actions/{action}/run", post(run_action))
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
    let apps = super::apps::visible(&ctx, &actor).await?;
    Ok(Json(
        apps.into_iter()
            .map(|(card, last)| AppJson::new(card, last))
            .collect(),
    ))
}

/// An action takes no parameters; a body, if sent, must be an empty JSON
/// object, so a client that believes it is passing something learns that
/// it is not.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunAction {}

/// `POST /api/apps/{app}/actions/{name}/run` → `202 {"job": id}`.
async fn run_action(
    State(ctx): State<Context>,
    Path((app, action)): Path<(String, String)>,
    actor: Actor,
    _body: Option<Json<RunAction>>,
) -> Result<impl IntoResponse> {
    let job = crate::ops::actions::run(&ctx, &actor, &app, &action).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/jobs/{job}"))],
        Json(serde_json::json!({ "job": job })),
    ))
}
