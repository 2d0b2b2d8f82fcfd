//! `/insights`: the delivery figures of every app the viewer may see —
//! deploys per week, change failure rate, time to restore, lead time, job
//! durations per kind — over the last 7, 30 or 90 days (`?range=`, a form
//! that works without JavaScript), drawn on the server as SVG, with each
//! app's own figures in a table. An app's page shows its own
//! (`apps.rs`, through `figures.rs`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;

use super::Page;
use super::figures::InsightsView;
use crate::auth::Actor;
use crate::insights::{self, Range};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new().route("/insights", get(index))
}

/// `?range=7d|30d|90d` (default 30d).
#[derive(Deserialize)]
struct RangeQuery {
    range: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "insights/index.html")]
struct InsightsPage {
    page: Page,
    insights: InsightsView,
    /// The viewer may see no app at all.
    no_apps: bool,
}

async fn index(
    State(ctx): State<Context>,
    Query(query): Query<RangeQuery>,
    actor: Actor,
    page: Page,
) -> Result<InsightsPage> {
    let range = Range::parse(query.range.as_deref())?;
    let apps: Vec<String> = ctx.viewable(&actor).map(|a| a.name.clone()).collect();
    let now = chrono::Utc::now().timestamp_millis();
    let figures = insights::of(&ctx.db, &apps, range, now).await?;
    Ok(InsightsPage {
        page,
        insights: InsightsView::new(&figures, "/insights".into(), true),
        no_apps: apps.is_empty(),
    })
}
