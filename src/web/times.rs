//! `GET /times/ago?at=ISO,ISO…` → `["3 min ago", …]`: how an open page
//! keeps its "3 min ago" words current. The rule is `page::relative`, on
//! the server only: `app.js` asks here every half minute rather than
//! keeping a copy of the rule that could drift from it.

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;

use super::Json;
use super::page::relative;
use crate::auth::Actor;
use crate::error::Quoted;
use crate::{Context, Error, Result};

/// More times than any page shows; a longer list is refused, not worked.
const MOST: usize = 500;

pub fn router() -> Router<Context> {
    Router::new().route("/times/ago", get(ago))
}

#[derive(Deserialize)]
struct Times {
    /// RFC 3339 times (as `<time datetime>` has them), comma-separated.
    at: String,
}

/// The words for each time, in order; signed-in pages only ask.
async fn ago(_: Actor, Query(times): Query<Times>) -> Result<Json<Vec<String>>> {
    let now = chrono::Utc::now().timestamp_millis();
    let list: Vec<&str> = times.at.split(',').filter(|at| !at.is_empty()).collect();
    if list.len() > MOST {
        return Err(Error::BadRequest(format!(
            "at most {MOST} times at once, not {}",
            list.len()
        )));
    }
    let words = list
        .into_iter()
        .map(|at| match chrono::DateTime::parse_from_rfc3339(at) {
            Ok(t) => Ok(relative(t.timestamp_millis(), now)),
            Err(_) => Err(Error::BadRequest(format!(
                "{} is not a time like 2026-12-06T02:25:57Z",
                Quoted(at)
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(words))
}
