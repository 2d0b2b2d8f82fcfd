//! The Gitea REST API (`/api/v1`), with the API token from
//! `auth.gitea_token_file`: what sweeps (and webhook secrets) need of it;
//! also the HTTP client and error handling GitHub's API shares (`github.rs`).

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Items per page asked for; Gitea caps it at its `MAX_RESPONSE_ITEMS` (50).
const PAGE: usize = 50;
/// Never follow more pages than this (50 000 items): a loop guard.
const MAX_PAGES: usize = 1000;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Gitea {
    api: url::Url,
    token: String,
    client: reqwest::Client,
}

/// A branch as `GET /repos/{owner}/{repo}/branches` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    pub name: String,
    pub commit: BranchCommit,
    #[serde(default)]
    pub protected: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BranchCommit {
    pub id: String,
    /// RFC 3339.
    pub timestamp: String,
}

/// A pull request as `GET /repos/{owner}/{repo}/pulls` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: i64,
    #[serde(default)]
    pub merged: bool,
    /// RFC 3339, when merged.
    pub merged_at: Option<String>,
    pub head: PullHead,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullHead {
    #[serde(rename = "ref")]
    pub branch: String,
}

/// A repository webhook as `GET /repos/{owner}/{repo}/hooks` lists it: the
/// fields opsdeck sends back when it changes the secret.
#[derive(Debug, Clone, Deserialize)]
pub struct Hook {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub branch_filter: String,
    #[serde(default)]
    pub authorization_header: String,
    #[serde(default)]
    pub active: bool,
}

#[derive(Deserialize)]
struct Repository {
    default_branch: String,
}

impl Gitea {
    /// A client for the Gitea at `base` (`https://git.example.org/`).
    pub fn new(base: &str, token: String) -> Result<Gitea> {
        let mut api = url::Url::parse(base).map_err(|e| {
            Error::Unavailable(format!("auth.gitea_url {base:?} is not a URL: {e}"))
        })?;
        api.path_segments_mut()
            .map_err(|()| Error::Unavailable(format!("auth.gitea_url {base:?} cannot have paths")))?
            .pop_if_empty()
            .extend(["api", "v1"]);
        Ok(Gitea {
            api,
            token,
            client: client()?,
        })
    }

    /// `/api/v1/repos/{owner}/{name}/<rest…>`; each segment is escaped.
    fn repo_url(&self, repo: &str, rest: &[&str]) -> url::Url {
        let mut url = self.api.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("repos").extend(repo.split('/')).extend(rest);
        }
        url
    }

    pub async fn default_branch(&self, repo: &str) -> Result<String> {
        let repository: Repository = self.get(self.repo_url(repo, &[])).await?;
        Ok(repository.default_branch)
    }

    pub async fn branches(&self, repo: &str) -> Result<Vec<Branch>> {
        self.all_pages(self.repo_url(repo, &["branches"])).await
    }

    /// Closed pull requests (merged ones among them).
    pub async fn closed_pulls(&self, repo: &str) -> Result<Vec<Pull>> {
        let mut url = self.repo_url(repo, &["pulls"]);
        url.query_pairs_mut().append_pair("state", "closed");
        self.all_pages(url).await
    }

    /// `DELETE /repos/{owner}/{repo}/branches/{branch}`.
    pub async fn delete_branch(&self, repo: &str, branch: &str) -> Result<()> {
        let mut url = self.repo_url(repo, &["branches"]);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(branch.split('/'));
        }
        let res = self.send(self.client.delete(url.clone())).await?;
        check("Gitea", &url, res).await.map(drop)
    }

    /// The webhooks of `repo` that sign deliveries with a secret (Gitea's
    /// own kind; chat hooks have none).
    pub async fn signed_hooks(&self, repo: &str) -> Result<Vec<Hook>> {
        let mut hooks: Vec<Hook> = self.all_pages(self.repo_url(repo, &["hooks"])).await?;
        hooks.retain(|h| h.kind == "gitea");
        Ok(hooks)
    }

    /// `PATCH /repos/{owner}/{repo}/hooks/{id}` with the new `config.secret`,
    /// sending back the hook's events, branch filter, authorization header
    /// and active flag: Gitea's edit resets whatever the request leaves out
    /// (events to `push` only). Errors never quote the request.
    pub async fn set_secret(&self, repo: &str, hook: &Hook, secret: &str) -> Result<()> {
        let url = self.repo_url(repo, &["hooks", &hook.id.to_string()]);
        let body = serde_json::json!({
            "config": { "secret": secret },
            "events": hook.events,
            "branch_filter": hook.branch_filter,
            "authorization_header": hook.authorization_header,
            "active": hook.active,
        });
        let res = self
            .send(self.client.patch(url.clone()).json(&body))
            .await?;
        check("Gitea", &url, res).await.map(drop)
    }

    async fn all_pages<T: DeserializeOwned>(&self, url: url::Url) -> Result<Vec<T>> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = url.clone();
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("limit", &PAGE.to_string());
            let items: Vec<T> = self.get(url).await?;
            let last = items.len() < PAGE;
            all.extend(items);
            if last {
                break;
            }
        }
        Ok(all)
    }

    async fn get<T: DeserializeOwned>(&self, url: url::Url) -> Result<T> {
        let res = self.send(self.client.get(url.clone())).await?;
        json("Gitea", &url, res).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        request
            .header(
                reqwest::header::AUTHORIZATION,
                format!("token {}", self.token),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot reach Gitea at {}: {e}", self.api)))
    }
}

/// The HTTP client of a forge's API (Gitea's, GitHub's): rustls, no
/// redirects followed (a token is never sent on to another host).
pub(super) fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("building the HTTP client: {e}")))
}

/// The JSON of a 2xx answer of `forge`'s API.
pub(super) async fn json<T: DeserializeOwned>(
    forge: &str,
    url: &url::Url,
    res: reqwest::Response,
) -> Result<T> {
    check(forge, url, res).await?.json().await.map_err(|e| {
        Error::Unavailable(format!(
            "{forge} answered {} with unexpected JSON: {e}",
            url.path()
        ))
    })
}

/// A 2xx response, or an error quoting the forge's own message (Gitea and
/// GitHub both answer errors as `{"message": …}`).
pub(super) async fn check(
    forge: &str,
    url: &url::Url,
    res: reqwest::Response,
) -> Result<reqwest::Response> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    let said = res
        .json::<Message>()
        .await
        .map(|m| format!(": {}", m.message))
        .unwrap_or_default();
    Err(Error::Unavailable(format!(
        "{forge} refused {} {}{said}",
        url.path(),
        status
    )))
}
