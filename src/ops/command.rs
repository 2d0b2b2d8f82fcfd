//! The `command` strategy (the CommunityRule runbook: "`cloudron update
//! --image repo:TAG`", and to roll back, the same with the previous tag):
//! the app's `deploy` steps, their `{ref}`, `{sha}` and `{tag}` filled in
//! inside the words they stand in (never through a shell), then restart,
//! wait and probe like the other strategies. A rollback runs the app's
//! `rollback` steps (or `deploy` again) with an earlier release's values;
//! when a step fails, the recovery runs them with the values of the release
//! the job replaced.

use std::collections::BTreeMap;

use crate::config::words::fill;
use crate::config::{App, Command};
use crate::host::exec::command_line;
use crate::host::git::Sha;
use crate::jobs::{Plan, Step};
use crate::ops::deploy::{Shipment, in_dir, restart_and_check};
use crate::steps::{Work, command, run};

/// A deploy of `git_ref`: `sha` is the commit it resolved to (None
/// without a repository), `tag` the name of what is deployed.
pub(super) fn deploy(app: &App, git_ref: &str, sha: Option<&Sha>, tag: &str) -> Shipment {
    let values = BTreeMap::from([
        ("ref".to_owned(), git_ref.to_owned()),
        ("sha".to_owned(), sha.map_or("", Sha::as_str).to_owned()),
        ("tag".to_owned(), tag.to_owned()),
    ]);
    shipment(app, &app.deploy, "Deploy", values)
}

/// A rollback to a release that ran with `values`.
pub(super) fn rollback(app: &App, values: &BTreeMap<String, String>) -> Shipment {
    shipment(app, app.going_back(), "Roll back", values.clone())
}

fn shipment(
    app: &App,
    commands: &[Command],
    verb: &str,
    values: BTreeMap<String, String>,
) -> Shipment {
    let mut steps: Vec<Step> = commands
        .iter()
        .map(|c| {
            let argv: Vec<String> = c.run.iter().map(|word| fill(word, &values)).collect();
            Step {
                title: format!("{verb}: {}", command_line(&argv)),
                work: Work::Run(run::Run {
                    argv,
                    cwd: cwd(app, c),
                    env: c.env.clone(),
                }),
                timeout: c.timeout,
            }
        })
        .collect();
    steps.extend(restart_and_check(app, &app.units));
    let mut recovery: Vec<Step> = app
        .going_back()
        .iter()
        .map(|c| Step {
            title: format!(
                "Roll back: {} with the values of the release this job replaced",
                command_line(&c.run)
            ),
            work: Work::RunReplaced(command::RunReplaced {
                argv: c.run.clone(),
                cwd: cwd(app, c),
                env: c.env.clone(),
            }),
            timeout: c.timeout,
        })
        .collect();
    recovery.extend(restart_and_check(app, &app.units));
    Shipment {
        plan: Plan {
            steps,
            recovery,
            // Even a failed first step may have changed what runs (an
            // update that stopped halfway): go back from any step.
            recovery_from: 0,
            timeout: None,
        },
        dir: None,
        values,
    }
}

/// A relative `cwd` is inside the repository (the config refuses one
/// without a repository).
fn cwd(app: &App, c: &Command) -> Option<std::path::PathBuf> {
    match (&app.repo, &c.cwd) {
        (Some(repo), cwd) => Some(in_dir(repo, cwd.as_deref())),
        (None, cwd) => cwd.clone(),
    }
}
