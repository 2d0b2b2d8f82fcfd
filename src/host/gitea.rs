//! The few Gitea API calls opsdeck makes on a repository's behalf: list its
//! webhooks and change their secret (`GET`/`PATCH
//! /api/v1/repos/{owner}/{repo}/hooks[/{id}]`), with the bot token from
//! `auth.gitea_token_file`.

use std::time::Duration;

use serde::Deserialize;

use crate::{Error, Result};

/// One request may take this long.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Hooks asked for per page.
const PAGE: usize = 50;

pub struct Gitea {
    /// The API root, `<gitea_url>/api/v1`.
    api: String,
    token: String,
    client: reqwest::Client,
}

/// A repository webhook as Gitea's API lists it (the fields opsdeck keeps
/// when it edits one).
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
struct Message {
    message: Option<String>,
}

impl Gitea {
    pub fn new(gitea_url: &str, token: String) -> Result<Gitea> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(Gitea {
            api: format!("{}/api/v1", gitea_url.trim_end_matches('/')),
            token,
            client,
        })
    }

    /// The webhooks of `repo` (`owner/name`) that sign their deliveries
    /// with a secret (Gitea's own kind; chat hooks have none).
    pub async fn signed_hooks(&self, repo: &str) -> Result<Vec<Hook>> {
        let mut hooks = Vec::new();
        for page in 1.. {
            let url = format!("{}/repos/{repo}/hooks?page={page}&limit={PAGE}", self.api);
            let res = self
                .send(self.client.get(&url), repo, "list the webhooks of")
                .await?;
            let batch: Vec<Hook> = res.json().await.map_err(|e| {
                Error::Unavailable(format!(
                    "Gitea's list of webhooks of {repo} is not what its API returns: {e}"
                ))
            })?;
            let last = batch.len() < PAGE;
            hooks.extend(batch);
            if last {
                break;
            }
        }
        hooks.retain(|h| h.kind == "gitea");
        Ok(hooks)
    }

    /// Sets `hook`'s secret, sending back its events, branch filter,
    /// authorization header and active flag: Gitea's edit resets whatever
    /// the request leaves out (events to `push` only).
    pub async fn set_secret(&self, repo: &str, hook: &Hook, secret: &str) -> Result<()> {
        let url = format!("{}/repos/{repo}/hooks/{}", self.api, hook.id);
        let body = serde_json::json!({
            "config": { "secret": secret },
            "events": hook.events,
            "branch_filter": hook.branch_filter,
            "authorization_header": hook.authorization_header,
            "active": hook.active,
        });
        let what = format!("change the secret of webhook {} of", hook.id);
        self.send(self.client.patch(&url).json(&body), repo, &what)
            .await
            .map(drop)
    }

    /// Sends with the token; a failure says what was attempted and Gitea's
    /// own message (never the request, which may carry the secret).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        repo: &str,
        what: &str,
    ) -> Result<reqwest::Response> {
        let res = request
            .header(
                reqwest::header::AUTHORIZATION,
                format!("token {}", self.token),
            )
            .send()
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot {what} {repo}: Gitea did not answer ({})",
                    e.without_url()
                ))
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let message = res
            .json::<Message>()
            .await
            .ok()
            .and_then(|m| m.message)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        Err(Error::Unavailable(format!(
            "cannot {what} {repo}: Gitea answered {status}{message}"
        )))
    }
}
