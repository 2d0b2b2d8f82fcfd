//! Secret rotation over HTTP: `POST /api/apps/{app}/secrets/{name}/rotate`
//! → `202 {"job": id}` (DESIGN.md "The contract"), the app page's Rotate
//! button, and `GET /api/apps/{app}/secrets` (each secret's fingerprint,
//! last rotation and age, never its value); what the app page shows of
//! each secret is in `sections.rs`.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Serialize;

use super::Json;
use crate::auth::{Actor, Role};
use crate::ops::secret_age::{Due, Since};
use crate::ops::secrets::{self, SecretStatus};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps/{app}/secrets", get(list))
        .route("/api/apps/{app}/secrets/{name}/rotate", post(rotate_api))
        .route("/apps/{app}/secrets/{name}/rotate", post(rotate_form))
}

/// One secret as `GET /api/apps/{app}/secrets` lists it. Times are Unix ms.
#[derive(Serialize)]
struct SecretJson {
    name: String,
    fingerprint: String,
    /// The role rotating it needs.
    role: Role,
    last_rotated_by: Option<String>,
    last_rotated_at: Option<i64>,
    /// With `max_age`: whether it is past it, and how it stands.
    overdue: bool,
    max_age_ms: Option<i64>,
    /// When its age counts from, and whether that is a rotation or the
    /// env file's last change.
    age_since: Option<i64>,
    age_from: Option<Since>,
    due: Option<Due>,
    /// When its `schedule` rotates it next.
    next_rotation: Option<i64>,
    gitea_webhook: Option<String>,
    github_webhook: Option<String>,
    store: Option<String>,
}

impl From<SecretStatus> for SecretJson {
    fn from(s: SecretStatus) -> SecretJson {
        let (last_rotated_by, last_rotated_at) = s.last_rotated.unzip();
        let (age_since, age_from) = s.age.as_ref().and_then(|a| a.since).unzip();
        SecretJson {
            name: s.name,
            fingerprint: s.fingerprint,
            role: s.needs,
            last_rotated_by,
            last_rotated_at,
            overdue: s.age.as_ref().is_some_and(|a| a.due.overdue()),
            max_age_ms: s.age.as_ref().map(|a| a.max_age_ms),
            age_since,
            age_from,
            due: s.age.map(|a| a.due),
            next_rotation: s.next_rotation,
            gitea_webhook: s.webhook_repo,
            github_webhook: s.github_repo,
            store: s.store,
        }
    }
}

/// `GET /api/apps/{app}/secrets`: for anyone who may view the app, as the
/// app page shows them.
async fn list(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    actor: Actor,
) -> Result<Json<Vec<SecretJson>>> {
    let app = ctx.app(&app)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    let secrets = secrets::list(&ctx, app).await?;
    Ok(Json(secrets.into_iter().map(SecretJson::from).collect()))
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
