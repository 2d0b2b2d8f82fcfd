//! The router: one module per page or resource, each exposing `router()`,
//! merged here; the layers every request passes through are assembled here
//! too, so what protects a route is visible in one place.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Context;

mod actions;
mod ansi;
mod apps;
mod assets;
mod audit;
pub mod auth;
mod charts;
mod confirm;
mod conn;
mod deploy;
mod error;
mod figures;
mod headers;
mod hooks;
mod hosts;
mod insights;
mod jobs;
mod json;
pub mod login;
mod logs;
mod notifications;
mod page;
mod secrets;
mod sections;
mod sessions;
mod sweeps;
mod times;
mod uptime;

pub use conn::{Listening, listen};
pub use json::Json;
pub use page::{Moment, Page};

/// The whole HTTP surface. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so audit rows and
/// sessions carry the client address.
pub fn router(ctx: Context) -> Router {
    let max_body = ctx.config.server.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .merge(assets::router())
        .merge(login::router())
        .merge(sessions::router())
        .merge(notifications::router())
        .merge(hosts::router())
        .merge(hooks::router())
        .merge(apps::router())
        .merge(actions::router())
        .merge(deploy::router())
        .merge(secrets::router())
        .merge(audit::router())
        .merge(insights::router())
        .merge(jobs::router())
        .merge(sweeps::router())
        .merge(logs::router())
        .merge(times::router())
        .fallback(not_found)
        // Innermost first: risky forms are asked about once the sender is
        // known, authentication sees only bodies within the limit, and
        // every error, from any layer, leaves as the client expects it.
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            confirm::ask_first,
        ))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            headers::limit_body,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(error::uniform))
        .layer(middleware::from_fn(headers::security))
        // gzip or brotli as the browser accepts (htmx: 52 KB → 16 KB); live
        // streams (`text/event-stream`) are left alone, so no event waits
        // in a compressor's buffer.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(ctx)
}

/// `GET /healthz` → `{"ok":true,"database":"ok"}`, 503 when the database fails.
async fn healthz(State(ctx): State<Context>) -> impl IntoResponse {
    if crate::db::ping(&ctx.db).await {
        (
            StatusCode::OK,
            Json(serde_json::json!({"ok": true, "database": "ok"})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ok": false, "database": "unavailable"})),
        )
    }
}

async fn not_found(uri: axum::http::Uri) -> crate::Error {
    crate::Error::NotFound(format!(
        "there is nothing at {}",
        crate::error::clip(uri.path(), crate::error::MAX_ECHOED)
    ))
}

/// `/api/*` and `/hooks/*` speak JSON to programs; everything else is a page.
pub fn is_api_path(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/api/") || path.starts_with("/hooks/")
}
