//! A small HTTP server that answers the part of Gitea's API opsdeck calls
//! for webhook secrets, with Gitea's paths, payloads and quirks:
//! `GET /api/v1/repos/{owner}/{repo}/hooks?page&limit` (the secret is never
//! listed) and `PATCH /api/v1/repos/{owner}/{repo}/hooks/{id}` with an
//! `EditHookOption` (a missing `events` resets them to `push`, as Gitea's
//! `editHook` does), `Authorization: token <token>` required.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Hook {
    pub id: i64,
    pub kind: String,
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub branch_filter: String,
    pub authorization_header: String,
    pub active: bool,
}

#[derive(Default)]
struct Repos {
    token: String,
    hooks: BTreeMap<String, Vec<Hook>>,
    /// Every PATCH answers 500 while set.
    failing: bool,
}

type Shared = Arc<Mutex<Repos>>;

pub struct GiteaApi {
    /// `http://127.0.0.1:<port>/`, what `auth.gitea_url` names.
    pub url: String,
    repos: Shared,
}

impl GiteaApi {
    /// Serves on a loopback port; only `token` is accepted.
    pub async fn start(token: &str) -> GiteaApi {
        let repos: Shared = Arc::new(Mutex::new(Repos {
            token: token.into(),
            ..Repos::default()
        }));
        let app = Router::new()
            .route("/api/v1/repos/{owner}/{repo}/hooks", get(list))
            .route("/api/v1/repos/{owner}/{repo}/hooks/{id}", patch(edit))
            .with_state(repos.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        GiteaApi { url, repos }
    }

    /// Adds a webhook of `kind` (`gitea`, `slack`, …) to `repo`; its id.
    pub fn add_hook(&self, repo: &str, kind: &str, secret: &str, events: &[&str]) -> i64 {
        let mut repos = self.repos.lock().unwrap();
        let id = repos.hooks.values().map(Vec::len).sum::<usize>() as i64 + 1;
        repos.hooks.entry(repo.into()).or_default().push(Hook {
            id,
            kind: kind.into(),
            url: format!("https://ops.example.org/hooks/gitea/{id}"),
            secret: secret.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            branch_filter: "main".into(),
            authorization_header: String::new(),
            active: true,
        });
        id
    }

    pub fn hook(&self, repo: &str, id: i64) -> Hook {
        let repos = self.repos.lock().unwrap();
        repos.hooks[repo]
            .iter()
            .find(|h| h.id == id)
            .unwrap()
            .clone()
    }

    pub fn set_failing(&self, failing: bool) {
        self.repos.lock().unwrap().failing = failing;
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": text, "url": "https://docs.gitea.com/api"})),
    )
        .into_response()
}

fn authorized(repos: &Repos, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("token "))
        .is_some_and(|t| t == repos.token)
}

/// Gitea's `api.Hook`: the config carries url and content type, never the secret.
fn api_hook(hook: &Hook) -> Value {
    json!({
        "id": hook.id,
        "type": hook.kind,
        "branch_filter": hook.branch_filter,
        "config": {"url": hook.url, "content_type": "json"},
        "events": hook.events,
        "authorization_header": hook.authorization_header,
        "active": hook.active,
        "updated_at": "2026-12-03T10:00:00Z",
        "created_at": "2026-01-01T10:00:00Z",
    })
}

#[derive(Deserialize)]
struct Paging {
    page: Option<usize>,
    limit: Option<usize>,
}

async fn list(
    State(repos): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    Query(paging): Query<Paging>,
    headers: HeaderMap,
) -> Response {
    let repos = repos.lock().unwrap();
    if !authorized(&repos, &headers) {
        return message(StatusCode::UNAUTHORIZED, "token is required");
    }
    let Some(hooks) = repos.hooks.get(&format!("{owner}/{repo}")) else {
        return message(StatusCode::NOT_FOUND, "The target couldn't be found.");
    };
    let limit = paging.limit.unwrap_or(30).clamp(1, 50);
    let page = paging.page.unwrap_or(1).max(1);
    let listed: Vec<Value> = hooks
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(api_hook)
        .collect();
    axum::Json(listed).into_response()
}

/// Gitea's `EditHookOption`.
#[derive(Deserialize)]
struct EditHook {
    config: Option<BTreeMap<String, String>>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    branch_filter: String,
    #[serde(default)]
    authorization_header: String,
    active: Option<bool>,
}

async fn edit(
    State(repos): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(form): axum::Json<EditHook>,
) -> Response {
    let mut repos = repos.lock().unwrap();
    if !authorized(&repos, &headers) {
        return message(StatusCode::UNAUTHORIZED, "token is required");
    }
    if repos.failing {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UpdateWebhook: database is locked",
        );
    }
    let Some(hook) = repos
        .hooks
        .get_mut(&format!("{owner}/{repo}"))
        .and_then(|hooks| hooks.iter_mut().find(|h| h.id == id))
    else {
        return message(StatusCode::NOT_FOUND, "The target couldn't be found.");
    };
    if let Some(config) = form.config {
        if let Some(url) = config.get("url") {
            hook.url = url.clone();
        }
        if let Some(secret) = config.get("secret") {
            hook.secret = secret.clone();
        }
    }
    hook.events = if form.events.is_empty() {
        vec!["push".into()]
    } else {
        form.events
    };
    hook.branch_filter = form.branch_filter;
    hook.authorization_header = form.authorization_header;
    if let Some(active) = form.active {
        hook.active = active;
    }
    axum::Json(api_hook(hook)).into_response()
}
