//! The steps of a rotation for the other places a secret lives: its
//! `store` command (right after the env file is written, so a restart
//! finds both new) and GitHub's webhooks (after the app has the value, as
//! Gitea's in `secrets.rs`), each with the recovery step that puts the
//! previous value back.

use std::path::Path;

use crate::config::{App, Config, Generator, Secret};
use crate::host::exec::command_line;
use crate::jobs::{Plan, Step};
use crate::ops::deploy::restart_and_check;
use crate::steps::Work;
use crate::steps::github::{RestoreGithubHookSecret, SetGithubHookSecret};
use crate::steps::store::{RestoreStore, Source, StoreSecret};
use crate::{Error, Result};

/// The store step and its recovery, for a secret also in `env_file`.
pub(super) fn store(secret: &Secret, env_file: &Path) -> Option<(Step, Step)> {
    let run = secret.store.as_ref()?.run.clone();
    let key = secret.name.clone();
    let handed = Step {
        title: format!("Hand the new {key} to {}", command_line(&run)),
        work: Work::StoreSecret(StoreSecret {
            key: key.clone(),
            run: run.clone(),
            value: Source::EnvFile {
                env_file: env_file.to_owned(),
            },
        }),
        timeout: None,
    };
    let undo = Step {
        title: format!("Hand the previous {key} to {} again", command_line(&run)),
        work: Work::RestoreStore(RestoreStore {
            key,
            run,
            env_file: env_file.to_owned(),
        }),
        timeout: None,
    };
    Some((handed, undo))
}

/// The plan of a secret kept by its store alone (the app has no env
/// file): a value made in the step, handed over, then the restart and the
/// probe. There is no recovery: opsdeck never knew the previous value.
pub(super) fn store_only(app: &App, secret: &Secret, generate: Generator) -> Result<Plan> {
    let run = secret
        .store
        .as_ref()
        .map(|s| s.run.clone())
        .ok_or_else(|| {
            Error::Unavailable(format!(
                "{} has no `env_file` to rotate secrets in",
                app.name
            ))
        })?;
    let key = secret.name.clone();
    let mut steps = vec![Step {
        title: format!("Hand a new {key} to {}", command_line(&run)),
        work: Work::StoreSecret(StoreSecret {
            key,
            run,
            value: Source::Generate { generate },
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

/// The GitHub webhook step and its recovery.
pub(super) fn github(config: &Config, secret: &Secret, env_file: &Path) -> Option<(Step, Step)> {
    let hook = secret.github_webhook.as_ref()?;
    let (api, repo, key) = (config.auth.github_api(), &hook.repo, &secret.name);
    let set = Step {
        title: format!("Give the GitHub webhooks of {repo} the new {key}"),
        work: Work::SetGithubHookSecret(SetGithubHookSecret {
            api: api.to_owned(),
            repo: repo.clone(),
            url: hook.url.clone(),
            env_file: env_file.to_owned(),
            key: key.clone(),
        }),
        timeout: None,
    };
    let undo = Step {
        title: format!("Give the GitHub webhooks of {repo} the previous {key} again"),
        work: Work::RestoreGithubHookSecret(RestoreGithubHookSecret {
            api: api.to_owned(),
            repo: repo.clone(),
            env_file: env_file.to_owned(),
            key: key.clone(),
        }),
        timeout: None,
    };
    Some((set, undo))
}
