//! Secret rotation over HTTP: `POST /api/apps/{app}/secrets/{name}/rotate`
//! → `202 {"job": id}` (DESIGN.md "The contract") and the app page's Rotate
//! button; what that page shows of each secret is in `sections.rs`.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;

use crate::auth::Actor;
use crate::ops::secrets;
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps/{app}/secrets/{name}/rotate", post(rotate_api))
        .route("/apps/{app}/secrets/{name}/rotate", post(rotate_form))
}

async fn rotate_api(
    State(ctx): State<Context>,
    Path((app, name)): Path<(String, String)>,
    actor: Actor,
) -> Result<impl IntoResponse> {
    let job = secrets::rotate(&ctx, &actor, &app, &name).await?;
    Ok(super::page::accepted(job))
}

/// The Rotate button (asked to confirm, showing the note): starts the job
/// and shows it.
async fn rotate_form(
    State(ctx): State<Context>,
    Path((app, name)): Path<(String, String)>,
    actor: Actor,
) -> Result<Redirect> {
    let job = secrets::rotate(&ctx, &actor, &app, &name).await?;
    Ok(Redirect::to(&format!("/jobs/{job}")))
}
