//! Every `/auth` route: the dev sign-in, sign-out.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use crate::audit::Event;
use crate::auth::{Actor, Role, Via, session};
use crate::{Context, Error, Result};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/auth/dev", post(dev_sign_in))
        .route("/auth/logout", post(sign_out))
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
    if let Some(refused) = rate_limited(&ctx, &client) {
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
            "{:?} is not a role; pick viewer, operator, admin or owner",
            form.role
        ))
    })?;
    let cookie = start_session(&ctx, &client, &headers, login, role, &[], "dev").await?;
    Ok(signed_in(cookie, &form.next))
}

/// Creates the session, records the sign-in, returns the `Set-Cookie` value.
pub async fn start_session(
    ctx: &Context,
    client: &Client,
    headers: &HeaderMap,
    login: &str,
    role: Role,
    groups: &[String],
    via: &str,
) -> Result<String> {
    let remote = client.remote();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (_, max) = session::lifetimes(&ctx.config.auth);
    let (cookie, _) = session::create(
        &ctx.db,
        session::NewSession {
            login,
            role,
            groups,
            remote: &remote,
            user_agent,
        },
        max,
    )
    .await?;
    let actor = Actor {
        login: login.to_string(),
        role,
        via: Via::Session,
        remote,
    };
    ctx.audit
        .record(
            Event::new(&actor, "signin", "")
                .detail(serde_json::json!({"via": via, "groups": groups})),
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
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

#[derive(Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /auth/logout`: ends the session (with its CSRF token, so another
/// site cannot sign a user out) and drops the cookie.
async fn sign_out(
    State(ctx): State<Context>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Result<Response> {
    let (idle, max) = session::lifetimes(&ctx.config.auth);
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| session::cookie_value(&ctx.config, h));
    if let Some(cookie) = cookie
        && let Some(live) = session::lookup(&ctx.db, cookie, idle, max).await?
    {
        if form.csrf != live.csrf {
            return Err(Error::Forbidden(
                "this sign-out was sent without your session's CSRF token; reload the page and \
                 sign out from there"
                    .into(),
            ));
        }
        session::end(&ctx.db, cookie).await?;
        let actor = Actor {
            login: live.login,
            role: live.role,
            via: Via::Session,
            remote: client.remote(),
        };
        ctx.audit.record(Event::new(&actor, "signout", "")).await?;
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(&ctx.config))],
        Redirect::to("/auth/login"),
    )
        .into_response())
}

/// None when the client may try to sign in; else the 429 refusal.
pub fn rate_limited(ctx: &Context, client: &Client) -> Option<Response> {
    let ip = client.0?;
    let wait = ctx.signin_limit.check(ip).err()?;
    let message = format!(
        "Too many sign-in attempts from {ip}. Wait {} seconds, then try again.",
        wait.as_secs().max(1)
    );
    Some((StatusCode::TOO_MANY_REQUESTS, message).into_response())
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
