//! The `command` strategy (the CommunityRule runbook: "`cloudron update
//! --image repo:TAG`", and to roll back, the same with the previous tag):
//! the app's `deploy` steps, their `{ref}`, `{sha}`, `{tag}` and deploy
//! parameters filled in inside the words they stand in (never through a
//! shell), then restart, wait and probe like the other strategies. A
//! rollback runs the app's `rollback` steps (or `deploy` again) with an
//! earlier release's values; when a step fails, the recovery runs them
//! with the values of the release the job replaced.

use std::collections::BTreeMap;

use crate::config::words::fill;
use crate::config::{App, Command};
use crate::host::exec::command_line;
use crate::host::git::Sha;
use crate::jobs::{Plan, Step};
use crate::ops::deploy::{Shipment, in_dir, restart_and_check};
use crate::steps::params::Of;
use crate::steps::{Work, command, run};

/// A deploy of `git_ref`: `sha` is the commit it resolved to (None
/// without a repository), `tag` the name of what is deployed, `params`
/// the checked values of the app's deploy parameters (their check, again
/// when the job starts, is the plan's first step).
pub(super) fn deploy(
    app: &App,
    git_ref: &str,
    sha: Option<&Sha>,
    tag: &str,
    params: &BTreeMap<String, String>,
) -> Shipment {
    let mut values = params.clone();
    values.extend([
        ("ref".to_owned(), git_ref.to_owned()),
        ("sha".to_owned(), sha.map_or("", Sha::as_str).to_owned()),
        ("tag".to_owned(), tag.to_owned()),
    ]);
    let check = super::params::check_step(Of::Deploy(git_ref.to_owned()), params);
    let mut shipment = shipment(app, &app.deploy, "Deploy", values, check);
    shipment.params = params.clone();
    shipment
}

/// A rollback to a release that ran with `values`.
pub(super) fn rollback(app: &App, values: &BTreeMap<String, String>) -> Shipment {
    let values = app.going_back_values(values);
    shipment(app, app.going_back(), "Roll back", values, None)
}

fn shipment(
    app: &App,
    commands: &[Command],
    verb: &str,
    values: BTreeMap<String, String>,
    check: Option<Step>,
) -> Shipment {
    // A failed check changed nothing: no recovery for it.
    let recovery_from = usize::from(check.is_some());
    let mut steps: Vec<Step> = check.into_iter().collect();
    steps.extend(commands.iter().map(|c| {
        let argv: Vec<String> = c.run.iter().map(|word| fill(word, &values)).collect();
        Step {
            title: format!("{verb}: {}", command_line(&argv)),
            work: Work::Run(run::Run::new(argv, cwd(app, c), c.env.clone())),
            timeout: c.timeout,
        }
    }));
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
            // Even a failed first deploy step may have changed what runs
            // (an update that stopped halfway): go back from any of them.
            recovery_from,
            timeout: None,
        },
        dir: None,
        values,
        params: BTreeMap::new(),
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
