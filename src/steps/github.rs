//! Steps that keep a GitHub repository's webhooks signing with the secret
//! the app's env file has (`github_webhook` on a secret), as `secret.rs`
//! does for Gitea's: the new value after the app has it, the previous one
//! again in the recovery, for exactly the hooks this job changed.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::secret::{Edit, perform_edit, value_now};
use super::{Bounds, Perform, StepJob, path};
use crate::config::Config;
use crate::host::exec::Ended;
use crate::host::github::{GitHub, Hook};
use crate::{Error, Result};

/// Sets the secret of `repo`'s webhooks (those delivering to `url`, or
/// without it every one that has a secret) to `key`'s value in the env
/// file, read when the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetGithubHookSecret {
    pub api: String,
    pub repo: String,
    pub url: Option<String>,
    pub env_file: PathBuf,
    pub key: String,
}

/// Recovery: sets the webhooks this job changed back to `key`'s value in
/// the (restored) env file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreGithubHookSecret {
    pub api: String,
    pub repo: String,
    pub env_file: PathBuf,
    pub key: String,
}

impl Perform for SetGithubHookSecret {
    fn command_line(&self) -> String {
        let hooks = match &self.url {
            Some(url) => format!("each GitHub webhook to {url}"),
            None => "each GitHub webhook with a secret".to_owned(),
        };
        patch_line(&self.api, &self.repo, &hooks, &self.key, &self.env_file)
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl SetGithubHookSecret {
    fn wanted(&self, hook: &Hook) -> bool {
        match &self.url {
            Some(url) => hook.config.url == *url,
            None => hook.signed(),
        }
    }
}

impl Edit for SetGithubHookSecret {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let (repo, key) = (&self.repo, &self.key);
        let (github, value, fingerprint) =
            webhook_secret(job, &self.api, &self.env_file, key).await?;
        let hooks: Vec<Hook> = github
            .hooks(repo)
            .await?
            .into_iter()
            .filter(|h| self.wanted(h))
            .collect();
        if hooks.is_empty() {
            let which = match &self.url {
                Some(url) => format!("delivering to {url}"),
                None => "with a secret".to_owned(),
            };
            return Err(Error::Conflict(format!(
                "{repo} has no GitHub webhook {which} whose secret could be changed; add the app's webhook on GitHub first"
            )));
        }
        let mut lines = Vec::new();
        for hook in &hooks {
            github.set_secret(repo, hook, &value).await?;
            job.memory.secret.github_hooks.of(repo).push(hook.id);
            lines.push(format!(
                "GitHub webhook {} of {repo} now signs with {key} ({fingerprint})",
                hook.id
            ));
        }
        let changed = job.memory.secret.github_hooks.of(repo).clone();
        job.audit.push((
            "secret.webhook",
            serde_json::json!({
                "secret": key, "forge": "github", "repo": repo, "hooks": changed,
                "fingerprint": fingerprint,
            }),
        ));
        Ok(lines)
    }
}

impl Perform for RestoreGithubHookSecret {
    fn command_line(&self) -> String {
        patch_line(
            &self.api,
            &self.repo,
            "each GitHub webhook this job changed",
            &self.key,
            &self.env_file,
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for RestoreGithubHookSecret {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let (repo, key) = (&self.repo, &self.key);
        let changed = job.memory.secret.github_hooks.of(repo).clone();
        if changed.is_empty() {
            return Ok(vec![format!(
                "this job changed no GitHub webhook of {repo}; nothing to put back"
            )]);
        }
        let (github, value, fingerprint) =
            webhook_secret(job, &self.api, &self.env_file, key).await?;
        let mut lines = Vec::new();
        for hook in github.hooks(repo).await? {
            if changed.contains(&hook.id) {
                github.set_secret(repo, &hook, &value).await?;
                lines.push(format!(
                    "GitHub webhook {} of {repo} signs with {key} ({fingerprint}) again",
                    hook.id
                ));
            }
        }
        Ok(lines)
    }
}

/// The command line of a webhook step: a PATCH of `hooks` of `repo`.
fn patch_line(api: &str, repo: &str, hooks: &str, key: &str, env_file: &Path) -> String {
    format!(
        "PATCH {}/repos/{repo}/hooks/<{hooks}> with config.secret = {key} of {}",
        api.trim_end_matches('/'),
        path(env_file)
    )
}

/// For a webhook step: a GitHub client, `key`'s value in the env file
/// now, and its fingerprint.
async fn webhook_secret(
    job: &StepJob<'_>,
    api: &str,
    env_file: &Path,
    key: &str,
) -> Result<(GitHub, String, String)> {
    let (value, fingerprint) = value_now(job, env_file, key).await?;
    Ok((github(job.config, api)?, value, fingerprint))
}

fn github(config: &Config, api: &str) -> Result<GitHub> {
    let token = config.github_token()?.ok_or_else(|| {
        Error::Unavailable(
            "changing a GitHub webhook needs an API token: set `auth.github_token_file` or OPSDECK_GITHUB_TOKEN".into(),
        )
    })?;
    GitHub::new(api, token)
}
