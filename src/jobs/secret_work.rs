//! Steps of a secret rotation (DESIGN.md "Secrets"): set one key of the
//! env file to a fresh value, put the file back, and keep a Gitea webhook's
//! secret in step with it. A value exists only inside these steps and the
//! env file: the plan names the key and the generator, the output and the
//! audit rows show fingerprints, and the job's [`Redactor`] learns each new
//! value before anything could print it.

use std::path::{Path, PathBuf};

use super::plan::Work;
use super::redact::Redactor;
use crate::config::Config;
use crate::host::exec::command_line as quoted;
use crate::host::gitea::Gitea;
use crate::host::secret::{self, ServerKey};
use crate::host::{Host, crash_point, env_edit, envfile};
use crate::{Error, Result};

/// What this job's rotation steps changed, for its recovery steps, and the
/// audit rows they leave. Lives as long as the job (never resumed).
#[derive(Default)]
pub(super) struct Rotations {
    /// Env file → the backup made before this job first changed it.
    backups: Vec<(PathBuf, PathBuf)>,
    /// Repository → the webhooks this job changed.
    hooks: Vec<(String, Vec<i64>)>,
    /// `(action, detail)` rows to record once the step succeeded.
    pub audit: Vec<(&'static str, serde_json::Value)>,
}

/// What a secret step needs besides its own fields.
pub(super) struct Tools<'a> {
    pub config: &'a Config,
    pub server_key: &'a ServerKey,
    pub redactor: &'a Redactor,
}

pub(super) async fn run(
    work: &Work,
    host: &Host,
    done: &mut Rotations,
    tools: &Tools<'_>,
) -> Result<Vec<String>> {
    match work {
        Work::RotateSecret {
            env_file,
            key,
            generate,
            keep_backups,
        } => {
            // On this host nothing here awaits for real (the local edits are
            // synchronous), so a cancel or timeout cannot stop the step
            // half-way; on another host each edit is atomic there.
            let text = env_edit::read(host, env_file).await?;
            crash_point("rotate:read");
            // Parses the whole file first: a line it cannot read fails the
            // step, naming it, before anything is written.
            let before = envfile::get(env_file, &text, key)?;
            let value = secret::generate(*generate);
            tools.redactor.learn([value.clone()]);
            let changed = envfile::set(env_file, &text, key, &value)?;
            let backup = env_edit::backup(host, env_file, *keep_backups).await?;
            // Known before the write: a cancel during the write (on another
            // host it takes a round trip) still leaves the recovery the
            // backup to put back.
            if !done.backups.iter().any(|(f, _)| f == env_file) {
                done.backups.push((env_file.clone(), backup.clone()));
            }
            env_edit::replace(host, env_file, changed.into_bytes()).await?;
            let was = before.map_or("not set".to_string(), |v| tools.server_key.fingerprint(&v));
            let now = tools.server_key.fingerprint(&value);
            done.audit.push((
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
        Work::RestoreEnv { env_file } => {
            let Some((_, backup)) = done.backups.iter().find(|(f, _)| f == env_file) else {
                return Ok(vec![format!(
                    "this job did not change {}; nothing to put back",
                    host.place(env_file)
                )]);
            };
            env_edit::restore(host, env_file, backup).await?;
            done.audit.push((
                "secret.restore",
                serde_json::json!({"env_file": env_file, "backup": backup, "host": host.name()}),
            ));
            Ok(vec![format!(
                "put back {} as it was before this job, from {}",
                host.place(env_file),
                backup.display()
            )])
        }
        Work::SetWebhookSecret {
            gitea_url,
            repo,
            env_file,
            key,
        } => {
            let value = current(host, env_file, key).await?;
            let gitea = gitea(tools.config, gitea_url)?;
            let hooks = gitea.signed_hooks(repo).await?;
            if hooks.is_empty() {
                return Err(Error::Conflict(format!(
                    "{repo} has no Gitea webhook whose secret could be changed; add the app's webhook in Gitea first"
                )));
            }
            let fingerprint = tools.server_key.fingerprint(&value);
            let mut lines = Vec::new();
            for hook in &hooks {
                gitea.set_secret(repo, hook, &value).await?;
                changed_hooks(done, repo).push(hook.id);
                lines.push(format!(
                    "webhook {} of {repo} now signs with {key} ({fingerprint})",
                    hook.id
                ));
            }
            let changed = changed_hooks(done, repo).clone();
            done.audit.push((
                "secret.webhook",
                serde_json::json!({
                    "secret": key, "repo": repo, "hooks": changed, "fingerprint": fingerprint,
                }),
            ));
            Ok(lines)
        }
        Work::RestoreWebhookSecret {
            gitea_url,
            repo,
            env_file,
            key,
        } => {
            let changed = changed_hooks(done, repo).clone();
            if changed.is_empty() {
                return Ok(vec![format!(
                    "this job changed no webhook of {repo}; nothing to put back"
                )]);
            }
            let value = current(host, env_file, key).await?;
            let gitea = gitea(tools.config, gitea_url)?;
            let fingerprint = tools.server_key.fingerprint(&value);
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
        other => Err(Error::Internal(anyhow::anyhow!(
            "{} reached the secret-step runner",
            other.command_line()
        ))),
    }
}

/// The command a secret step stands for, printed before it runs. Never a value.
pub(super) fn command_line(work: &Work) -> String {
    let path = |p: &Path| quoted(&[p.display().to_string()]);
    match work {
        Work::RotateSecret {
            env_file,
            key,
            generate,
            keep_backups,
        } => format!(
            "set {key} in {} to a new {generate} value (backed up first, {keep_backups} backups kept; values are never shown)",
            path(env_file)
        ),
        Work::RestoreEnv { env_file } => {
            format!("restore {} from this job's backup", path(env_file))
        }
        Work::SetWebhookSecret {
            gitea_url,
            repo,
            env_file,
            key,
        } => format!(
            "PATCH {}/api/v1/repos/{repo}/hooks/<each Gitea webhook> with config.secret = {key} of {}",
            gitea_url.trim_end_matches('/'),
            path(env_file)
        ),
        Work::RestoreWebhookSecret {
            gitea_url,
            repo,
            env_file,
            key,
        } => format!(
            "PATCH {}/api/v1/repos/{repo}/hooks/<each webhook this job changed> with config.secret = {key} of {}",
            gitea_url.trim_end_matches('/'),
            path(env_file)
        ),
        other => other.command_line(),
    }
}

fn changed_hooks<'a>(done: &'a mut Rotations, repo: &str) -> &'a mut Vec<i64> {
    let at = match done.hooks.iter().position(|(r, _)| r == repo) {
        Some(at) => at,
        None => {
            done.hooks.push((repo.to_string(), Vec::new()));
            done.hooks.len() - 1
        }
    };
    &mut done.hooks[at].1
}

/// `key`'s value in the env file now.
async fn current(host: &Host, env_file: &Path, key: &str) -> Result<String> {
    envfile::get(env_file, &env_edit::read(host, env_file).await?, key)?
        .ok_or_else(|| Error::Conflict(format!("{key} is not set in {}", host.place(env_file))))
}

fn gitea(config: &Config, gitea_url: &str) -> Result<Gitea> {
    let token = config.gitea_token()?.ok_or_else(|| {
        Error::Unavailable(
            "changing a Gitea webhook needs an API token: set `auth.gitea_token_file` or OPSDECK_GITEA_TOKEN".into(),
        )
    })?;
    Gitea::new(gitea_url, token)
}
