//! Secret rotation over HTTP: `POST /api/apps/{app}/secrets/{name}/rotate`
//! → `202 {"job": id}` (DESIGN.md "The contract") and the app page's Rotate
//! button; a value issued elsewhere entered on its own page
//! (`/apps/{app}/secrets/{name}/set`) or with `POST
//! /api/apps/{app}/secrets/{name}/set {"value": "…"}` → `202 {"job": id}`;
//! `GET /api/apps/{app}/secrets` (each secret's fingerprint, last rotation
//! and age, never its value). What the app page shows of each secret is in
//! `sections.rs`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};

use super::page::{accepted, show_job};
use super::{Json, Page};
use crate::auth::{Actor, Role};
use crate::ops::secret_age::{Due, Since};
use crate::ops::secrets::SecretStatus;
use crate::ops::{secret_set, secrets};
use crate::steps::Held;
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps/{app}/secrets", get(list))
        .route("/api/apps/{app}/secrets/{name}/rotate", post(rotate_api))
        .route("/apps/{app}/secrets/{name}/rotate", post(rotate_form))
        .route("/api/apps/{app}/secrets/{name}/set", post(set_api))
        .route(
            "/apps/{app}/secrets/{name}/set",
            get(set_page).post(set_form),
        )
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
    /// When its age counts from, and whether that is a rotation or its
    /// file's last change.
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
    Ok(accepted(job))
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

/// `{"value": "…"}`; any other key is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetValue {
    value: String,
}

/// `POST /api/apps/{app}/secrets/{name}/set` → `202 {"job": id}`.
async fn set_api(
    State(ctx): State<Context>,
    Path((app, name)): Path<(String, String)>,
    actor: Actor,
    Json(body): Json<SetValue>,
) -> Result<impl IntoResponse> {
    let held = Held::new(body.value);
    let job = secret_set::set(&ctx, &actor, &app, &name, held).await?;
    Ok(accepted(job))
}

/// The page that asks for the new value: it is its own confirmation,
/// saying what happens before anything does.
#[derive(Template, WebTemplate)]
#[template(path = "apps/set_secret.html")]
struct SetPage {
    page: Page,
    app: String,
    environment: String,
    name: String,
    note: String,
    place: String,
    /// The units restarted, space-separated.
    units: String,
    health: bool,
    restores: bool,
    needs: Role,
    allowed: bool,
}

async fn set_page(
    State(ctx): State<Context>,
    Path((app, name)): Path<(String, String)>,
    actor: Actor,
    page: Page,
) -> Result<SetPage> {
    let found = ctx.app(&app)?;
    ctx.authorize(&actor, Some(found), "view").await?;
    let entry = secret_set::entry(&ctx, &app, &name)?;
    Ok(SetPage {
        page,
        environment: found.environment.clone(),
        app,
        name,
        note: entry.note,
        place: entry.place,
        units: entry.units.join(" "),
        health: entry.health,
        restores: entry.restores,
        allowed: actor.role >= entry.needs,
        needs: entry.needs,
    })
}

/// The page's form: the csrf token (checked before this runs) and `value`.
#[derive(Deserialize)]
struct SetFields {
    value: String,
}

/// The Set page's button: starts the job and shows it.
async fn set_form(
    State(ctx): State<Context>,
    Path((app, name)): Path<(String, String)>,
    actor: Actor,
    headers: HeaderMap,
    form: std::result::Result<Form<SetFields>, FormRejection>,
) -> Result<Response> {
    // The rejection is not shown: it could quote the form.
    let Ok(Form(fields)) = form else {
        return Err(Error::BadRequest(
            "the form has no `value`; enter the new value on the secret's Set page".into(),
        ));
    };
    let job = secret_set::set(&ctx, &actor, &app, &name, Held::new(fields.value)).await?;
    Ok(show_job(job, &headers))
}
