//! `/static/*`: the stylesheet, our script and the vendored htmx 2 + its SSE
//! extension, embedded in the binary so a deploy is one file and no page
//! depends on a CDN.

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::error::Quoted;
use crate::{Context, Error, Result};

pub struct File {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const FILES: &[File] = &[
    File {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/app.css"),
    },
    File {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/app.js"),
    },
    File {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../static/favicon.svg"),
    },
    File {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/htmx.min.js"),
    },
    File {
        name: "logs.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/logs.js"),
    },
    File {
        name: "sse.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/sse.min.js"),
    },
];

pub fn router() -> Router<Context> {
    Router::new()
        .route("/static/{name}", get(file))
        // Browsers ask for it on their own, also on pages without our <head>.
        .route(
            "/favicon.ico",
            get(|| file(Path("favicon.svg".to_string()))),
        )
}

async fn file(Path(name): Path<String>) -> Result<impl IntoResponse> {
    let file = FILES.iter().find(|f| f.name == name).ok_or_else(|| {
        Error::NotFound(format!("there is no static file named {}", Quoted(&name)))
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type),
            // Pages link these with a content hash in the URL (`Page::asset`).
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        file.bytes,
    ))
}
