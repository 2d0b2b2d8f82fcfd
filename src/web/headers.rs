//! Headers and limits that apply to every response and request.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{Context, Error};

/// No inline script or style anywhere: everything the pages run or style
/// with comes from `/static`, so an injected tag cannot execute.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'";

pub async fn security(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages show live state and CSRF tokens: never from a cache. Static
    // files set their own long cache.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // The client may still be sending the rest of the body; closing is
        // the only way to not read it and keep the next request's framing.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Refuses a body announced larger than `server.max_body_bytes` before
/// anything reads it; bodies without a length are cut by `DefaultBodyLimit`
/// when an extractor reads them.
pub async fn limit_body(State(ctx): State<Context>, req: Request, next: Next) -> Response {
    let max = ctx.config.server.max_body_bytes;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(len) if len > max as u64 => too_large(max).into_response(),
        _ => next.run(req).await,
    }
}

pub fn too_large(max: usize) -> Error {
    Error::PayloadTooLarge(format!(
        "the request body is larger than the {max} bytes opsdeck accepts"
    ))
}
