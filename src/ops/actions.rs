//! Custom actions (`[[app.action]]`): a predefined command per button,
//! run as a one-step job (two with parameters: they are checked again
//! first). A command sweep's run is the same kind of step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::Actor;
use crate::config::App;
use crate::config::words::fill;
use crate::error::Quoted;
use crate::jobs::{Plan, Request, Step};
use crate::ops::approval;
use crate::ops::params::{check_step, checked, with_values};
use crate::steps::params::Of;
use crate::steps::{Work, run};
use crate::{Context, Error, Result};

/// Runs action `action` of `app` for `actor`; returns the job id.
/// Unknown app or action → 404; a role below the action's → 403 (audited).
pub async fn run(ctx: &Context, actor: &Actor, app: &str, action: &str) -> Result<i64> {
    run_with(ctx, actor, app, action, &BTreeMap::new()).await
}

/// Runs action `action` with parameter values `given`. A value its
/// parameter refuses → 400, audited as denied; nothing is queued.
pub async fn run_with(
    ctx: &Context,
    actor: &Actor,
    app: &str,
    action: &str,
    given: &BTreeMap<String, String>,
) -> Result<i64> {
    let app = ctx.app(app)?;
    let found = app
        .actions
        .iter()
        .find(|a| a.name == action)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} has no action named {}",
                app.name,
                Quoted(action)
            ))
        })?;
    ctx.require_role(actor, Some(app), "action", found.required_role(app))
        .await?;
    let of = Of::Action(found.name.clone());
    let values = checked(ctx, actor, app, &of, given).await?;
    let command = Command {
        run: &found.run,
        cwd: found.cwd.as_deref(),
        env: &found.env,
        env_file: found.env_file,
        timeout: found.timeout,
    };
    let title = found.description.as_deref().unwrap_or(&found.name);
    let mut steps: Vec<Step> = check_step(of, &values).into_iter().collect();
    steps.push(command.step(app, with_values(title, &values), &values)?);
    let request = Request {
        app: app.name.clone(),
        kind: "action".into(),
        target: with_values(&found.name, &values),
        mutating: true,
        gate: approval::gate(app, "action", found.approval, true),
        plan: Plan {
            steps,
            recovery: Vec::new(),
            recovery_from: 0,
            timeout: None,
        },
    };
    ctx.jobs.submit(actor, request).await
}

/// What an action or a command sweep runs.
pub(super) struct Command<'a> {
    pub run: &'a [String],
    /// Absolute, or relative to the app's `repo`; the `repo` when absent.
    pub cwd: Option<&'a Path>,
    pub env: &'a BTreeMap<String, String>,
    /// The app's env file's variables are in its environment.
    pub env_file: bool,
    pub timeout: Option<Duration>,
}

impl Command<'_> {
    /// The job step running it, its `{name}` placeholders filled with
    /// `values` inside the words they stand in.
    pub(super) fn step(
        &self,
        app: &App,
        title: String,
        values: &BTreeMap<String, String>,
    ) -> Result<Step> {
        let env_file = match (self.env_file, &app.env_file) {
            (false, _) => None,
            (true, Some(path)) => Some(path.clone()),
            (true, None) => {
                return Err(Error::Unavailable(format!(
                    "{} loads the app's env file, and {} has no `env_file`",
                    crate::host::exec::command_line(self.run),
                    app.name
                )));
            }
        };
        Ok(Step {
            title,
            work: Work::Run(run::Run {
                argv: self.run.iter().map(|word| fill(word, values)).collect(),
                cwd: self.dir(app)?,
                env: self.env.clone(),
                env_file,
            }),
            timeout: self.timeout,
        })
    }

    /// Where it runs: a relative `cwd` is inside the app's repository,
    /// which is also where it runs without one.
    fn dir(&self, app: &App) -> Result<Option<PathBuf>> {
        match (self.cwd, &app.repo) {
            (Some(cwd), _) if cwd.is_absolute() => Ok(Some(cwd.to_owned())),
            (Some(cwd), Some(repo)) => Ok(Some(repo.join(cwd))),
            (Some(cwd), None) => Err(Error::Unavailable(format!(
                "{} runs in {}, relative to the app's repo, but {} has no `repo`",
                crate::host::exec::command_line(self.run),
                cwd.display(),
                app.name
            ))),
            (None, repo) => Ok(repo.clone()),
        }
    }
}
