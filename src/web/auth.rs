//! Who is asking, and whether a browser really meant to ask it.
//!
//! `authenticate` runs before every route: a bearer token or the session
//! cookie becomes an `Actor` in the request extensions (with the session's
//! CSRF token as `Csrf`); a missing identity sends a browser to the sign-in
//! page and an API client a 401. Every unsafe browser request must then come
//! from our own origin and, when it rides on a session cookie, carry the
//! session's CSRF token. Each refusal here (a token that is malformed,
//! unknown or revoked, a foreign origin, a missing or wrong CSRF token) is
//! audited through `Audit::refused`, which bounds the rows per address.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Page, is_api_path};
use crate::audit::Event;
use crate::auth::token::{self, Checked};
use crate::auth::{Actor, Via, session};
use crate::{Context, Error, Result};

/// The session's CSRF token, for templates (`Page`) to render into forms
/// and `hx-headers`. Absent for token-authenticated requests.
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Paths that do not care who asks: health checks and assets. Skipping
/// the session lookup keeps them cheap.
fn is_anonymous(path: &str) -> bool {
    path == "/healthz" || path == "/favicon.ico" || path.starts_with("/static/")
}

/// Paths anyone may reach, signed in or not: the sign-in flow, and webhooks
/// (which prove themselves with an HMAC signature instead).
fn is_public(path: &str) -> bool {
    path.starts_with("/auth/") || path.starts_with("/hooks/")
}

pub async fn authenticate(State(ctx): State<Context>, req: Request, next: Next) -> Response {
    if is_anonymous(req.uri().path()) {
        return next.run(req).await;
    }
    match admit(&ctx, req).await {
        Ok(req) => {
            // Kept for `error::uniform`, so an error page still shows who is
            // signed in and can sign them out.
            let page = Page::from_extensions(req.extensions());
            let mut res = next.run(req).await;
            if res.status().is_client_error() || res.status().is_server_error() {
                res.extensions_mut().insert(page);
            }
            res
        }
        Err(mut refusal) => {
            if refusal.status() == StatusCode::UNAUTHORIZED {
                // RFC 6750: tells a client which credentials would do.
                refusal.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"opsdeck\""),
                );
            }
            refusal
        }
    }
}

/// The request, with its actor attached, or the response refusing it.
async fn admit(ctx: &Context, mut req: Request) -> Result<Request, Response> {
    let path = req.uri().path().to_string();
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default();

    let bearer = match bearer_token(req.headers()) {
        Ok(bearer) => bearer,
        Err(refused) => {
            let event = Event::anonymous("auth.token", "", &remote).detail(asked(&req));
            return Err(refuse(ctx, event, refused).await);
        }
    };
    let (actor, csrf) = match bearer {
        Some(token) => (Some(token_actor(ctx, token, &remote).await?), None),
        None => match session_actor(ctx, req.headers(), remote.clone())
            .await
            .map_err(IntoResponse::into_response)?
        {
            Some((actor, csrf)) => (Some(actor), Some(csrf)),
            None => (None, None),
        },
    };
    // Webhooks prove themselves with their signature, not an origin.
    let needs_origin = is_unsafe(req.method()) && !path.starts_with("/hooks/");

    let Some(actor) = actor else {
        if is_public(&path) {
            if needs_origin && let Err(refused) = check_origin(ctx, req.headers()) {
                let event = Event::anonymous("auth.origin", "", &remote).detail(asked(&req));
                return Err(refuse(ctx, event, refused).await);
            }
            return Ok(req);
        }
        return Err(sign_in_first(&req, &path));
    };

    if needs_origin && actor.via != Via::Token {
        if let Err(refused) = check_origin(ctx, req.headers()) {
            let event = Event::new(&actor, "auth.origin", "").detail(asked(&req));
            return Err(refuse(ctx, event, refused).await);
        }
        if !is_sign_in(&path) {
            let expected = csrf.as_ref().map_or("", |c| c.0.as_str());
            let event = Event::new(&actor, "auth.csrf", "").detail(asked(&req));
            req = match check_csrf(ctx, req, expected).await {
                Ok(req) => req,
                Err(refused) => return Err(refuse(ctx, event, refused).await),
            };
        }
    }
    req.extensions_mut().insert(actor);
    if let Some(csrf) = csrf {
        req.extensions_mut().insert(csrf);
    }
    Ok(req)
}

/// What a refused request asked for, for its audit row.
fn asked(req: &Request) -> serde_json::Value {
    serde_json::json!({"method": req.method().as_str(), "path": req.uri().path()})
}

/// Audits a refused request (`Audit::refused`: bounded per address) and
/// answers it with `refused`.
async fn refuse(ctx: &Context, mut event: Event, refused: Error) -> Response {
    if let Some(fields) = event.detail.as_object_mut() {
        fields.insert("why".into(), refused.public_message().into());
    }
    match ctx.audit.refused(event).await {
        Ok(()) => refused.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn token_actor(ctx: &Context, token: &str, remote: &str) -> Result<Actor, Response> {
    let detail = match token::verify(&ctx.db, token).await {
        Ok(Checked::Live { name, role }) => {
            return Ok(Actor {
                login: format!("token:{name}"),
                role,
                via: Via::Token,
                remote: remote.to_string(),
            });
        }
        Ok(Checked::Revoked { name }) => serde_json::json!({"token": name, "revoked": true}),
        Ok(Checked::Unknown) => serde_json::json!({"token": null}),
        Err(e) => return Err(e.into_response()),
    };
    let refused = Error::Unauthorized("this API token is unknown or has been revoked".into());
    let event = Event::anonymous("auth.token", "", remote).detail(detail);
    Err(refuse(ctx, event, refused).await)
}

/// The live session behind the session cookie, if any. An expired or
/// revoked cookie is simply no identity: the browser is sent to sign in.
async fn session_actor(
    ctx: &Context,
    headers: &HeaderMap,
    remote: String,
) -> Result<Option<(Actor, Csrf)>> {
    let Some(cookie) = session::find_cookie(&ctx.config, session::SESSION_COOKIE, headers) else {
        return Ok(None);
    };
    Ok(ctx.sessions.lookup(cookie).await?.map(|s| {
        let actor = Actor {
            login: s.login,
            role: s.role,
            via: Via::Session,
            remote,
        };
        (actor, Csrf(s.csrf))
    }))
}

/// `Authorization: Bearer <token>`, if the header is there at all. The
/// scheme is case-insensitive (RFC 9110 §11.1): `bearer` is as good.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or_else(|| {
            Error::Unauthorized("send the API token as `Authorization: Bearer <token>`".into())
        })
}

/// Browsers go to the sign-in page and come back; programs get a 401.
fn sign_in_first(req: &Request, path: &str) -> Response {
    let unauthorized = Error::Unauthorized(
        "sign in first, or send an API token as `Authorization: Bearer <token>`".into(),
    );
    if is_api_path(path) {
        return unauthorized.into_response();
    }
    let back = req.uri().path_and_query().map_or(path, |pq| pq.as_str());
    let login = format!(
        "/auth/login?next={}",
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    if req.headers().contains_key("hx-request") {
        // htmx follows an ordinary redirect inside its XHR and would swap the
        // sign-in page into a fragment; this makes it navigate instead.
        let mut res = unauthorized.into_response();
        if let Ok(value) = login.parse() {
            res.headers_mut().insert("hx-redirect", value);
        }
        return res;
    }
    Redirect::to(&login).into_response()
}

/// Signing in does not use the session it may replace, and its form is
/// served to people without one: the Origin check alone guards it.
fn is_sign_in(path: &str) -> bool {
    path == "/auth/dev"
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request must come from a page of ours: its `Origin` (or, when a
/// browser leaves it out, its `Referer`) must be `server.public_url`'s.
fn check_origin(ctx: &Context, headers: &HeaderMap) -> Result<()> {
    let public = url::Url::parse(&ctx.config.server.public_url)
        .map(|u| u.origin())
        .map_err(|e| {
            Error::Internal(anyhow::anyhow!(
                "server.public_url {:?} is not a URL: {e}",
                ctx.config.server.public_url
            ))
        })?;
    let sent = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Some(sent) = sent else {
        return Err(Error::Forbidden(
            "this request has neither an Origin nor a Referer header, so opsdeck cannot tell \
             that it came from its own pages; it was refused"
                .into(),
        ));
    };
    match url::Url::parse(&sent).map(|u| u.origin()) {
        Ok(origin) if origin == public && origin.is_tuple() => Ok(()),
        _ => Err(Error::Forbidden(format!(
            "this request came from {sent}, not from {}; opsdeck only accepts forms sent \
             from its own pages (is server.public_url right?)",
            public.ascii_serialization()
        ))),
    }
}

/// The session's CSRF token must come back in the `X-CSRF-Token` header
/// (htmx) or the `csrf` field of a urlencoded form (plain forms). Reading
/// the form consumes the body, so it is put back for the handler.
async fn check_csrf(ctx: &Context, req: Request, expected: &str) -> Result<Request> {
    if let Some(sent) = req.headers().get(CSRF_HEADER) {
        return crate::auth::same_secret(sent.as_bytes(), expected.as_bytes())
            .then_some(req)
            .ok_or_else(csrf_wrong);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(csrf_missing());
    }
    let max = ctx.config.server.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| super::headers::too_large(max))?;
    let sent = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
        .ok_or_else(csrf_missing)?;
    if !crate::auth::same_secret(sent.as_bytes(), expected.as_bytes()) {
        return Err(csrf_wrong());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn csrf_missing() -> Error {
    Error::Forbidden(
        "this form was sent without its CSRF token; reload the page and try again".into(),
    )
}

fn csrf_wrong() -> Error {
    Error::Forbidden(
        "this form's CSRF token does not match your session; reload the page and try again".into(),
    )
}
