//! The dashboard (`/`: every app the actor may view, one button per action)
//! and an app's page (`/apps/{app}`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

use super::Page;
use crate::auth::{Actor, Role};
use crate::config::{Action, App};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/", get(dashboard))
        .route("/apps/{app}", get(show))
}

/// What the pages show of an app.
pub struct AppCard {
    pub name: String,
    pub environment: String,
    pub host: String,
    pub actions: Vec<ActionButton>,
}

impl AppCard {
    pub fn new(app: &App, actor: &Actor) -> AppCard {
        AppCard {
            name: app.name.clone(),
            environment: app.environment.clone(),
            host: app.host.clone(),
            actions: app
                .actions
                .iter()
                .map(|a| ActionButton::new(app, a, actor))
                .collect(),
        }
    }

    /// The badge colour: production stands out, staging warns, the rest is calm.
    pub fn environment_class(&self) -> &'static str {
        match self.environment.to_ascii_lowercase().as_str() {
            "production" | "prod" | "live" => "env-production",
            "staging" | "stage" | "preview" => "env-staging",
            _ => "env-other",
        }
    }
}

pub struct ActionButton {
    pub name: String,
    pub description: String,
    /// The question asked before it runs.
    pub confirm: String,
    /// The role it needs, and whether the actor has it: a button the actor
    /// may not press is shown disabled, saying why.
    pub needs: Role,
    pub allowed: bool,
}

impl ActionButton {
    fn new(app: &App, action: &Action, actor: &Actor) -> ActionButton {
        let needs = action.role.unwrap_or_else(|| app.required_role("action"));
        ActionButton {
            name: action.name.clone(),
            description: action.description.clone().unwrap_or_default(),
            confirm: action.confirm.clone().unwrap_or_else(|| {
                format!("Run {} on {} ({})?", action.name, app.name, app.environment)
            }),
            needs,
            allowed: actor.role >= needs,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "apps/index.html")]
struct Dashboard {
    page: Page,
    apps: Vec<AppCard>,
}

/// The apps `actor` may view, in config order.
pub fn visible<'a>(ctx: &'a Context, actor: &'a Actor) -> impl Iterator<Item = AppCard> + 'a {
    ctx.config
        .apps
        .iter()
        .filter(|app| actor.role >= app.required_role("view"))
        .map(|app| AppCard::new(app, actor))
}

async fn dashboard(State(ctx): State<Context>, actor: Actor, page: Page) -> Dashboard {
    let apps = visible(&ctx, &actor).collect();
    Dashboard { page, apps }
}

#[derive(Template, WebTemplate)]
#[template(path = "apps/show.html")]
struct AppPage {
    page: Page,
    app: AppCard,
    branch: String,
    strategy: String,
    units: Vec<String>,
}

async fn show(
    State(ctx): State<Context>,
    Path(name): Path<String>,
    actor: Actor,
    page: Page,
) -> Result<AppPage> {
    let app = ctx.app(&name)?;
    ctx.authorize(&actor, Some(app), "view").await?;
    Ok(AppPage {
        page,
        app: AppCard::new(app, &actor),
        branch: app.branch.clone(),
        strategy: format!("{:?}", app.strategy).to_lowercase(),
        units: app.units.clone(),
    })
}
