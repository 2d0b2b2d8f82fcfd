//! The router: one module per page or resource, each exposing `router()`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;

use crate::Context;

mod error;
pub mod login;

pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(login::router())
        .with_state(ctx)
}

/// `GET /healthz` → `{"ok":true,"database":"ok"}`, 503 when the database fails.
async fn healthz(State(ctx): State<Context>) -> impl IntoResponse {
    if crate::db::ping(&ctx.db).await {
        (StatusCode::OK, Json(serde_json::json!({"ok": true, "database": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ok": false, "database": "unavailable"})),
        )
    }
}
