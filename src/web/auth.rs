//! Who is asking, and whether a browser really meant to ask it.
//!
//! `authenticate` runs before every route: a bearer token or the session
//! cookie becomes an `Actor` in the request extensions (with the session's
//! CSRF token as `Csrf`); a missing identity sends a browser to the sign-in
//! page and an API client a 401. Every unsafe browser request must then come
//! from our own origin and, when it rides on a session cookie, carry the
//! session's CSRF token.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Page, is_api_path};
use crate::auth::{Actor, Via, session, token};
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

    let (actor, csrf) = match bearer_token(req.headers()).map_err(IntoResponse::into_response)? {
        Some(token) => (Some(token_actor(ctx, token, remote).await?), None),
        None => match session_actor(ctx, req.headers(), remote)
            .await
            .map_err(IntoResponse::into_response)?
        {
            Some((actor, csrf)) => (Some(actor), Some(csrf)),
            None => (None, None),
        },
    };

    let Some(actor) = actor else {
        if is_public(&path) {
            if is_unsafe(req.method()) && !path.starts_with("/hooks/") {
                check_origin(ctx, req.headers()).map_err(IntoResponse::into_response)?;
            }
            return Ok(req);
        }
        return Err(sign_in_first(&req, &path));
    };

    if is_unsafe(req.method()) && !path.starts_with("/hooks/") && actor.via != Via::Token {
        check_origin(ctx, req.headers()).map_err(IntoResponse::into_response)?;
        if !is_sign_in(&path) {
            let expected = csrf.as_ref().map_or("", |c| c.0.as_str());
            req = check_csrf(ctx, req, expected)
                .await
                .map_err(IntoResponse::into_response)?;
        }
    }
    req.extensions_mut().insert(actor);
    if let Some(csrf) = csrf {
        req.extensions_mut().insert(csrf);
    }
    Ok(req)
}

async fn token_actor(ctx: &Context, token: &str, remote: String) -> Result<Actor, Response> {
    match token::verify(&ctx.db, token).await {
        Ok(Some((name, role))) => Ok(Actor {
            login: format!("token:{name}"),
            role,
            via: Via::Token,
            remote,
        }),
        Ok(None) => Err(Error::Unauthorized(
            "this API token is unknown or has been revoked".into(),
        )
        .into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The live session behind the session cookie, if any. An expired or
/// revoked cookie is simply no identity: the browser is sent to sign in.
async fn session_actor(
    ctx: &Context,
    headers: &HeaderMap,
    remote: String,
) -> Result<Option<(Actor, Csrf)>> {
    // HTTP/2 may split cookies over several headers.
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(&ctx.config, h));
    let Some(cookie) = cookie else {
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

/// `Authorization: Bearer <token>`, if the header is there at all.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
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
        return csrf_matches(sent.as_bytes(), expected)
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
    if !csrf_matches(sent.as_bytes(), expected) {
        return Err(csrf_wrong());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Constant-time, so response timing does not leak the token byte by byte.
fn csrf_matches(sent: &[u8], expected: &str) -> bool {
    let expected = expected.as_bytes();
    !expected.is_empty()
        && sent.len() == expected.len()
        && sent
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
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
