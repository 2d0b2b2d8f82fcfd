//! The JSON API of apps and their actions (DESIGN.md "The contract"):
//! `GET /api/apps`, `POST /api/apps/{app}/actions/{name}/run`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::Json;
use super::apps::AppCard;
use crate::Context;
use crate::auth::{Actor, Role};

pub fn router() -> Router<Context> {
    Router::new().route("/api/apps", get(list))
}

#[derive(Serialize)]
struct AppJson {
    name: String,
    environment: String,
    host: String,
    actions: Vec<ActionJson>,
}

#[derive(Serialize)]
struct ActionJson {
    name: String,
    description: String,
    role: Role,
    allowed: bool,
}

impl From<AppCard> for AppJson {
    fn from(card: AppCard) -> AppJson {
        AppJson {
            name: card.name,
            environment: card.environment,
            host: card.host,
            actions: card
                .actions
                .into_iter()
                .map(|a| ActionJson {
                    name: a.name,
                    description: a.description,
                    role: a.needs,
                    allowed: a.allowed,
                })
                .collect(),
        }
    }
}

/// `GET /api/apps`: the apps the caller may view, with their actions.
async fn list(State(ctx): State<Context>, actor: Actor) -> Json<Vec<AppJson>> {
    Json(
        super::apps::visible(&ctx, &actor)
            .map(|card| card.into())
            .collect(),
    )
}
