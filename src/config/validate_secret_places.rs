//! `[[app.secret]]`: the other places a secret lives (a `store` command,
//! GitHub webhooks) and its clock (`max_age`, `schedule`); where it lives
//! and how it is made is `validate_secrets.rs`.

use super::problems::{Label, Problems};
use super::validate::argv;
use super::validate_sweeps::schedule;
use super::values::{check_github_repo, check_http_url};
use super::{App, Config, Secret, Source};

pub(super) fn places_and_clock(
    config: &Config,
    app: &App,
    secret: &Secret,
    label: &Label,
    p: &mut Problems,
) {
    if let Some(store) = &secret.store {
        let run = label.key("store").key("run");
        argv(p, &run, &store.run);
        for (i, word) in store.run.iter().enumerate() {
            if let Some(name) = super::words::placeholders(word).first() {
                p.error_in(
                    &run,
                    i,
                    format!(
                        "the new value reaches the store command on its standard input only, never in its arguments: {{{name}}} is not filled in"
                    ),
                );
            }
        }
    }
    if secret.place(app).is_none() {
        // A webhook's side gets the value the env file has now.
        for (key, set) in [
            ("gitea_webhook", secret.gitea_webhook.is_some()),
            ("github_webhook", secret.github_webhook.is_some()),
        ] {
            if set {
                p.error(
                    &label.key(key),
                    "the webhook gets the value from the env file; set `env_file` on the app (or on the secret)",
                );
            }
        }
        // Kept by its store alone: the value must be one opsdeck makes.
        let made = matches!(secret.source(), Ok(Source::Generate(_)));
        if secret.store.is_some() && !made && secret.source().is_ok() {
            p.error(
                &label.key("generate"),
                "a secret kept by its `store` alone (no env file) is made by opsdeck: \"hex:32\", \"base64url:32\" or \"alnum:32\"; a value issued elsewhere goes into an env file",
            );
        }
    }
    if let Some(hook) = &secret.github_webhook {
        let hook_label = label.key("github_webhook");
        if let Err(e) = check_github_repo(&hook.repo) {
            p.error(&hook_label.key("repo"), e);
        }
        if let Some(Err(e)) = hook.url.as_deref().map(check_http_url) {
            p.error(&hook_label.key("url"), e);
        }
        let token = config.auth.github_token_file.is_some()
            || super::secrets::env_secret(super::secrets::GITHUB_TOKEN_ENV).is_some();
        if !token {
            p.error(
                &hook_label,
                "this calls the GitHub API, so it needs a token: set `auth.github_token_file` or OPSDECK_GITHUB_TOKEN",
            );
        }
    }
    if secret.max_age.is_some_and(|d| d.is_zero()) {
        p.error(&label.key("max_age"), "expected a duration longer than 0");
    }
    schedule(
        p,
        label,
        secret.schedule.as_deref(),
        secret.timezone.as_deref(),
    );
    if secret.schedule.is_some() && !secret.made_by_opsdeck() {
        p.error(
            &label.key("schedule"),
            format!(
                "a scheduled rotation makes the new value itself, with nobody there; {} is pasted by a person (`generate = \"{}\"`), so it cannot have a `schedule`",
                secret.name, secret.generate
            ),
        );
    }
}
