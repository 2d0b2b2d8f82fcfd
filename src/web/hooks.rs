//! Webhooks from other systems: `POST /hooks/gitea/{app}`, Gitea's push
//! webhook (`ops::webhook`). Public: the signature is the authentication.

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Json;
use crate::ops::webhook::{self, Delivery, Handled};
use crate::{Context, Result};

pub fn router() -> Router<Context> {
    Router::new().route("/hooks/gitea/{app}", post(gitea))
}

/// 202 `{"job"}` when it deploys, 200 `{"ignored": why}` when the delivery
/// asks for nothing this app does (or names a commit that is no longer the
/// branch's tip), 401 when it does not verify (or the app is unknown).
async fn gitea(
    State(ctx): State<Context>,
    Path(app): Path<String>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        event: header("x-gitea-event"),
        id: header("x-gitea-delivery"),
        signature: header("x-gitea-signature"),
        body: &body,
        remote: client
            .map(|Extension(ConnectInfo(a))| a.ip().to_string())
            .unwrap_or_default(),
    };
    Ok(match webhook::receive(&ctx, &app, delivery).await? {
        Handled::Deploying(job) => super::page::accepted(job).into_response(),
        Handled::Ignored(why) => {
            (StatusCode::OK, Json(serde_json::json!({ "ignored": why }))).into_response()
        }
    })
}
