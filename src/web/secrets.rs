//! Secret rotation over HTTP: `POST /api/apps/{app}/secrets/{name}/rotate`
//! → `202 {"job": id}` (DESIGN.md "The contract") and the app page's Rotate
//! button; a value issued elsewhere entered on its own page
//! (`/apps/{app}/secrets/{name}/set`) or with `POST
//! /api/apps/{app}/secrets/{name}/set {"value": "…"}` → `202 {"job": id}`.
//! What the app page shows of each secret is in `sections.rs`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::page::{accepted, show_job};
use super::{Json, Page};
use crate::auth::{Actor, Role};
use crate::ops::{secret_set, secrets};
use crate::steps::Held;
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps/{app}/secrets/{name}/rotate", post(rotate_api))
        .route("/apps/{app}/secrets/{name}/rotate", post(rotate_form))
        .route("/api/apps/{app}/secrets/{name}/set", post(set_api))
        .route(
            "/apps/{app}/secrets/{name}/set",
            get(set_page).post(set_form),
        )
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
