//! The GitHub REST API (`auth.github_api`, `https://api.github.com` by
//! default), with the token from `auth.github_token_file`: a repository's
//! webhooks, listed and given a new secret (`github_webhook` on a secret).

use serde::Deserialize;

use super::gitea::{check, client, json};
use crate::{Error, Result};

/// Items per page asked for: GitHub's largest.
const PAGE: usize = 100;
/// Never follow more pages than this: a loop guard.
const MAX_PAGES: usize = 100;
/// The REST API version opsdeck is written against.
const API_VERSION: &str = "2022-11-28";

#[derive(Clone)]
pub struct GitHub {
    api: url::Url,
    token: String,
    client: reqwest::Client,
}

/// A repository webhook as `GET /repos/{owner}/{repo}/hooks` lists it: the
/// fields opsdeck sends back when it changes the secret.
#[derive(Debug, Clone, Deserialize)]
pub struct Hook {
    pub id: i64,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub events: Vec<String>,
    pub config: HookConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HookConfig {
    #[serde(default)]
    pub url: String,
    pub content_type: Option<String>,
    /// `"0"` or `"1"` (GitHub has sent it as a number too): sent back as is.
    pub insecure_ssl: Option<serde_json::Value>,
    /// `"********"` when the hook has a secret; GitHub never shows it.
    pub secret: Option<String>,
}

impl Hook {
    /// Whether the hook signs its deliveries with a secret.
    pub fn signed(&self) -> bool {
        self.config.secret.as_deref().is_some_and(|s| !s.is_empty())
    }
}

impl GitHub {
    /// A client for the API rooted at `base` (`https://api.github.com`, or
    /// `https://github.example.org/api/v3` for GitHub Enterprise Server).
    pub fn new(base: &str, token: String) -> Result<GitHub> {
        let mut api = url::Url::parse(base).map_err(|e| {
            Error::Unavailable(format!("auth.github_api {base:?} is not a URL: {e}"))
        })?;
        api.path_segments_mut()
            .map_err(|()| {
                Error::Unavailable(format!("auth.github_api {base:?} cannot have paths"))
            })?
            .pop_if_empty();
        Ok(GitHub {
            api,
            token,
            client: client()?,
        })
    }

    /// `/repos/{owner}/{name}/hooks[/<id>]`; each segment is escaped.
    fn hooks_url(&self, repo: &str, id: Option<i64>) -> url::Url {
        let mut url = self.api.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("repos").extend(repo.split('/')).push("hooks");
            if let Some(id) = id {
                segments.push(&id.to_string());
            }
        }
        url
    }

    /// The webhooks of `repo`, every page of them.
    pub async fn hooks(&self, repo: &str) -> Result<Vec<Hook>> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = self.hooks_url(repo, None);
            url.query_pairs_mut()
                .append_pair("per_page", &PAGE.to_string())
                .append_pair("page", &page.to_string());
            let res = self.send(self.client.get(url.clone())).await?;
            let hooks: Vec<Hook> = json("GitHub", &url, res).await?;
            let last = hooks.len() < PAGE;
            all.extend(hooks);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// `PATCH /repos/{owner}/{repo}/hooks/{id}` with the new secret, sending
    /// back the hook's URL, content type, TLS check, events and active flag:
    /// GitHub's edit replaces the whole `config` (a secret left out is
    /// removed). Errors never quote the request.
    pub async fn set_secret(&self, repo: &str, hook: &Hook, secret: &str) -> Result<()> {
        let url = self.hooks_url(repo, Some(hook.id));
        let mut config = serde_json::json!({ "url": hook.config.url, "secret": secret });
        if let Some(content_type) = &hook.config.content_type {
            config["content_type"] = content_type.clone().into();
        }
        if let Some(insecure_ssl) = &hook.config.insecure_ssl {
            config["insecure_ssl"] = insecure_ssl.clone();
        }
        let body = serde_json::json!({
            "config": config,
            "events": hook.events,
            "active": hook.active,
        });
        let res = self
            .send(self.client.patch(url.clone()).json(&body))
            .await?;
        check("GitHub", &url, res).await.map(drop)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        request
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            // GitHub refuses requests without one.
            .header(
                reqwest::header::USER_AGENT,
                concat!("opsdeck/", env!("CARGO_PKG_VERSION")),
            )
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot reach GitHub at {}: {e}", self.api)))
    }
}
