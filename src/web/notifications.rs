//! `/notifications`: the outbox — what was sent to which `[[notify]]`
//! receiver, what still waits for its next try and why the last one
//! failed, what was given up on. Admins only.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::{Moment, Page};
use crate::auth::Actor;
use crate::notify::{self, Delivery, Tally};
use crate::{Context, Result};

/// How many rows the page lists, newest first.
const SHOWN: i64 = 200;

pub fn router() -> Router<Context> {
    Router::new().route("/notifications", get(list))
}

#[derive(Template, WebTemplate)]
#[template(path = "notifications/index.html")]
struct NotificationsPage {
    page: Page,
    tally: Tally,
    /// `(name, url, events)` of each `[[notify]]`.
    receivers: Vec<(String, String, String)>,
    rows: Vec<Row>,
}

struct Row {
    delivery: Delivery,
    created: Moment,
    /// When it was delivered or given up on, or when it is tried next.
    when: Moment,
}

async fn list(State(ctx): State<Context>, actor: Actor, page: Page) -> Result<NotificationsPage> {
    ctx.authorize(&actor, None, "notifications").await?;
    let rows = notify::recent(&ctx.db, SHOWN)
        .await?
        .into_iter()
        .map(|delivery| Row {
            created: Moment::from_millis(delivery.created_at),
            when: Moment::from_millis(delivery.done_at.unwrap_or(delivery.next_at)),
            delivery,
        })
        .collect();
    Ok(NotificationsPage {
        page,
        tally: notify::tally(&ctx.db).await?,
        receivers: ctx
            .config
            .notify
            .iter()
            .map(|n| (n.name.clone(), n.url.clone(), n.events.join(", ")))
            .collect(),
        rows,
    })
}
