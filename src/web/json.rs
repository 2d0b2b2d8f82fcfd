//! `web::Json`: the one JSON body extractor of the whole API. Rejections
//! become the one error type, so a client gets `{"error": "<what is
//! wrong>"}` with the right status and not axum's plain-text defaults:
//!
//! - a body sent as something other than JSON is 415: opsdeck never guesses,
//!   so a body it cannot read is never silently treated as no body;
//! - a body that is JSON but not an object is 400: every body opsdeck
//!   accepts is an object (`{"ref": "main"}`), and serde would otherwise
//!   read `["main"]` as `{"ref": "main"}`;
//! - a body that does not fit the request is 400, naming the field.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::error::{MAX_ECHOED, clip};

pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(unreadable)?;
        parse(&bytes)
    }
}

/// An optional body: none when the request has no body at all (the
/// request's defaults apply); a body there must be a JSON object that
/// fits `T`, sent as JSON.
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Error> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(unreadable)?;
        if bytes.trim_ascii().is_empty() {
            return Ok(None);
        }
        if !json {
            return Err(not_json());
        }
        parse(&bytes).map(Some)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json`, or a `+json` type such as `application/merge-patch+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> Error {
    Error::UnsupportedMediaType(
        "send the request body as JSON with `Content-Type: application/json`".into(),
    )
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<Json<T>, Error> {
    if let Some(kind) = not_an_object(bytes) {
        return Err(Error::BadRequest(format!(
            "the request body must be a JSON object (like {{\"ref\": \"main\"}}), not {kind}"
        )));
    }
    axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(value)| Json(value))
        .map_err(rejection_to_error)
}

/// What a body that is valid JSON but not an object is ("an array", …);
/// `None` for an object, and for text that is not JSON at all (the parser
/// then says where it breaks).
fn not_an_object(bytes: &[u8]) -> Option<&'static str> {
    let first = bytes.trim_ascii_start().first()?;
    if *first == b'{' {
        return None;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).ok()?;
    Some(match first {
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    })
}

fn unreadable(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge(
            "the request body is larger than opsdeck accepts (server.max_body_bytes)".into(),
        )
    } else {
        Error::BadRequest(format!(
            "could not read the request body: {}",
            innermost(&rejection, rejection.body_text())
        ))
    }
}

/// The innermost cause names the field, line and column; it may quote the
/// body (an unknown field's name), so no more of it than of a name.
fn innermost(error: &dyn std::error::Error, mut text: String) -> String {
    let mut source = error.source();
    while let Some(e) = source {
        text = e.to_string();
        source = e.source();
    }
    clip(&text, MAX_ECHOED * 3).into_owned()
}

fn rejection_to_error(rejection: JsonRejection) -> Error {
    let cause = || innermost(&rejection, rejection.body_text());
    match &rejection {
        JsonRejection::JsonSyntaxError(_) => {
            Error::BadRequest(format!("the request body is not valid JSON: {}", cause()))
        }
        JsonRejection::JsonDataError(_) => Error::BadRequest(format!(
            "the JSON body does not fit this request: {}",
            cause()
        )),
        _ => Error::BadRequest(format!("could not read the request body: {}", cause())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_objects_sent_as_json_are_read() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
        assert_eq!(not_an_object(br#" {"ref": "main"}"#), None);
        assert_eq!(not_an_object(br#"["main"]"#), Some("an array"));
        assert_eq!(not_an_object(b"null"), Some("null"));
        assert_eq!(not_an_object(b"-1"), Some("a number"));
        // Not JSON at all: the parser says where.
        assert_eq!(not_an_object(b"[main"), None);
        assert_eq!(not_an_object(b""), None);
    }
}
