//! How the one error type becomes a response: JSON `{"error": "…"}` with the
//! right status for programs (`/api/*`, `/hooks/*`), an HTML page for
//! browsers, a plain sentence for htmx. Internal errors are logged with
//! detail and shown as a generic sentence.

use askama::Template;
use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::{Page, is_api_path};
use crate::Error;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The sentence of an error response, kept beside the JSON body so that
/// `uniform` can show it as a page without parsing the body back.
#[derive(Debug, Clone)]
struct Failure(String);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if matches!(self, Error::Database(_) | Error::Internal(_)) {
            tracing::error!(error = ?self, "request failed");
        }
        let message = self.public_message();
        let mut res = (self.status(), Json(serde_json::json!({"error": message}))).into_response();
        res.extensions_mut().insert(Failure(message));
        res
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    status: u16,
    reason: &'static str,
    message: String,
}

/// Outermost error layer: every error response — ours, or one axum makes
/// itself (unknown method, a path that does not parse) — leaves in the form
/// the client reads: JSON for programs, a page for browsers, a sentence for
/// htmx (which `app.js` shows).
pub async fn uniform(req: Request, next: Next) -> Response {
    let api = is_api_path(req.uri().path());
    let htmx = req.headers().contains_key("hx-request");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let failure = res.extensions().get::<Failure>().cloned();
    let (parts, body) = res.into_parts();
    let message = match failure {
        Some(_) if api => return Response::from_parts(parts, body),
        Some(Failure(message)) => message,
        None if already_as_expected(&parts.headers, api) => {
            return Response::from_parts(parts, body);
        }
        None if status == StatusCode::METHOD_NOT_ALLOWED => {
            format!("{method} is not allowed on {path}")
        }
        // Whatever a 5xx says without our error type may be an internal detail.
        None if status.is_server_error() => Error::Internal(anyhow::anyhow!(
            "{status} without a message for {method} {path}"
        ))
        .public_message(),
        None => {
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            // axum's own rejections repeat what the client sent (a path
            // segment that does not parse): no more of it than of a name.
            let text = String::from_utf8_lossy(&text);
            let text = crate::error::clip(text.trim(), crate::error::MAX_ECHOED * 3).into_owned();
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("request refused")
                    .to_string()
            } else {
                text
            }
        }
    };
    let page = parts.extensions.get::<Page>().cloned().unwrap_or_default();
    let mut res = render(status, message, api, htmx, page);
    // Keep what a layer set on the original (`HX-Redirect`, `Connection`, …).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            res.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res
}

/// A JSON error for a program or a page for a browser needs no rewriting.
fn already_as_expected(headers: &HeaderMap, api: bool) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if api {
        content_type.starts_with("application/json")
    } else {
        content_type.starts_with("text/html")
    }
}

fn render(status: StatusCode, message: String, api: bool, htmx: bool, page: Page) -> Response {
    if api {
        return (status, Json(serde_json::json!({"error": message}))).into_response();
    }
    if htmx {
        return (status, message).into_response();
    }
    let page = ErrorPage {
        page,
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the error page");
            (status, page.message).into_response()
        }
    }
}
