//! opsdeck's own secrets (the OAuth2 client secret, the Gitea and GitHub
//! API tokens, webhook secrets): read from `*_file` keys or environment variables, so
//! they never sit in `opsdeck.toml` itself. `check` reads them once at load
//! so a missing or empty file is a config error, not a failed sign-in later.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::anyhow;

use super::problems::{Label, Problems};
use super::{App, Config};

pub(super) const CLIENT_SECRET_ENV: &str = "OPSDECK_CLIENT_SECRET";
pub(super) const GITEA_TOKEN_ENV: &str = "OPSDECK_GITEA_TOKEN";
pub(super) const GITHUB_TOKEN_ENV: &str = "OPSDECK_GITHUB_TOKEN";

/// A secret given in the environment, trimmed; unset or blank is none.
pub(super) fn env_secret(name: &str) -> Option<String> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// The trimmed content of a secret file, or why it cannot be used.
fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(value.to_string())
}

/// The secret from `env` if set there, else from `file`.
fn secret(env: Option<&str>, file: Option<&Path>) -> crate::Result<Option<String>> {
    if let Some(value) = env.and_then(env_secret) {
        return Ok(Some(value));
    }
    file.map(read_secret_file)
        .transpose()
        .map_err(|e| crate::Error::Internal(anyhow!(e)))
}

impl Config {
    /// The Gitea OAuth2 client secret: `OPSDECK_CLIENT_SECRET`, else
    /// `auth.client_secret_file`.
    pub fn client_secret(&self) -> crate::Result<Option<String>> {
        secret(
            Some(CLIENT_SECRET_ENV),
            self.auth.client_secret_file.as_deref(),
        )
    }

    /// The Gitea API token: `OPSDECK_GITEA_TOKEN`, else `auth.gitea_token_file`.
    pub fn gitea_token(&self) -> crate::Result<Option<String>> {
        secret(Some(GITEA_TOKEN_ENV), self.auth.gitea_token_file.as_deref())
    }

    /// The GitHub API token: `OPSDECK_GITHUB_TOKEN`, else `auth.github_token_file`.
    pub fn github_token(&self) -> crate::Result<Option<String>> {
        secret(
            Some(GITHUB_TOKEN_ENV),
            self.auth.github_token_file.as_deref(),
        )
    }
}

impl super::Notify {
    /// The key deliveries to this receiver are signed with, if any.
    pub fn signing_key(&self) -> crate::Result<Option<String>> {
        secret(None, self.secret_file.as_deref())
    }
}

impl App {
    /// The secret Gitea signs this app's push webhooks with.
    pub fn webhook_secret(&self) -> crate::Result<Option<String>> {
        secret(None, self.webhook_secret_file.as_deref())
    }
}

/// Warns when users other than the owner and group can read `path`.
fn warn_if_everyone_reads(p: &mut Problems, label: &Label, path: &Path) {
    let everyone_reads = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0);
    if everyone_reads {
        let path = path.display();
        p.warn(label, format!("{path} holds a secret and is readable by every user on this machine; run `chmod o-rwx` on it (opsdeck reads it through its group)"));
    }
}

/// Checks a secret file: an error if unusable, a warning if others can read it.
fn check_file(p: &mut Problems, label: &Label, path: &Path) {
    match read_secret_file(path) {
        Ok(_) => warn_if_everyone_reads(p, label, path),
        Err(e) => p.error(label, e),
    }
}

/// A file holding the app's secrets (an env file, a key file): opsdeck
/// writes it on rotation.
fn check_env_file(p: &mut Problems, label: &Label, path: &Path) {
    if path.exists() {
        warn_if_everyone_reads(p, label, path);
    } else {
        p.warn(label, format!("{} does not exist yet", path.display()));
    }
}

pub(super) fn check(config: &Config, p: &mut Problems) {
    let auth = Label::default().key("auth");
    let client_secret_from_env = env_secret(CLIENT_SECRET_ENV).is_some();
    match &config.auth.client_secret_file {
        Some(path) if !client_secret_from_env => {
            check_file(p, &auth.key("client_secret_file"), path)
        }
        None if config.auth.gitea_url.is_some() && !client_secret_from_env => p.error(
            &auth.key("client_secret_file"),
            format!(
                "Gitea sign-in needs the OAuth2 client secret: set `client_secret_file` or {CLIENT_SECRET_ENV}"
            ),
        ),
        _ => {}
    }
    let tokens = [
        (
            "gitea_token_file",
            &config.auth.gitea_token_file,
            GITEA_TOKEN_ENV,
        ),
        (
            "github_token_file",
            &config.auth.github_token_file,
            GITHUB_TOKEN_ENV,
        ),
    ];
    for (key, file, env) in tokens {
        if let Some(path) = file {
            if env_secret(env).is_none() {
                check_file(p, &auth.key(key), path);
            }
        }
    }
    if config.auth.gitea_url.is_none() && !config.auth.dev_login {
        p.warn(
            &auth,
            "neither `gitea_url` nor `dev_login` is set: nobody can sign in in a browser, only API tokens work",
        );
    }
    let notify =
        super::validate::labels(&Label::default().key("notify"), &config.notify, |n| &n.name);
    for (target, label) in config.notify.iter().zip(&notify) {
        if let Some(path) = &target.secret_file {
            check_file(p, &label.key("secret_file"), path);
        }
    }
    let apps = super::validate::labels(&Label::default().key("app"), &config.apps, |a| &a.name);
    for (app, label) in config.apps.iter().zip(&apps) {
        if let Some(path) = &app.webhook_secret_file {
            check_file(p, &label.key("webhook_secret_file"), path);
        }
        let local = app.is_local();
        if let Some(env_file) = app.env_file.as_ref().filter(|f| local && f.is_absolute()) {
            check_env_file(p, &label.key("env_file"), env_file);
        }
        let secrets = super::validate::labels(&label.key("secret"), &app.secrets, |s| &s.name);
        for (secret, label) in app.secrets.iter().zip(&secrets) {
            for (key, file) in [("env_file", &secret.env_file), ("file", &secret.file)] {
                if let Some(file) = file.as_ref().filter(|f| local && f.is_absolute()) {
                    check_env_file(p, &label.key(key), file);
                }
            }
        }
        if let Some(repo) = app.repo.as_ref().filter(|r| local && r.is_absolute()) {
            if !repo.exists() {
                p.warn(
                    &label.key("repo"),
                    format!("{} does not exist yet", repo.display()),
                );
            }
        }
    }
}
