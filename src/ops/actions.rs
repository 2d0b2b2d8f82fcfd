//! Custom actions (`[[app.action]]`): a predefined command per button,
//! run as a one-step job.

use crate::auth::Actor;
use crate::error::Quoted;
use crate::jobs::{Plan, Request, Step};
use crate::steps::{Work, run};
use crate::{Context, Error, Result};

/// Runs action `action` of `app` for `actor`; returns the job id.
/// Unknown app or action → 404; a role below the action's → 403 (audited).
pub async fn run(ctx: &Context, actor: &Actor, app: &str, action: &str) -> Result<i64> {
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
    // A relative cwd is inside the app's repository, which is also where
    // an action without a cwd runs.
    let cwd = match (&found.cwd, &app.repo) {
        (Some(cwd), _) if cwd.is_absolute() => Some(cwd.clone()),
        (Some(cwd), Some(repo)) => Some(repo.join(cwd)),
        (Some(cwd), None) => {
            return Err(Error::Unavailable(format!(
                "action {action} of {} runs in {}, relative to the app's repo, but the app has no `repo`",
                app.name,
                cwd.display()
            )));
        }
        (None, repo) => repo.clone(),
    };
    let step = Step {
        title: found
            .description
            .clone()
            .unwrap_or_else(|| found.name.clone()),
        work: Work::Run(run::Run {
            argv: found.run.clone(),
            cwd,
            env: found.env.clone(),
        }),
        timeout: found.timeout,
    };
    let request = Request {
        app: app.name.clone(),
        kind: "action".into(),
        target: found.name.clone(),
        mutating: true,
        plan: Plan {
            steps: vec![step],
            recovery: Vec::new(),
            recovery_from: 0,
            timeout: None,
        },
    };
    ctx.jobs.submit(actor, request).await
}
