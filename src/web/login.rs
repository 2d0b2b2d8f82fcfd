//! Every `/auth` route: the sign-in page, the redirect to Gitea and its
//! callback, the dev sign-in, sign-out.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::Page;
use crate::audit::{Event, Outcome};
use crate::auth::oidc::{Identity, Refusal, SIGNIN_COOKIE_SECS, Status};
use crate::auth::{Actor, Role, Via, roles, session};
use crate::error::Quoted;
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/auth/login", get(sign_in_page))
        .route("/auth/gitea", get(to_gitea))
        .route("/auth/callback", get(callback))
        .route("/auth/dev", post(dev_sign_in))
        .route("/auth/logout", post(sign_out))
}

#[derive(Template)]
#[template(path = "login/signin.html")]
struct SignInPage {
    page: Page,
    /// What stopped the last attempt, if this page answers one.
    problem: Option<String>,
    gitea: Status,
    dev_login: bool,
    next: String,
    roles: [Role; 4],
}

impl SignInPage {
    fn new(ctx: &Context, problem: Option<String>, next: &str) -> SignInPage {
        ctx.gitea.nudge();
        SignInPage {
            page: Page::default(),
            problem,
            gitea: ctx.gitea.status(),
            dev_login: ctx.config.auth.dev_login,
            next: local_path(next).to_string(),
            roles: Role::ALL,
        }
    }

    /// No button when Gitea sign-in is not configured at all.
    fn gitea_off(&self) -> bool {
        matches!(self.gitea, Status::Off(_))
    }
}

#[derive(Template)]
#[template(path = "login/no_role.html")]
struct NoRolePage {
    page: Page,
    login: String,
    groups: Vec<String>,
    entries: Vec<String>,
}

/// A page with a status other than 200.
fn page(status: StatusCode, template: &impl Template) -> Result<Response> {
    let html = template.render().map_err(anyhow::Error::from)?;
    Ok((status, Html(html)).into_response())
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /auth/login`: says how to sign in, and what is wrong with Gitea
/// sign-in if anything is.
async fn sign_in_page(State(ctx): State<Context>, Query(q): Query<NextQuery>) -> Result<Response> {
    page(StatusCode::OK, &SignInPage::new(&ctx, None, &q.next))
}

/// `GET /auth/gitea`: off to Gitea's authorization page.
async fn to_gitea(
    State(ctx): State<Context>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response> {
    if let Some(refused) = rate_limited(&ctx, &client, &q.next)? {
        return Ok(refused);
    }
    let browser = session::find_cookie(&ctx.config, session::SIGNIN_COOKIE, &headers);
    match ctx.gitea.begin(local_path(&q.next), browser) {
        Ok(started) => {
            let binding = session::cookie(
                &ctx.config,
                session::SIGNIN_COOKIE,
                &started.browser,
                Some(SIGNIN_COOKIE_SECS),
            );
            Ok(([(header::SET_COOKIE, binding)], Redirect::to(&started.url)).into_response())
        }
        Err(refusal) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            &SignInPage::new(&ctx, Some(refusal.message()), &q.next),
        ),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// `GET /auth/callback`: Gitea sends the browser back here. Only a sign-in
/// this browser started (the `state` opsdeck issued, with the sign-in
/// cookie `/auth/gitea` set) goes on: a verified identity with a role gets
/// a session, anything else a page saying why and an audit row. Whatever
/// else reaches this URL — any page can send a browser here — gets the page
/// and no row, and is rate-limited like every sign-in route.
///
/// The sign-in cookie is left to expire by itself: another sign-in started
/// in this browser (a second tab) may still be coming back with it, and
/// each `state` is good for one callback anyway.
async fn callback(
    State(ctx): State<Context>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response> {
    if let Some(refused) = rate_limited(&ctx, &client, "/")? {
        return Ok(refused);
    }
    let browser = session::find_cookie(&ctx.config, session::SIGNIN_COOKIE, &headers);
    let claimed = match q.state.as_deref() {
        Some(state) => ctx.gitea.claim(state, browser),
        None => Err(Refusal::UnknownState),
    };
    let pending = match claimed {
        Ok(pending) => pending,
        Err(refusal) => {
            return page(
                StatusCode::FORBIDDEN,
                &SignInPage::new(&ctx, Some(refusal.message()), "/"),
            );
        }
    };
    let answer = match (q.error, q.code) {
        (Some(error), _) => Err(Refusal::Gitea(match q.error_description {
            Some(d) => format!("{error}: {d}"),
            None => error,
        })),
        (None, Some(code)) => ctx.gitea.finish(pending, &code, q.iss.as_deref()).await,
        (None, None) => Err(Refusal::Gitea(
            "the callback carried neither a code nor an error".into(),
        )),
    };
    let (identity, next) = match answer {
        Ok(found) => found,
        Err(refusal) => return refused(&ctx, &client, refusal).await,
    };
    let Some(role) = roles::role_for(&ctx.config.roles, &identity.login, &identity.groups) else {
        return no_role(&ctx, &client, identity).await;
    };
    let cookie = start_session(&ctx, &client, &headers, &identity, role, "gitea").await?;
    Ok(signed_in(cookie, &next))
}

/// A sign-in that failed: audited, and explained on the sign-in page.
async fn refused(ctx: &Context, client: &Client, refusal: Refusal) -> Result<Response> {
    let (outcome, status) = if refusal.is_misconfiguration() {
        (Outcome::Failed, StatusCode::BAD_GATEWAY)
    } else {
        (Outcome::Denied, StatusCode::FORBIDDEN)
    };
    let message = refusal.message();
    let event = Event::anonymous("signin", "", &client.remote())
        .outcome(outcome)
        .detail(serde_json::json!({"via": "gitea", "reason": message}));
    ctx.audit.record(event).await?;
    page(status, &SignInPage::new(ctx, Some(message), "/"))
}

/// A Gitea account that no `[roles]` entry names: refused and audited.
async fn no_role(ctx: &Context, client: &Client, who: Identity) -> Result<Response> {
    let event = Event {
        actor: who.login.clone(),
        ..Event::anonymous("signin", "", &client.remote())
    }
    .outcome(Outcome::Denied)
    .detail(serde_json::json!({
        "via": "gitea",
        "groups": who.groups,
        "reason": "no [roles] entry matches this account",
    }));
    ctx.audit.record(event).await?;
    page(
        StatusCode::FORBIDDEN,
        &NoRolePage {
            page: Page::default(),
            entries: roles::possible_entries(&who.login, &who.groups),
            login: who.login,
            groups: who.groups,
        },
    )
}

/// The address a request came from, when the server was started with
/// connect info (it always is outside unit tests).
pub struct Client(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

impl Client {
    fn remote(&self) -> String {
        self.0.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct DevForm {
    login: String,
    role: String,
    #[serde(default)]
    next: String,
}

/// `POST /auth/dev`: sign in as anyone with any role — only with
/// `auth.dev_login = true`, only on a loopback listen address, only from
/// this machine.
async fn dev_sign_in(
    State(ctx): State<Context>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<DevForm>,
) -> Result<Response> {
    if !ctx.config.auth.dev_login {
        return Err(Error::NotFound(
            "the dev sign-in is off; sign in with Gitea (`auth.dev_login` enables it for demos)"
                .into(),
        ));
    }
    if !is_loopback_listen(&ctx.config.server.listen)
        || client.0.is_some_and(|ip| !ip.is_loopback())
    {
        return Err(Error::Forbidden(
            "the dev sign-in only works on a loopback address, from this machine".into(),
        ));
    }
    if let Some(refused) = rate_limited(&ctx, &client, &form.next)? {
        return Ok(refused);
    }
    let login = form.login.trim();
    if login.is_empty()
        || login.len() > 64
        || !login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::BadRequest(
            "a login is 1–64 characters of letters, digits, '-', '_' or '.'".into(),
        ));
    }
    let role = Role::parse(&form.role).ok_or_else(|| {
        Error::BadRequest(format!(
            "{} is not a role; pick viewer, operator, admin or owner",
            Quoted(&form.role)
        ))
    })?;
    let who = Identity {
        login: login.to_string(),
        name: None,
        groups: Vec::new(),
    };
    let cookie = start_session(&ctx, &client, &headers, &who, role, "dev").await?;
    Ok(signed_in(cookie, &form.next))
}

/// Creates the session, records the sign-in, returns the `Set-Cookie` value.
async fn start_session(
    ctx: &Context,
    client: &Client,
    headers: &HeaderMap,
    who: &Identity,
    role: Role,
    via: &str,
) -> Result<String> {
    let remote = client.remote();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (cookie, _) = ctx
        .sessions
        .create(session::NewSession {
            login: &who.login,
            role,
            groups: &who.groups,
            remote: &remote,
            user_agent,
        })
        .await?;
    let actor = Actor {
        login: who.login.clone(),
        role,
        via: Via::Session,
        remote,
    };
    ctx.audit
        .record(
            Event::new(&actor, "signin", "")
                .detail(serde_json::json!({"via": via, "name": who.name, "groups": who.groups})),
        )
        .await?;
    Ok(session::set_cookie(&ctx.config, &cookie))
}

/// The redirect after a sign-in: back where the user was going.
fn signed_in(set_cookie: String, next: &str) -> Response {
    (
        [(header::SET_COOKIE, set_cookie)],
        Redirect::to(local_path(next)),
    )
        .into_response()
}

/// Only paths on this server, so a crafted sign-in link cannot send a user
/// elsewhere after signing in (`//evil.example` is another host, too).
fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

/// `POST /auth/logout`: ends the session and drops the cookie. The web
/// middleware has checked the session's CSRF token before this runs, so
/// another site cannot sign a user out.
async fn sign_out(
    State(ctx): State<Context>,
    actor: Option<Extension<Actor>>,
    headers: HeaderMap,
) -> Result<Response> {
    let cookie = session::find_cookie(&ctx.config, session::SESSION_COOKIE, &headers);
    if let (Some(Extension(actor)), Some(cookie)) = (actor, cookie)
        && actor.via == Via::Session
        && ctx.sessions.end(cookie).await?.is_some()
    {
        ctx.audit.record(Event::new(&actor, "signout", "")).await?;
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(&ctx.config))],
        Redirect::to("/auth/login"),
    )
        .into_response())
}

/// None when the client may try to sign in; else the 429 page.
fn rate_limited(ctx: &Context, client: &Client, next: &str) -> Result<Option<Response>> {
    let Some(ip) = client.0 else { return Ok(None) };
    let Err(wait) = ctx.signin_limit.check(ip) else {
        return Ok(None);
    };
    let message = format!(
        "Too many sign-in attempts from {ip}. Wait {} seconds, then try again.",
        wait.as_secs().max(1)
    );
    let refusal = SignInPage::new(ctx, Some(message), next);
    page(StatusCode::TOO_MANY_REQUESTS, &refusal).map(Some)
}

/// The dev sign-in is only for a dashboard nobody else can reach.
fn is_loopback_listen(listen: &str) -> bool {
    match listen.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host == "localhost"),
    }
}
