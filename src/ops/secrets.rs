//! The Rotate button (DESIGN.md "Secrets", the runbooks' `openssl rand -hex
//! 32` + `sudoedit .env` + restart):
//!
//! 1. set the secret's key in the app's env file to a value made inside the
//!    job from the OS CSPRNG, after a 0600 backup, atomically;
//! 2. restart the secret's units (default: the app's), wait until they are
//!    active, probe health;
//! 3. with `gitea_webhook` (and `github_webhook`), give the repository's
//!    webhooks the new secret too, so they and the app disagree only for
//!    the restart; a `store` command gets it right after the env file
//!    (`secret_places.rs`);
//! 4. when a step after the write fails (and `restore_on_failure`, the
//!    default), put the previous file back, restart and probe again, and put
//!    back any webhook (and store) this job changed.
//!
//! Values never leave the env file: the plan names the key and the
//! generator, the output and the audit log show fingerprints.

use crate::auth::Actor;
use crate::config::{App, Generator, Secret};
use crate::error::Quoted;
use crate::host::exec::command_line;
use crate::host::{Host, env_edit, envfile};
use crate::jobs::{Plan, Request, Step};
use crate::ops::deploy::restart_and_check;
use crate::ops::{schedule, secret_age, secret_places};
use crate::steps::{Work, secret};
use crate::{Context, Error, Result};

/// Rotates secret `name` of `app` for `actor`; returns the job id.
/// Unknown app or secret → 404; a role below the secret's → 403 (audited).
pub async fn rotate(ctx: &Context, actor: &Actor, app: &str, name: &str) -> Result<i64> {
    let app = ctx.app(app)?;
    let secret = find(app, name)?;
    ctx.require_role(actor, Some(app), "rotate", required_role(app, secret))
        .await?;
    submit(ctx, actor, app, secret).await
}

/// Queues the rotation's job for `actor`, whose role was checked (or who
/// is the scheduler); returns the job id.
pub(super) async fn submit(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    secret: &Secret,
) -> Result<i64> {
    let request = Request {
        app: app.name.clone(),
        kind: "rotate".into(),
        target: secret.name.clone(),
        mutating: true,
        plan: plan(ctx, app, secret)?,
    };
    ctx.jobs.submit(actor, request).await
}

/// Whether a rotation of `secret` is queued or running.
pub(super) async fn active(ctx: &Context, app: &App, secret: &Secret) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE app = ? AND kind = 'rotate' AND target = ? \
         AND state IN ('queued', 'running')",
    )
    .bind(&app.name)
    .bind(&secret.name)
    .fetch_one(&ctx.db)
    .await?;
    Ok(n > 0)
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
    // Validated when the config was loaded; checked again rather than trusted.
    let generate: Generator = secret.generate.parse().map_err(Error::Unavailable)?;
    let Some(env_file) = app.env_file.clone() else {
        return secret_places::store_only(app, secret, generate);
    };
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
    let (store, restore) = secret_places::store(secret, &env_file).unzip();
    steps.extend(store);
    steps.extend(restart_and_check(app, units));
    let mut recovery = vec![Step {
        title: format!("Restore the previous {}", env_file.display()),
        work: Work::RestoreEnv(secret::RestoreEnv {
            env_file: env_file.clone(),
        }),
        timeout: None,
    }];
    recovery.extend(restore);
    recovery.extend(restart_and_check(app, units));
    let github = secret_places::github(&ctx.config, secret, &env_file);
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
    if let Some((set, undo)) = github {
        steps.push(set);
        recovery.push(undo);
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
    /// `github_webhook`'s repository, if the secret lives there too.
    pub github_repo: Option<String>,
    /// The `store` command, if it keeps the secret too.
    pub store: Option<String>,
    /// How old it is against its `max_age`, if it has one.
    pub age: Option<secret_age::Age>,
    /// When its `schedule` rotates it next (Unix ms).
    pub next_rotation: Option<i64>,
    /// The last successful rotation: who, and when (Unix ms).
    pub last_rotated: Option<(String, i64)>,
}

/// Every secret of `app` with its fingerprint and last rotation.
pub async fn list(ctx: &Context, app: &App) -> Result<Vec<SecretStatus>> {
    let text = match app.env_file.as_deref() {
        Some(f) => Some((f, env_edit::read(&Host::of(&ctx.config, app)?, f).await)),
        None => None,
    };
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for secret in &app.secrets {
        let fingerprint = match &text {
            None if secret.store.is_some() => "kept by its store only".to_string(),
            None => "no env_file".to_string(),
            Some((_, Err(_))) => "the env file cannot be read".to_string(),
            Some((path, Ok(text))) => match envfile::get(path, text, &secret.name) {
                Ok(Some(value)) => ctx.server_key.fingerprint(&value),
                Ok(None) => "not set".to_string(),
                Err(_) => "the env file cannot be parsed".to_string(),
            },
        };
        let last_rotated = secret_age::last_rotation(ctx, &app.name, &secret.name).await?;
        let rotated = last_rotated.as_ref().map(|(_, at)| *at);
        out.push(SecretStatus {
            name: secret.name.clone(),
            fingerprint,
            note: secret.note.clone().unwrap_or_default(),
            needs: required_role(app, secret),
            webhook_repo: secret.gitea_webhook.as_ref().map(|h| h.repo.clone()),
            github_repo: secret.github_webhook.as_ref().map(|h| h.repo.clone()),
            store: secret.store.as_ref().map(|s| command_line(&s.run)),
            age: secret_age::age(ctx, app, secret, rotated, now.timestamp_millis()).await,
            next_rotation: schedule::next_run(secret, now).map(|t| t.timestamp_millis()),
            last_rotated,
        });
    }
    Ok(out)
}
