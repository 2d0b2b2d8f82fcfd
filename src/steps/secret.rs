//! Steps of a secret rotation (DESIGN.md "Secrets"): set one key of the
//! env file to a fresh value, put the file back, and keep a Gitea webhook's
//! secret in step with it; what they share with a pasted value
//! (`secret_set.rs`) and a key file (`secret_file.rs`). A value exists only
//! inside these steps and the env file: the plan names the key and the
//! generator, the output and the audit rows show fingerprints, and the
//! job's [`Redactor`] learns each new value before anything could print it.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::redact::Redactor;
use super::{Bounds, Perform, StepJob, path};
use crate::config::{Config, Generator};
use crate::host::exec::Ended;
use crate::host::gitea::Gitea;
use crate::host::secret;
use crate::host::{Host, crash_point, env_edit, envfile};
use crate::{Error, Result};

/// Sets `key` in the env file to a value made inside the step from the
/// OS CSPRNG (never stored anywhere else), after a 0600 backup next to
/// the file; the write is atomic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateSecret {
    pub env_file: PathBuf,
    pub key: String,
    pub generate: Generator,
    pub keep_backups: usize,
}

/// Recovery: puts back the env file as it was before this job's rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreEnv {
    pub env_file: PathBuf,
}

/// Sets the secret of `repo`'s Gitea webhooks to `key`'s value in the env
/// file (read when the step runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWebhookSecret {
    pub gitea_url: String,
    pub repo: String,
    pub env_file: PathBuf,
    pub key: String,
}

/// Recovery: sets the webhooks this job changed back to `key`'s value in
/// the (restored) env file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreWebhookSecret {
    pub gitea_url: String,
    pub repo: String,
    pub env_file: PathBuf,
    pub key: String,
}

/// What this job's secret steps changed, for its recovery steps.
#[derive(Debug, Default)]
pub(super) struct Changed {
    /// Env file → the backup made before this job first changed it.
    backups: Vec<(PathBuf, PathBuf)>,
    /// The Gitea webhooks this job changed.
    hooks: Hooks,
    /// The GitHub webhooks this job changed (`github.rs`).
    pub(super) github_hooks: Hooks,
    /// The secrets whose `store` command this job ran and that did not
    /// refuse: their store may hold the new value (`store.rs`).
    pub(super) stores: Vec<String>,
}

/// Repository → the webhooks of it a job changed.
#[derive(Debug, Default)]
pub(super) struct Hooks(Vec<(String, Vec<i64>)>);

impl Hooks {
    pub(super) fn of(&mut self, repo: &str) -> &mut Vec<i64> {
        let at = match self.0.iter().position(|(r, _)| r == repo) {
            Some(at) => at,
            None => {
                self.0.push((repo.to_string(), Vec::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }
}

/// What each secret step does; the lines it prints.
pub(super) trait Edit: Sync {
    fn edit(&self, job: &mut StepJob<'_>) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// Does a secret step, then, when it changed something (it left audit
/// rows), learns the env file's values again: it may hold new ones.
pub(super) fn perform_edit<'a>(
    step: &'a impl Edit,
    job: &'a mut StepJob<'_>,
    bounds: Bounds,
) -> BoxFuture<'a, Ended> {
    Box::pin(async move {
        let ended = bounds.in_process(step.edit(job)).await;
        if !job.audit.is_empty() {
            learn_secret_files(job.config, job.app, job.redactor).await;
        }
        ended
    })
}

impl Perform for RotateSecret {
    fn command_line(&self) -> String {
        format!(
            "set {} in {} to a new {} value (backed up first, {} backups kept; values are never shown)",
            self.key,
            path(&self.env_file),
            self.generate,
            self.keep_backups
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for RotateSecret {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let value = Zeroizing::new(secret::generate(self.generate));
        write_value(job, &self.env_file, &self.key, self.keep_backups, &value).await
    }
}

/// Sets `key` of `env_file` to `value`, after a backup; the lines to print.
pub(super) async fn write_value(
    job: &mut StepJob<'_>,
    env_file: &Path,
    key: &str,
    keep_backups: usize,
    value: &str,
) -> Result<Vec<String>> {
    let host = job.host()?;
    // On this host nothing here awaits for real (the local edits are
    // synchronous), so a cancel or timeout cannot stop the step
    // half-way; on another host each edit is atomic there.
    let text = env_edit::read(&host, env_file).await?;
    crash_point("rotate:read");
    // Parses the whole file first: a line it cannot read fails the
    // step, naming it, before anything is written.
    let before = envfile::get(env_file, &text, key)?;
    job.redactor.learn([value.to_owned()]);
    let literal = envfile::literal(value).map_err(|why| {
        Error::BadRequest(format!(
            "the new value of {key} cannot be written to {}: {why}",
            host.place(env_file)
        ))
    })?;
    let changed = envfile::set(env_file, &text, key, &literal)?;
    let backup =
        replace_backed_up(job, &host, env_file, changed.into_bytes(), keep_backups).await?;
    let was = before.map_or("not set".to_string(), |v| job.server_key.fingerprint(&v));
    let now = job.server_key.fingerprint(value);
    job.audit.push((
        "secret.rotate",
        serde_json::json!({
            "secret": key, "env_file": env_file, "before": was, "after": now,
            "backup": backup, "host": host.name(),
        }),
    ));
    Ok(vec![
        format!("backed up {} to {}", host.place(env_file), backup.display()),
        format!(
            "{key} changed from {was} to {now}; every other line of {} is as it was",
            host.place(env_file)
        ),
    ])
}

/// Backs `file` up (0600, next to it, the newest `keep_backups` kept) and
/// replaces it with `content` atomically, keeping its mode and owner; the
/// backup, which this job's recovery puts back.
pub(super) async fn replace_backed_up(
    job: &mut StepJob<'_>,
    host: &Host,
    file: &Path,
    content: Vec<u8>,
    keep_backups: usize,
) -> Result<PathBuf> {
    let backup = env_edit::backup(host, file, keep_backups).await?;
    // Known before the write: a cancel during the write (on another
    // host it takes a round trip) still leaves the recovery the
    // backup to put back.
    let done = &mut job.memory.secret;
    if !done.backups.iter().any(|(f, _)| f == file) {
        done.backups.push((file.to_path_buf(), backup.clone()));
    }
    env_edit::replace(host, file, content).await?;
    Ok(backup)
}

impl Perform for RestoreEnv {
    fn command_line(&self) -> String {
        format!("restore {} from this job's backup", path(&self.env_file))
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for RestoreEnv {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let env_file = &self.env_file;
        let host = job.host()?;
        let done = &job.memory.secret;
        let Some((_, backup)) = done.backups.iter().find(|(f, _)| f == env_file) else {
            return Ok(vec![format!(
                "this job did not change {}; nothing to put back",
                host.place(env_file)
            )]);
        };
        let backup = backup.clone();
        env_edit::restore(&host, env_file, &backup).await?;
        job.audit.push((
            "secret.restore",
            serde_json::json!({"env_file": env_file, "backup": backup, "host": host.name()}),
        ));
        Ok(vec![format!(
            "put back {} as it was before this job, from {}",
            host.place(env_file),
            backup.display()
        )])
    }
}

impl Perform for SetWebhookSecret {
    fn command_line(&self) -> String {
        patch_line(
            &self.gitea_url,
            &self.repo,
            "each Gitea webhook",
            &self.key,
            &self.env_file,
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for SetWebhookSecret {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let (repo, key) = (&self.repo, &self.key);
        let (gitea, value, fingerprint) =
            webhook_secret(job, &self.gitea_url, &self.env_file, key).await?;
        let hooks = gitea.signed_hooks(repo).await?;
        if hooks.is_empty() {
            return Err(Error::Conflict(format!(
                "{repo} has no Gitea webhook whose secret could be changed; add the app's webhook in Gitea first"
            )));
        }
        let mut lines = Vec::new();
        for hook in &hooks {
            gitea.set_secret(repo, hook, &value).await?;
            job.memory.secret.hooks.of(repo).push(hook.id);
            lines.push(format!(
                "webhook {} of {repo} now signs with {key} ({fingerprint})",
                hook.id
            ));
        }
        let changed = job.memory.secret.hooks.of(repo).clone();
        job.audit.push((
            "secret.webhook",
            serde_json::json!({
                "secret": key, "repo": repo, "hooks": changed, "fingerprint": fingerprint,
            }),
        ));
        Ok(lines)
    }
}

impl Perform for RestoreWebhookSecret {
    fn command_line(&self) -> String {
        patch_line(
            &self.gitea_url,
            &self.repo,
            "each webhook this job changed",
            &self.key,
            &self.env_file,
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_edit(self, job, bounds)
    }
}

impl Edit for RestoreWebhookSecret {
    async fn edit(&self, job: &mut StepJob<'_>) -> Result<Vec<String>> {
        let (repo, key) = (&self.repo, &self.key);
        let changed = job.memory.secret.hooks.of(repo).clone();
        if changed.is_empty() {
            return Ok(vec![format!(
                "this job changed no webhook of {repo}; nothing to put back"
            )]);
        }
        let (gitea, value, fingerprint) =
            webhook_secret(job, &self.gitea_url, &self.env_file, key).await?;
        let mut lines = Vec::new();
        for hook in gitea.signed_hooks(repo).await? {
            if changed.contains(&hook.id) {
                gitea.set_secret(repo, &hook, &value).await?;
                lines.push(format!(
                    "webhook {} of {repo} signs with {key} ({fingerprint}) again",
                    hook.id
                ));
            }
        }
        Ok(lines)
    }
}

/// Masks from now on the values of every env file of `app` (its own and
/// its secrets') and the content of its key files, read where they live
/// (over SSH for an app on another host: its build output can print them
/// as well). A file that cannot be read teaches nothing; the steps that
/// need it say why.
pub async fn learn_secret_files(config: &Config, app: &str, redactor: &Redactor) {
    let Some(app) = config.app(app) else {
        return;
    };
    let Ok(host) = Host::of(config, app) else {
        return;
    };
    let secrets: Vec<String> = app.secrets.iter().map(|s| s.key().to_owned()).collect();
    for env_file in app.env_files() {
        if let Ok(text) = env_edit::read(&host, &env_file).await {
            redactor.learn_text(&text, &secrets);
        }
    }
    for key_file in app.key_files() {
        if let Ok(text) = env_edit::read(&host, &key_file).await {
            redactor.learn([text]);
        }
    }
}

/// `key`'s value in the env file now.
pub(super) async fn current(host: &Host, env_file: &Path, key: &str) -> Result<String> {
    envfile::get(env_file, &env_edit::read(host, env_file).await?, key)?
        .ok_or_else(|| Error::Conflict(format!("{key} is not set in {}", host.place(env_file))))
}

/// The command line of a webhook step: a PATCH of `hooks` of `repo`.
fn patch_line(gitea_url: &str, repo: &str, hooks: &str, key: &str, env_file: &Path) -> String {
    format!(
        "PATCH {}/api/v1/repos/{repo}/hooks/<{hooks}> with config.secret = {key} of {}",
        gitea_url.trim_end_matches('/'),
        path(env_file)
    )
}

/// For a webhook step: a Gitea client, `key`'s value in the env file now,
/// and its fingerprint.
async fn webhook_secret(
    job: &StepJob<'_>,
    gitea_url: &str,
    env_file: &Path,
    key: &str,
) -> Result<(Gitea, String, String)> {
    let (value, fingerprint) = value_now(job, env_file, key).await?;
    Ok((gitea(job.config, gitea_url)?, value, fingerprint))
}

/// `key`'s value in the env file now, and its fingerprint.
pub(super) async fn value_now(
    job: &StepJob<'_>,
    env_file: &Path,
    key: &str,
) -> Result<(String, String)> {
    let value = current(&job.host()?, env_file, key).await?;
    let fingerprint = job.server_key.fingerprint(&value);
    Ok((value, fingerprint))
}

fn gitea(config: &Config, gitea_url: &str) -> Result<Gitea> {
    let token = config.gitea_token()?.ok_or_else(|| {
        Error::Unavailable(
            "changing a Gitea webhook needs an API token: set `auth.gitea_token_file` or OPSDECK_GITEA_TOKEN".into(),
        )
    })?;
    Gitea::new(gitea_url, token)
}
