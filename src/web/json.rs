//! `web::Json`: axum's JSON extractor with rejections turned into the one
//! error type, so a client gets `{"error": "<what is wrong>"}` and not
//! axum's plain-text defaults.

use std::error::Error as _;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

/// An optional body: none when the request has no `Content-Type`; when it
/// has one, the body must be JSON that fits `T`.
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Error> {
        match <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await {
            Ok(value) => Ok(value.map(|axum::Json(value)| Json(value))),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn rejection_to_error(rejection: JsonRejection) -> Error {
    // The innermost cause names the field, line and column.
    let cause = || {
        let mut source = rejection.source();
        let mut text = rejection.body_text();
        while let Some(e) = source {
            text = e.to_string();
            source = e.source();
        }
        text
    };
    match &rejection {
        JsonRejection::JsonSyntaxError(_) => {
            Error::BadRequest(format!("the request body is not valid JSON: {}", cause()))
        }
        JsonRejection::JsonDataError(_) => Error::BadRequest(format!(
            "the JSON body does not fit this request: {}",
            cause()
        )),
        JsonRejection::MissingJsonContentType(_) => Error::BadRequest(
            "send the request body as JSON with `Content-Type: application/json`".into(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::PayloadTooLarge(
                "the request body is larger than opsdeck accepts (server.max_body_bytes)".into(),
            )
        }
        _ => Error::BadRequest(format!("could not read the request body: {}", cause())),
    }
}
