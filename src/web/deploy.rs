//! The JSON API of deploys and rollbacks (DESIGN.md "The contract"):
//! `POST /api/apps/{app}/deploy {"ref"}`, `POST /api/apps/{app}/rollback
//! {"release"?}` → `202 {"job": id}`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde::Deserialize;

use super::Json;
use crate::auth::Actor;
use crate::ops::{deploy, rollback};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps/{app}/deploy", post(deploy_ref))
        .route("/api/apps/{app}/rollback", post(roll_back))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deploy {
    /// A branch, tag or commit.
    #[serde(rename = "ref")]
    git_ref: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rollback {
    /// A release id from the release log; the previous good release when absent.
    release: Option<i64>,
}

async fn deploy_ref(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    actor: Actor,
    Json(body): Json<Deploy>,
) -> Result<impl IntoResponse> {
    let job = deploy::request(&ctx, &actor, &app, &body.git_ref).await?;
    Ok(accepted(job))
}

async fn roll_back(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    actor: Actor,
    body: Option<Json<Rollback>>,
) -> Result<impl IntoResponse> {
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let job = rollback::request(&ctx, &actor, &app, body.release).await?;
    Ok(accepted(job))
}

/// `202 {"job": id}` with the job's address.
pub(super) fn accepted(job: i64) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/jobs/{job}"))],
        Json(serde_json::json!({ "job": job })),
    )
}
