//! A Gitea REST API stand-in on a loopback port, following Gitea's paths,
//! payloads, token header and pagination (`page`, `limit`, at most 50 per
//! page) for what opsdeck calls: a repository, its branches, its closed
//! pull requests, deleting a branch. Protected branches refuse deletion
//! with 403 as Gitea does. Extend it for other endpoints (webhooks) here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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

#[derive(Default)]
pub struct Repo {
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
            .with_state(repos.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGitea { url, repos }
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
