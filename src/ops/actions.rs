//! Custom actions (`[[app.action]]`): a predefined command per button,
//! run as a one-step job.

use std::collections::BTreeMap;

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::words::fill;
use crate::error::Quoted;
use crate::host::Host;
use crate::jobs::{Plan, Request, Step};
use crate::steps::{Work, params, run};
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
    let host = Host::of(&ctx.config, app)?;
    let values = match params::values(&host, app, found, given).await {
        Err(Error::BadRequest(why)) => {
            let event = Event::new(actor, "action.params", &app.name)
                .detail(serde_json::json!({"action": found.name, "why": why}));
            ctx.audit.refused(event).await?;
            return Err(Error::BadRequest(why));
        }
        values => values?,
    };
    let mut title = found
        .description
        .clone()
        .unwrap_or_else(|| found.name.clone());
    let mut target = found.name.clone();
    let mut steps = Vec::new();
    if !values.is_empty() {
        let shown = params::shown(&values);
        title = format!("{title} ({shown})");
        target = format!("{target} {shown}");
        steps.push(Step {
            title: "Check the parameters".into(),
            work: Work::CheckParams(params::CheckParams {
                action: found.name.clone(),
                values: values.clone(),
            }),
            timeout: None,
        });
    }
    steps.push(Step {
        title,
        work: Work::Run(run::Run {
            argv: found.run.iter().map(|word| fill(word, &values)).collect(),
            cwd,
            env: found.env.clone(),
        }),
        timeout: found.timeout,
    });
    let request = Request {
        app: app.name.clone(),
        kind: "action".into(),
        target,
        mutating: true,
        plan: Plan {
            steps,
            recovery: Vec::new(),
            recovery_from: 0,
            timeout: None,
        },
    };
    ctx.jobs.submit(actor, request).await
}
