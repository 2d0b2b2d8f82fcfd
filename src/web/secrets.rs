//! Secret rotation over HTTP: `POST /api/apps/{app}/secrets/{name}/rotate`
//! → `202 {"job": id}` (DESIGN.md "The contract"), the app page's Rotate
//! button, and what that page shows of each secret (never a value).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;

use super::Moment;
use crate::auth::{Actor, Role};
use crate::config::App;
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

/// One secret on the app page.
pub struct SecretRow {
    pub name: String,
    pub fingerprint: String,
    /// The question asked before rotating: the note, or a plain one.
    pub confirm: String,
    pub needs: Role,
    pub allowed: bool,
    pub webhook_repo: Option<String>,
    /// Who rotated it last, and when.
    pub last_rotated: Option<(String, Moment)>,
}

/// The app page's secrets section.
pub async fn rows(ctx: &Context, app: &App, actor: &Actor) -> Result<Vec<SecretRow>> {
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
                name: s.name,
                fingerprint: s.fingerprint,
                webhook_repo: s.webhook_repo,
            }
        })
        .collect())
}
