//! `/sessions`: who is signed in right now, and a button to end a session
//! (a lost laptop, someone who left the team). Admins only.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::routing::{get, post};

use super::{Moment, Page};
use crate::audit::Event;
use crate::auth::{Actor, session};
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/sessions", get(list))
        .route("/sessions/{id}/revoke", post(revoke))
}

#[derive(Template, WebTemplate)]
#[template(path = "sessions/index.html")]
struct SessionsPage {
    page: Page,
    sessions: Vec<Row>,
}

/// One session as the table shows it.
struct Row {
    id: i64,
    login: String,
    role: String,
    groups: String,
    remote: String,
    user_agent: String,
    created: Moment,
    last_seen: Moment,
    expires: Moment,
    /// The session of the browser looking at the page.
    yours: bool,
}

impl Row {
    /// `csrf`: the viewer's token, which names their own session.
    fn new(s: session::Session, csrf: &str) -> Row {
        Row {
            yours: !csrf.is_empty() && s.csrf == csrf,
            id: s.id,
            login: s.login,
            role: s.role.to_string(),
            groups: s.groups.join(", "),
            remote: s.remote,
            user_agent: s.user_agent,
            created: Moment::from_millis(s.created_at),
            last_seen: Moment::from_millis(s.last_seen_at),
            expires: Moment::from_millis(s.expires_at),
        }
    }
}

/// `GET /sessions`: every live session, most recently active first.
async fn list(State(ctx): State<Context>, actor: Actor, page: Page) -> Result<SessionsPage> {
    ctx.authorize(&actor, None, "sessions").await?;
    let sessions = ctx.sessions.list_active().await?;
    Ok(SessionsPage {
        sessions: sessions
            .into_iter()
            .map(|s| Row::new(s, &page.csrf))
            .collect(),
        page,
    })
}

/// `POST /sessions/{id}/revoke`: ends that session at its next request.
/// (The CSRF token is checked by the web middleware before this runs.)
async fn revoke(State(ctx): State<Context>, actor: Actor, Path(id): Path<i64>) -> Result<Redirect> {
    ctx.authorize(&actor, None, "sessions").await?;
    let ended = ctx
        .sessions
        .revoke(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("there is no live session number {id}")))?;
    ctx.audit
        .record(
            Event::new(&actor, "session.revoke", "").detail(serde_json::json!({
                "session": id,
                "login": ended.login,
                "role": ended.role,
            })),
        )
        .await?;
    Ok(Redirect::to("/sessions"))
}
