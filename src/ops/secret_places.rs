//! The steps of a rotation for the other places a secret lives: its
//! `store` command (right after the env file is written, so a restart
//! finds both new) and GitHub's webhooks (after the app has the value, as
//! Gitea's in `secrets.rs`), each with the recovery step that puts the
//! previous value back.

use crate::config::{App, Config, Place, Secret, Source};
use crate::host::exec::command_line;
use crate::jobs::{Plan, Step};
use crate::ops::deploy::restart_and_check;
use crate::steps::Work;
use crate::steps::github::{RestoreGithubHookSecret, SetGithubHookSecret};
use crate::steps::store::{RestoreStore, StoreSecret, ValueFrom};
use crate::{Error, Result};

/// The store step and its recovery, for a secret in an env file.
pub(super) fn store(secret: &Secret, place: &Place<'_>) -> Option<(Step, Step)> {
    let run = secret.store.as_ref()?.run.clone();
    let Place::Env { file, key } = *place else {
        return None;
    };
    let key = key.to_owned();
    let handed = Step {
        title: format!("Hand the new {key} to {}", command_line(&run)),
        work: Work::StoreSecret(StoreSecret {
            key: key.clone(),
            run: run.clone(),
            value: ValueFrom::EnvFile {
                env_file: file.to_owned(),
            },
        }),
        timeout: None,
    };
    let undo = Step {
        title: format!("Hand the previous {key} to {} again", command_line(&run)),
        work: Work::RestoreStore(RestoreStore {
            key,
            run,
            env_file: file.to_owned(),
        }),
        timeout: None,
    };
    Some((handed, undo))
}

/// The plan of a secret kept by its store alone (in no env file): a value
/// made in the step, handed over, then the restart and the probe. There
/// is no recovery: opsdeck never knew the previous value.
pub(super) fn store_only(app: &App, secret: &Secret) -> Result<Plan> {
    let Some(store) = &secret.store else {
        return Err(Error::Unavailable(format!(
            "{} has no `env_file` to rotate secrets in",
            app.name
        )));
    };
    // Validated when the config was loaded; checked again rather than trusted.
    let Ok(Source::Generate(generate)) = secret.source() else {
        return Err(Error::Unavailable(format!(
            "{} lives in its store only, so opsdeck must make its value (`generate = \"hex:32\"`), or it needs an env file",
            secret.name
        )));
    };
    let run = store.run.clone();
    let key = secret.name.clone();
    let mut steps = vec![Step {
        title: format!("Hand a new {key} to {}", command_line(&run)),
        work: Work::StoreSecret(StoreSecret {
            key,
            run,
            value: ValueFrom::Generate { generate },
        }),
        timeout: None,
    }];
    steps.extend(restart_and_check(
        app,
        secret.units.as_ref().unwrap_or(&app.units),
    ));
    Ok(Plan {
        steps,
        recovery: Vec::new(),
        recovery_from: 0,
        timeout: None,
    })
}

/// The GitHub webhook step and its recovery, for a secret in an env file.
pub(super) fn github(config: &Config, secret: &Secret, place: &Place<'_>) -> Option<(Step, Step)> {
    let hook = secret.github_webhook.as_ref()?;
    let Place::Env { file, key } = *place else {
        return None;
    };
    let (api, repo) = (config.auth.github_api(), &hook.repo);
    let set = Step {
        title: format!("Give the GitHub webhooks of {repo} the new {key}"),
        work: Work::SetGithubHookSecret(SetGithubHookSecret {
            api: api.to_owned(),
            repo: repo.clone(),
            url: hook.url.clone(),
            env_file: file.to_owned(),
            key: key.to_owned(),
        }),
        timeout: None,
    };
    let undo = Step {
        title: format!("Give the GitHub webhooks of {repo} the previous {key} again"),
        work: Work::RestoreGithubHookSecret(RestoreGithubHookSecret {
            api: api.to_owned(),
            repo: repo.clone(),
            env_file: file.to_owned(),
            key: key.to_owned(),
        }),
        timeout: None,
    };
    Some((set, undo))
}
