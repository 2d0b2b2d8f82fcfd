//! The Rotate button (DESIGN.md "Secrets", the runbooks' `openssl rand -hex
//! 32` + `sudoedit .env` + restart):
//!
//! 1. set the secret's key in the app's env file to a value made inside the
//!    job from the OS CSPRNG, after a 0600 backup, atomically;
//! 2. restart the secret's units (default: the app's), wait until they are
//!    active, probe health;
//! 3. with `gitea_webhook`, give the repository's Gitea webhooks the new
//!    secret too, so Gitea and the app disagree only for the restart;
//! 4. when a step after the write fails (and `restore_on_failure`, the
//!    default), put the previous file back, restart and probe again, and put
//!    back any webhook this job changed.
//!
//! Values never leave the env file: the plan names the key and the
//! generator, the output and the audit log show fingerprints.

use crate::auth::Actor;
use crate::config::{App, Generator, Secret};
use crate::error::Quoted;
use crate::host::{Host, env_edit, envfile};
use crate::jobs::{Plan, Request, Step};
use crate::ops::deploy::restart_and_check;
use crate::steps::{Work, secret};
use crate::{Context, Error, Result};

/// Rotates secret `name` of `app` for `actor`; returns the job id.
/// Unknown app or secret → 404; a role below the secret's → 403 (audited).
pub async fn rotate(ctx: &Context, actor: &Actor, app: &str, name: &str) -> Result<i64> {
    let app = ctx.app(app)?;
    let secret = find(app, name)?;
    ctx.require_role(actor, Some(app), "rotate", required_role(app, secret))
        .await?;
    let request = Request {
        app: app.name.clone(),
        kind: "rotate".into(),
        target: secret.name.clone(),
        mutating: true,
        plan: plan(ctx, app, secret)?,
    };
    ctx.jobs.submit(actor, request).await
}

/// The secret's own `role`, else the app's role for `rotate` (owner).
pub fn required_role(app: &App, secret: &Secret) -> crate::auth::Role {
    secret.role.unwrap_or_else(|| app.required_role("rotate"))
}

fn find<'a>(app: &'a App, name: &str) -> Result<&'a Secret> {
    app.secrets.iter().find(|s| s.name == name).ok_or_else(|| {
        Error::NotFound(format!("{} has no secret named {}", app.name, Quoted(name)))
    })
}

fn plan(ctx: &Context, app: &App, secret: &Secret) -> Result<Plan> {
    let env_file = app.env_file.clone().ok_or_else(|| {
        Error::Unavailable(format!(
            "{} has no `env_file` to rotate secrets in",
            app.name
        ))
    })?;
    // Validated when the config was loaded; checked again rather than trusted.
    let generate: Generator = secret.generate.parse().map_err(Error::Unavailable)?;
    let units = secret.units.as_ref().unwrap_or(&app.units);
    let webhook = match &secret.gitea_webhook {
        Some(hook) => {
            let gitea_url = ctx.config.auth.gitea_url.clone().ok_or_else(|| {
                Error::Unavailable("changing a Gitea webhook needs `auth.gitea_url`".into())
            })?;
            Some((gitea_url, hook.repo.clone()))
        }
        None => None,
    };
    let key = secret.name.clone();
    let mut steps = vec![Step {
        title: format!("Set a new {key} in {}", env_file.display()),
        work: Work::RotateSecret(secret::RotateSecret {
            env_file: env_file.clone(),
            key: key.clone(),
            generate,
            keep_backups: secret.keep_backups,
        }),
        timeout: None,
    }];
    steps.extend(restart_and_check(app, units));
    let mut recovery = vec![Step {
        title: format!("Restore the previous {}", env_file.display()),
        work: Work::RestoreEnv(secret::RestoreEnv {
            env_file: env_file.clone(),
        }),
        timeout: None,
    }];
    recovery.extend(restart_and_check(app, units));
    if let Some((gitea_url, repo)) = webhook {
        steps.push(Step {
            title: format!("Give the Gitea webhooks of {repo} the new {key}"),
            work: Work::SetWebhookSecret(secret::SetWebhookSecret {
                gitea_url: gitea_url.clone(),
                repo: repo.clone(),
                env_file: env_file.clone(),
                key: key.clone(),
            }),
            timeout: None,
        });
        recovery.push(Step {
            title: format!("Give the Gitea webhooks of {repo} the previous {key} again"),
            work: Work::RestoreWebhookSecret(secret::RestoreWebhookSecret {
                gitea_url,
                repo,
                env_file,
                key,
            }),
            timeout: None,
        });
    }
    Ok(Plan {
        steps,
        recovery: if secret.restore_on_failure {
            recovery
        } else {
            Vec::new()
        },
        // A failed write changed nothing (it is atomic): nothing to undo.
        // Over SSH a write can fail after it happened (the connection drops
        // before the answer): there the recovery puts the backup back.
        recovery_from: if app.is_local() { 1 } else { 0 },
        timeout: None,
    })
}

/// A secret as the app page shows it: never its value.
pub struct SecretStatus {
    pub name: String,
    /// `sha256:` + 12 hex of the value now in the env file, or why there is none.
    pub fingerprint: String,
    /// Shown in the confirmation before rotating.
    pub note: String,
    pub needs: crate::auth::Role,
    /// `gitea_webhook`'s repository, if the secret lives there too.
    pub webhook_repo: Option<String>,
    /// The last successful rotation: who, and when (Unix ms).
    pub last_rotated: Option<(String, i64)>,
}

/// Every secret of `app` with its fingerprint and last rotation.
pub async fn list(ctx: &Context, app: &App) -> Result<Vec<SecretStatus>> {
    let text = match app.env_file.as_deref() {
        Some(f) => Some((f, env_edit::read(&Host::of(&ctx.config, app)?, f).await)),
        None => None,
    };
    let mut out = Vec::new();
    for secret in &app.secrets {
        let fingerprint = match &text {
            None => "no env_file".to_string(),
            Some((_, Err(_))) => "the env file cannot be read".to_string(),
            Some((path, Ok(text))) => match envfile::get(path, text, &secret.name) {
                Ok(Some(value)) => ctx.server_key.fingerprint(&value),
                Ok(None) => "not set".to_string(),
                Err(_) => "the env file cannot be parsed".to_string(),
            },
        };
        let last_rotated: Option<(String, i64)> = sqlx::query_as(
            "SELECT actor, finished_at FROM jobs WHERE app = ? AND kind = 'rotate' AND target = ? \
             AND state = 'succeeded' ORDER BY id DESC LIMIT 1",
        )
        .bind(&app.name)
        .bind(&secret.name)
        .fetch_optional(&ctx.db)
        .await?;
        out.push(SecretStatus {
            name: secret.name.clone(),
            fingerprint,
            note: secret.note.clone().unwrap_or_default(),
            needs: required_role(app, secret),
            webhook_repo: secret.gitea_webhook.as_ref().map(|h| h.repo.clone()),
            last_rotated,
        });
    }
    Ok(out)
}
