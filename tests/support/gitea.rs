//! A Gitea REST API stand-in on a loopback port, following Gitea's paths,
//! payloads, token header and pagination (`page`, `limit`, at most 50 per
//! page) for what opsdeck calls: a repository, its branches, its closed
//! pull requests, deleting a branch. Protected branches refuse deletion
//! with 403 as Gitea does. Webhooks: listed without their secret, and
//! edited with an `EditHookOption` as Gitea's `editHook` does it (events
//! missing from the request are reset to `push`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

pub const TOKEN: &str = "gitea-test-token";
/// Gitea's `MAX_RESPONSE_ITEMS` default.
const MAX_LIMIT: usize = 50;

#[derive(Debug, Clone)]
pub struct Branch {
    pub name: String,
    /// RFC 3339 time of the last commit.
    pub committed: String,
    pub protected: bool,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: i64,
    pub head: String,
    /// RFC 3339, for merged pull requests.
    pub merged_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub id: i64,
    /// `gitea`, `slack`, …
    pub kind: String,
    pub secret: String,
    pub events: Vec<String>,
    pub branch_filter: String,
    pub authorization_header: String,
    pub active: bool,
}

impl Hook {
    /// An active hook of `kind` with `secret`, for `events`, on branch `main`.
    pub fn new(id: i64, kind: &str, secret: &str, events: &[&str]) -> Hook {
        Hook {
            id,
            kind: kind.into(),
            secret: secret.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            branch_filter: "main".into(),
            authorization_header: String::new(),
            active: true,
        }
    }
}

#[derive(Default)]
pub struct Repo {
    pub hooks: Vec<Hook>,
    /// Every hook edit answers 500 while set.
    pub failing_edits: bool,
    pub default_branch: String,
    pub branches: Vec<Branch>,
    pub pulls: Vec<Pull>,
    /// Branches deleted through the API, in order.
    pub deleted: Vec<String>,
}

type Repos = Arc<Mutex<HashMap<String, Repo>>>;

pub struct FakeGitea {
    /// `http://127.0.0.1:<port>/`, as `auth.gitea_url`.
    pub url: String,
    pub repos: Repos,
}

impl FakeGitea {
    pub async fn start() -> FakeGitea {
        let repos: Repos = Arc::default();
        let app = Router::new()
            .route("/api/v1/repos/{owner}/{name}", get(repository))
            .route("/api/v1/repos/{owner}/{name}/branches", get(branches))
            .route(
                "/api/v1/repos/{owner}/{name}/branches/{*branch}",
                axum::routing::delete(delete_branch),
            )
            .route("/api/v1/repos/{owner}/{name}/pulls", get(pulls))
            .route("/api/v1/repos/{owner}/{name}/hooks", get(hooks))
            .route("/api/v1/repos/{owner}/{name}/hooks/{id}", patch(edit_hook))
            .with_state(repos.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGitea { url, repos }
    }

    /// An `[auth]` section for an opsdeck that calls this Gitea: its URL,
    /// and the OAuth2 client secret and API token in 0600 files in `dir`.
    pub fn auth_config(&self, dir: &std::path::Path) -> String {
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            super::write_private(&path, text);
            path.display().to_string()
        };
        format!(
            "[auth]\ngitea_url = {:?}\nclient_id = \"opsdeck\"\nclient_secret_file = {:?}\ngitea_token_file = {:?}\n\n",
            self.url,
            file("client_secret", "oauth-client-secret"),
            file("gitea_token", TOKEN),
        )
    }

    /// Changes repository `full_name` (`owner/name`), creating it if needed.
    pub fn with_repo<T>(&self, full_name: &str, change: impl FnOnce(&mut Repo) -> T) -> T {
        let mut repos = self.repos.lock().unwrap();
        change(repos.entry(full_name.to_string()).or_default())
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("token {TOKEN}"))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message, "url": "" }))).into_response()
}

/// Runs `f` on the repository if the caller may, or answers as Gitea does.
fn with(
    repos: &Repos,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    f: impl FnOnce(&mut Repo) -> Response,
) -> Response {
    if !authorized(headers) {
        return refuse(StatusCode::UNAUTHORIZED, "token is required");
    }
    let mut repos = repos.lock().unwrap();
    match repos.get_mut(&format!("{owner}/{name}")) {
        Some(repo) => f(repo),
        None => refuse(StatusCode::NOT_FOUND, "The target couldn't be found."),
    }
}

fn page<T: Clone>(items: &[T], query: &HashMap<String, String>) -> Vec<T> {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(30)
        .min(MAX_LIMIT);
    items
        .iter()
        .skip((page.max(1) - 1) * limit)
        .take(limit)
        .cloned()
        .collect()
}

async fn repository(
    State(repos): State<Repos>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    with(&repos, &headers, &owner, &name, |repo| {
        axum::Json(json!({
            "full_name": format!("{owner}/{name}"),
            "name": name,
            "default_branch": repo.default_branch,
        }))
        .into_response()
    })
}

async fn branches(
    State(repos): State<Repos>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    with(&repos, &headers, &owner, &name, |repo| {
        let listed: Vec<Value> = page(&repo.branches, &query)
            .into_iter()
            .map(|b| {
                json!({
                    "name": b.name,
                    "commit": {
                        "id": format!("{:0>40}", b.name.len()),
                        "message": "work\n",
                        "timestamp": b.committed,
                    },
                    "protected": b.protected,
                    "user_can_push": !b.protected,
                    "user_can_merge": !b.protected,
                })
            })
            .collect();
        axum::Json(listed).into_response()
    })
}

async fn pulls(
    State(repos): State<Repos>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    with(&repos, &headers, &owner, &name, |repo| {
        // Every pull request here is closed; an `open` query finds none.
        let closed = if query.get("state").map(String::as_str) == Some("open") {
            Vec::new()
        } else {
            repo.pulls.clone()
        };
        let listed: Vec<Value> = page(&closed, &query)
            .into_iter()
            .map(|p| {
                json!({
                    "number": p.number,
                    "state": "closed",
                    "merged": p.merged_at.is_some(),
                    "merged_at": p.merged_at,
                    "head": { "ref": p.head, "label": p.head },
                    "base": { "ref": "main", "label": "main" },
                })
            })
            .collect();
        axum::Json(listed).into_response()
    })
}

async fn delete_branch(
    State(repos): State<Repos>,
    Path((owner, name, branch)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    with(&repos, &headers, &owner, &name, |repo| {
        let Some(at) = repo.branches.iter().position(|b| b.name == branch) else {
            return refuse(StatusCode::NOT_FOUND, "The target couldn't be found.");
        };
        if repo.branches[at].protected || branch == repo.default_branch {
            return refuse(StatusCode::FORBIDDEN, "branch protected");
        }
        repo.branches.remove(at);
        repo.deleted.push(branch);
        StatusCode::NO_CONTENT.into_response()
    })
}

/// Gitea's `api.Hook`: the config has the URL and content type, never the secret.
fn api_hook(hook: &Hook) -> Value {
    json!({
        "id": hook.id,
        "type": hook.kind,
        "branch_filter": hook.branch_filter,
        "config": {"url": format!("https://ops.example.org/hooks/gitea/{}", hook.id), "content_type": "json"},
        "events": hook.events,
        "authorization_header": hook.authorization_header,
        "active": hook.active,
        "updated_at": "2026-12-03T10:00:00Z",
        "created_at": "2026-01-01T10:00:00Z",
    })
}

async fn hooks(
    State(repos): State<Repos>,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    with(&repos, &headers, &owner, &name, |repo| {
        let listed: Vec<Value> = page(&repo.hooks, &query).iter().map(api_hook).collect();
        axum::Json(listed).into_response()
    })
}

/// Gitea's `EditHookOption`.
#[derive(serde::Deserialize)]
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

async fn edit_hook(
    State(repos): State<Repos>,
    Path((owner, name, id)): Path<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(form): axum::Json<EditHook>,
) -> Response {
    with(&repos, &headers, &owner, &name, |repo| {
        if repo.failing_edits {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UpdateWebhook: database is locked",
            );
        }
        let Some(hook) = repo.hooks.iter_mut().find(|h| h.id == id) else {
            return refuse(StatusCode::NOT_FOUND, "The target couldn't be found.");
        };
        if let Some(secret) = form.config.as_ref().and_then(|c| c.get("secret")) {
            hook.secret = secret.clone();
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
    })
}
