//! `/hosts`: every machine opsdeck operates — reachable or not (and why
//! not, with the fix), one round trip's latency, systemd's state, free disk
//! where the apps live. For the on-call engineer's "is it the box?".

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::Page;
use crate::auth::Actor;
use crate::host::survey::{self, HostReport};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/hosts", get(page))
        .route("/api/hosts", get(api))
}

#[derive(Template, WebTemplate)]
#[template(path = "hosts/index.html")]
struct HostsPage {
    page: Page,
    hosts: Vec<HostReport>,
}

/// `GET /hosts`: looks at every host now (each within its own timeout).
async fn page(State(ctx): State<Context>, actor: Actor, page: Page) -> Result<HostsPage> {
    ctx.authorize(&actor, None, "hosts").await?;
    Ok(HostsPage {
        page,
        hosts: survey::survey(&ctx.config).await,
    })
}

/// `GET /api/hosts`: the same, as JSON.
async fn api(State(ctx): State<Context>, actor: Actor) -> Result<axum::Json<Vec<HostReport>>> {
    ctx.authorize(&actor, None, "hosts").await?;
    Ok(axum::Json(survey::survey(&ctx.config).await))
}
