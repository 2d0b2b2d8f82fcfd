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
//! generator, the output and the audit log show fingerprints. The same job
//! writes a value pasted by a person (`secret_set.rs`), a key file, and a
//! secret in an env file of its own.

use std::path::{Path, PathBuf};

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::{App, Place, Secret, Source};
use crate::error::Quoted;
use crate::host::exec::command_line;
use crate::host::{Host, env_edit, envfile, keys};
use crate::jobs::{Plan, Request, Step};
use crate::ops::deploy::restart_and_check;
use crate::ops::{schedule, secret_age, secret_places};
use crate::steps::secret_file::{Make, RotateFile};
use crate::steps::secret_set::SetSecret;
use crate::steps::{Work, secret};
use crate::{Context, Error, Result};

/// Rotates secret `name` of `app` for `actor`; returns the job id.
/// Unknown app or secret → 404; a role below the secret's → 403 (audited);
/// a secret whose value is pasted (`generate = "set"`) → 400 (audited).
pub async fn rotate(ctx: &Context, actor: &Actor, app: &str, name: &str) -> Result<i64> {
    let app = ctx.app(app)?;
    let secret = find(app, name)?;
    ctx.require_role(actor, Some(app), "rotate", required_role(app, secret))
        .await?;
    if secret.source() == Ok(Source::Set) {
        let why = format!(
            "{} of {} is a value issued elsewhere, which opsdeck cannot make: enter the new one with its Set button or POST /api/apps/{}/secrets/{}/set {{\"value\": \"…\"}}",
            secret.name, app.name, app.name, secret.name
        );
        return Err(refuse(ctx, actor, app, "rotate", secret, why).await);
    }
    ctx.jobs.submit(actor, request(ctx, app, secret)?).await
}

/// The job that writes `secret`'s new value, restarts and probes.
pub(super) fn request(ctx: &Context, app: &App, secret: &Secret) -> Result<Request> {
    Ok(Request {
        app: app.name.clone(),
        kind: "rotate".into(),
        target: secret.name.clone(),
        mutating: true,
        plan: plan(ctx, app, secret)?,
    })
}

/// Audits a refused request about `secret` (`denied`, saying why) and
/// returns the 400 that answers it.
pub(super) async fn refuse(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    action: &str,
    secret: &Secret,
    why: String,
) -> Error {
    let event = Event::new(actor, action, &app.name)
        .detail(serde_json::json!({"secret": secret.name, "why": why}));
    match ctx.audit.refused(event).await {
        Ok(()) => Error::BadRequest(why),
        Err(e) => e,
    }
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

pub(super) fn find<'a>(app: &'a App, name: &str) -> Result<&'a Secret> {
    app.secrets.iter().find(|s| s.name == name).ok_or_else(|| {
        Error::NotFound(format!("{} has no secret named {}", app.name, Quoted(name)))
    })
}

fn plan(ctx: &Context, app: &App, secret: &Secret) -> Result<Plan> {
    let Some(place) = secret.place(app) else {
        return secret_places::store_only(app, secret);
    };
    // Validated when the config was loaded; checked again rather than trusted.
    let (title, work) = write_step(&place, secret)?;
    let env_file = place.path().to_path_buf();
    let units = secret.units.as_ref().unwrap_or(&app.units);
    let webhook = match (&secret.gitea_webhook, &place) {
        (Some(hook), Place::Env { key, .. }) => {
            let gitea_url = ctx.config.auth.gitea_url.clone().ok_or_else(|| {
                Error::Unavailable("changing a Gitea webhook needs `auth.gitea_url`".into())
            })?;
            Some((gitea_url, hook.repo.clone(), key.to_string()))
        }
        _ => None,
    };
    let mut steps = vec![Step {
        title,
        work,
        timeout: None,
    }];
    let (store, restore) = secret_places::store(secret, &place).unzip();
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
    let github = secret_places::github(&ctx.config, secret, &place);
    if let Some((gitea_url, repo, key)) = webhook {
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

/// The step that writes the new value where `secret` lives, and its title.
fn write_step(place: &Place<'_>, secret: &Secret) -> Result<(String, Work)> {
    let keep_backups = secret.keep_backups;
    let source = secret.source().map_err(Error::Unavailable)?;
    Ok(match (place, source) {
        (Place::Env { file, key }, Source::Generate(generate)) => (
            format!("Set a new {key} in {}", file.display()),
            Work::RotateSecret(secret::RotateSecret {
                env_file: file.to_path_buf(),
                key: key.to_string(),
                generate,
                keep_backups,
            }),
        ),
        (Place::Env { file, key }, Source::Set) => (
            format!("Set {key} in {} to the value entered", file.display()),
            Work::SetSecret(SetSecret {
                env_file: file.to_path_buf(),
                key: key.to_string(),
                keep_backups,
            }),
        ),
        (Place::File(file), Source::Key(kind)) => (
            format!("Replace {} with a new {kind} key", file.display()),
            rotate_file(file, Make::Key(kind), keep_backups),
        ),
        (Place::File(file), Source::Command(argv)) => (
            format!(
                "Replace {} with what {} prints",
                file.display(),
                argv.first().map_or("", String::as_str)
            ),
            rotate_file(file, Make::Command(argv), keep_backups),
        ),
        (place, _) => {
            return Err(Error::Unavailable(format!(
                "{} cannot be rotated: its `generate` does not fit {}; `opsdeck check` says why",
                secret.name,
                place.path().display()
            )));
        }
    })
}

fn rotate_file(file: &Path, make: Make, keep_backups: usize) -> Work {
    Work::RotateFile(RotateFile {
        file: file.to_path_buf(),
        make,
        keep_backups,
    })
}

/// A secret as the app page shows it: never its value.
pub struct SecretStatus {
    pub name: String,
    /// Where it lives: `KEY in /path/.env`, or the key file's path.
    pub place: String,
    /// `sha256:` + 12 hex of the value now in the env file, a key file's
    /// public key fingerprint, or why there is none.
    pub fingerprint: String,
    /// Its value is issued elsewhere and entered by hand (`generate = "set"`).
    pub set_by_hand: bool,
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
    let mut files = Files {
        host: Host::of(&ctx.config, app)?,
        read: Vec::new(),
    };
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for secret in &app.secrets {
        let place = secret.place(app);
        let fingerprint = match &place {
            None if secret.store.is_some() => "kept by its store only".to_string(),
            None => "no env_file".to_string(),
            Some(place) => match (place, files.text(place.path()).await) {
                (_, None) => "the file cannot be read".to_string(),
                (Place::File(_), Some(text)) => keys::fingerprint(text, &ctx.server_key),
                (Place::Env { file, key }, Some(text)) => match envfile::get(file, text, key) {
                    Ok(Some(value)) => ctx.server_key.fingerprint(&value),
                    Ok(None) => "not set".to_string(),
                    Err(_) => "the env file cannot be parsed".to_string(),
                },
            },
        };
        let last_rotated = secret_age::last_rotation(ctx, &app.name, &secret.name).await?;
        let rotated = last_rotated.as_ref().map(|(_, at)| *at);
        out.push(SecretStatus {
            name: secret.name.clone(),
            place: place.as_ref().map(shown).unwrap_or_default(),
            fingerprint,
            set_by_hand: secret.source() == Ok(Source::Set),
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

/// Where a secret lives, in words: `KEY in /path/.env`, or the key file.
pub(super) fn shown(place: &Place<'_>) -> String {
    match place {
        Place::Env { file, key } => format!("{key} in {}", file.display()),
        Place::File(file) => file.display().to_string(),
    }
}

/// The app's secret files, each read once for the page (several secrets
/// may share one env file).
struct Files {
    host: Host,
    /// Each file read so far, and its text (None: it cannot be read).
    read: Vec<(PathBuf, Option<zeroize::Zeroizing<String>>)>,
}

impl Files {
    async fn text(&mut self, path: &Path) -> Option<&str> {
        let at = match self.read.iter().position(|(p, _)| p == path) {
            Some(at) => at,
            None => {
                let text = env_edit::read(&self.host, path).await.ok();
                self.read
                    .push((path.to_path_buf(), text.map(zeroize::Zeroizing::new)));
                self.read.len() - 1
            }
        };
        self.read[at].1.as_deref().map(String::as_str)
    }
}
