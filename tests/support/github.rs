//! A GitHub REST API stand-in on a loopback port for what opsdeck calls of
//! it: a repository's webhooks, listed (`GET /repos/{owner}/{repo}/hooks`,
//! `per_page`/`page`, the secret shown as `********` as GitHub does) and
//! edited (`PATCH /repos/{owner}/{repo}/hooks/{id}`, which like GitHub's
//! replaces the whole `config` — a secret left out is removed — and
//! resets `events` to `push` when they are left out). Requests need
//! `Authorization: Bearer <TOKEN>`; every request is recorded with the
//! headers GitHub asks clients for, and edits fail on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

pub const TOKEN: &str = "github-test-token";
/// GitHub's largest `per_page`.
const MAX_PER_PAGE: usize = 100;

#[derive(Debug, Clone)]
pub struct Hook {
    pub id: i64,
    /// Where it delivers.
    pub url: String,
    /// Empty: no secret.
    pub secret: String,
    pub events: Vec<String>,
    pub active: bool,
    pub content_type: String,
    pub insecure_ssl: String,
}

impl Hook {
    /// An active JSON hook to `url` with `secret`, for `events`.
    pub fn new(id: i64, url: &str, secret: &str, events: &[&str]) -> Hook {
        Hook {
            id,
            url: url.into(),
            secret: secret.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            active: true,
            content_type: "json".into(),
            insecure_ssl: "0".into(),
        }
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub accept: String,
    pub api_version: String,
    pub user_agent: String,
    pub body: Option<Value>,
}

#[derive(Default)]
pub struct Repo {
    pub hooks: Vec<Hook>,
    /// Edits of these hooks answer 500.
    pub failing_hooks: Vec<i64>,
}

#[derive(Default)]
pub struct World {
    pub repos: HashMap<String, Repo>,
    pub requests: Vec<Request>,
}

type Shared = Arc<Mutex<World>>;

pub struct FakeGithub {
    /// `http://127.0.0.1:<port>`, as `auth.github_api`.
    pub url: String,
    pub world: Shared,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let world: Shared = Arc::default();
        let app = Router::new()
            .route("/repos/{owner}/{name}/hooks", get(list))
            .route("/repos/{owner}/{name}/hooks/{id}", patch(edit))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGithub { url, world }
    }

    /// The `[auth]` lines of an opsdeck that calls this GitHub: its API
    /// root and the token in a 0600 file in `dir`.
    pub fn auth_lines(&self, dir: &std::path::Path) -> String {
        use std::os::unix::fs::PermissionsExt;
        let token = dir.join("github_token");
        std::fs::write(&token, TOKEN).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "github_api = {:?}\ngithub_token_file = {:?}\n",
            self.url,
            token.display().to_string()
        )
    }

    /// Changes repository `full_name` (`owner/name`), creating it if needed.
    pub fn with_repo<T>(&self, full_name: &str, change: impl FnOnce(&mut Repo) -> T) -> T {
        let mut world = self.world.lock().unwrap();
        change(world.repos.entry(full_name.to_string()).or_default())
    }

    pub fn hook(&self, repo: &str, id: i64) -> Hook {
        self.with_repo(repo, |r| r.hooks.iter().find(|h| h.id == id).cloned())
            .unwrap()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.world.lock().unwrap().requests.clone()
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, axum::Json(body)).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Records the request, then runs `f` on the repository if the caller may.
fn with(
    world: &Shared,
    request: (Method, Uri, &HeaderMap, Option<Value>),
    full_name: String,
    f: impl FnOnce(&mut Repo) -> Response,
) -> Response {
    let (method, uri, headers, body) = request;
    let mut world = world.lock().unwrap();
    world.requests.push(Request {
        method: method.to_string(),
        uri: uri.to_string(),
        accept: header(headers, "accept"),
        api_version: header(headers, "x-github-api-version"),
        user_agent: header(headers, "user-agent"),
        body,
    });
    if header(headers, "authorization") != format!("Bearer {TOKEN}") {
        return refuse(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    match world.repos.get_mut(&full_name) {
        Some(repo) => f(repo),
        None => refuse(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// A hook as GitHub's API shows it: the secret masked.
fn api_hook(hook: &Hook) -> Value {
    let mut config = json!({
        "content_type": hook.content_type,
        "insecure_ssl": hook.insecure_ssl,
        "url": hook.url,
    });
    if !hook.secret.is_empty() {
        config["secret"] = "********".into();
    }
    json!({
        "type": "Repository",
        "id": hook.id,
        "name": "web",
        "active": hook.active,
        "events": hook.events,
        "config": config,
        "updated_at": "2026-12-03T10:00:00Z",
        "created_at": "2026-01-01T10:00:00Z",
        "last_response": { "code": 200, "status": "active", "message": "OK" },
    })
}

async fn list(
    State(world): State<Shared>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = (method, uri, &headers, None);
    with(&world, request, format!("{owner}/{name}"), |repo| {
        let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let per_page: usize = query
            .get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30)
            .min(MAX_PER_PAGE);
        let listed: Vec<Value> = repo
            .hooks
            .iter()
            .skip((page.max(1) - 1) * per_page)
            .take(per_page)
            .map(api_hook)
            .collect();
        axum::Json(listed).into_response()
    })
}

async fn edit(
    State(world): State<Shared>,
    Path((owner, name, id)): Path<(String, String, i64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    axum::Json(form): axum::Json<Value>,
) -> Response {
    let request = (method, uri, &headers, Some(form.clone()));
    with(&world, request, format!("{owner}/{name}"), |repo| {
        if repo.failing_hooks.contains(&id) {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
        }
        let Some(hook) = repo.hooks.iter_mut().find(|h| h.id == id) else {
            return refuse(StatusCode::NOT_FOUND, "Not Found");
        };
        if let Some(config) = form.get("config") {
            let Some(url) = config.get("url").and_then(Value::as_str) else {
                return refuse(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
            };
            let text = |key: &str, default: &str| {
                config
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_owned()
            };
            hook.url = url.to_owned();
            hook.secret = text("secret", "");
            hook.content_type = text("content_type", "form");
            hook.insecure_ssl = text("insecure_ssl", "0");
        }
        hook.events = match form.get("events").and_then(Value::as_array) {
            Some(events) => events
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect(),
            None => vec!["push".into()],
        };
        hook.active = form.get("active").and_then(Value::as_bool).unwrap_or(true);
        axum::Json(api_hook(hook)).into_response()
    })
}
