//! Confirmations the server enforces, so they hold without JavaScript: a
//! risky page form carries its question in a hidden `ask` field, and is
//! only let through with `confirmed=yes`. `app.js` asks in a dialog and
//! adds the answer; without it, the form is answered with this page, which
//! asks the same question and sends the same fields again with the answer.
//! Nothing runs until someone says yes. (The JSON API does not ask: a
//! program has decided already.)

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Page, is_api_path};
use crate::Context;

/// The hidden field holding the question.
pub const ASK: &str = "ask";
/// The answer that lets the form through.
const CONFIRMED: (&str, &str) = ("confirmed", "yes");

#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    page: Page,
    question: String,
    /// Where the form goes once confirmed (its own path).
    action: String,
    /// The form's fields, sent again with the answer.
    fields: Vec<(String, String)>,
    /// Where "No" leads: the page the form was on.
    back: String,
}

/// The layer: runs after authentication, so the CSRF token was checked and
/// the page knows who asks.
pub async fn ask_first(State(ctx): State<Context>, req: Request, next: Next) -> Response {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != Method::POST || is_api_path(req.uri().path()) || !is_form {
        return next.run(req).await;
    }
    let max = ctx.config.server.max_body_bytes;
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(bytes) => bytes,
        Err(_) => return super::headers::too_large(max).into_response(),
    };
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let Some(question) = fields
        .iter()
        .find(|(k, _)| k == ASK)
        .map(|(_, v)| v.clone())
    else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    let confirmed = fields
        .iter()
        .any(|(k, v)| (k.as_str(), v.as_str()) == CONFIRMED);
    let rest = fields
        .into_iter()
        .filter(|(k, _)| k != ASK && k != CONFIRMED.0);
    if !confirmed {
        let page = Page::from_extensions(&parts.extensions);
        return ConfirmPage {
            page,
            question,
            action: parts.uri.path().to_owned(),
            // The template writes the CSRF field itself, like every form.
            fields: rest.filter(|(k, _)| k != super::auth::CSRF_FIELD).collect(),
            back: back(&parts.headers),
        }
        .into_response();
    }
    // The handler sees the form as it was, without the asking.
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(rest)
        .finish();
    parts.headers.remove(header::CONTENT_LENGTH);
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The path (and query) of the page the form was sent from; the dashboard
/// when the browser does not say.
fn back(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        })
        .unwrap_or_else(|| "/".to_owned())
}
