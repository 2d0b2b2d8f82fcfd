//! Deploys and rollbacks over HTTP. The JSON API (DESIGN.md "The
//! contract"): `POST /api/apps/{app}/deploy {"ref"}`, `POST
//! /api/apps/{app}/rollback {"release"?}` → `202 {"job": id}`. The app
//! page's Deploy section: "what ships" for a ref, the Deploy button under
//! it (production asks for the app's name) and the release history's
//! Rollback buttons; what the section shows is built in `sections.rs`.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::page::{AppCard, ParamField, accepted, params_in, show_job};
use super::sections::{self, DeployApproval};
use super::{Json, Page};
use crate::auth::Actor;
use crate::config::App;
use crate::error::Quoted;
use crate::ops::what_ships::{self, WhatShips};
use crate::ops::{deploy, rollback};
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/api/apps/{app}/deploy", post(deploy_ref))
        .route("/api/apps/{app}/rollback", post(roll_back))
        .route("/apps/{app}/deploy/preview", get(preview))
        .route("/apps/{app}/deploy", post(deploy_form))
        .route("/apps/{app}/rollback", post(rollback_form))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deploy {
    /// A branch, tag or commit.
    #[serde(rename = "ref")]
    git_ref: String,
    /// The app's deploy parameters (`command` strategy).
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// An owner's reason to deploy without the approval deploys need.
    emergency: Option<String>,
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
    let job = deploy::request_with(
        &ctx,
        &actor,
        &app,
        &body.git_ref,
        &body.params,
        body.emergency.as_deref(),
    )
    .await?;
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

#[derive(Deserialize)]
struct PreviewQuery {
    #[serde(rename = "ref")]
    git_ref: String,
}

/// The "what ships" fragment under the deploy form.
#[derive(Template, WebTemplate)]
#[template(path = "apps/_what_ships.html")]
struct Preview {
    page: Page,
    app: AppCard,
    ships: WhatShips,
    /// Production asks for the app's name before deploying.
    production: bool,
    /// The fields of the app's deploy parameters, in the Deploy form.
    deploy_params: Vec<ParamField>,
    /// Whether deploys wait for an approval, said in the Deploy form.
    deploy_approval: Option<DeployApproval>,
}

async fn preview(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    Query(query): Query<PreviewQuery>,
    actor: Actor,
    page: Page,
) -> Result<Preview> {
    let ships = what_ships::preview(&ctx, &actor, &name, query.git_ref.trim()).await?;
    let app = ctx.app(&name)?;
    Ok(Preview {
        page,
        app: AppCard::new(app, &actor),
        ships,
        production: is_production(app),
        deploy_params: sections::deploy_fields(&ctx, app).await?,
        deploy_approval: DeployApproval::of(app, &actor),
    })
}

#[derive(Deserialize)]
struct DeployForm {
    #[serde(rename = "ref")]
    git_ref: String,
    /// The commit "what ships" showed; empty for a `command` app without
    /// a repository.
    #[serde(default)]
    sha: String,
    /// Production: the app's name, typed.
    #[serde(default)]
    confirm: String,
    /// "Emergency: skip approval" ticked (an owner's choice)…
    #[serde(default)]
    skip_approval: Option<String>,
    /// …and why; required when ticked.
    #[serde(default)]
    emergency: String,
    /// The deploy parameters' fields (`param.<name>`), among the rest.
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

/// The Deploy button under "what ships".
async fn deploy_form(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
    headers: HeaderMap,
    Form(form): Form<DeployForm>,
) -> Result<Response> {
    let app = ctx.app(&name)?;
    if is_production(app) && form.confirm.trim() != app.name {
        return Err(Error::BadRequest(format!(
            "{} is production: type its name to confirm the deploy",
            app.name
        )));
    }
    let params = params_in(form.fields);
    let emergency = form.skip_approval.map(|_| form.emergency.as_str());
    let job = deploy::request_previewed(
        &ctx,
        &actor,
        &name,
        &form.git_ref,
        &form.sha,
        &params,
        emergency,
    )
    .await?;
    Ok(show_job(job, &headers))
}

#[derive(Deserialize)]
struct RollbackForm {
    /// Empty: the previous good release.
    #[serde(default)]
    release: String,
}

/// A Rollback button of the release history.
async fn rollback_form(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
    headers: HeaderMap,
    Form(form): Form<RollbackForm>,
) -> Result<Response> {
    let release =
        match form.release.trim() {
            "" => None,
            id => Some(id.parse().map_err(|_| {
                Error::BadRequest(format!("{} is not a release number", Quoted(id)))
            })?),
        };
    let job = rollback::request(&ctx, &actor, &name, release).await?;
    Ok(show_job(job, &headers))
}

fn is_production(app: &App) -> bool {
    AppCard::is_production_environment(&app.environment)
}
