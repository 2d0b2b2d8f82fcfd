//! Parameters of actions (`[[app.action.param]]`): the values a request
//! gives are checked when it is made (`ops::actions`) and again by the
//! job's first step, [`CheckParams`], when it starts — the config may have
//! changed meanwhile, and so may what `choices_from` lists or which
//! backups a `backup` offers.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Perform, StepJob};
use crate::config::{Action, App, Param, ParamKind};
use crate::error::Quoted;
use crate::host::Host;
use crate::host::exec::Ended;
use crate::{Error, Result};

/// How long a `choices_from` command may take.
const CHOICES_TIMEOUT: Duration = Duration::from_secs(30);

/// The values `action` runs with: `given` checked, defaults filled in,
/// absent optional ones empty. A refusal is `Error::BadRequest` naming the
/// parameter and why.
pub async fn values(
    host: &Host,
    app: &App,
    action: &Action,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    if let Some(unknown) = given
        .keys()
        .find(|k| !action.params.iter().any(|p| &p.name == *k))
    {
        return Err(Error::BadRequest(format!(
            "action {} has no parameter named {}",
            action.name,
            Quoted(unknown)
        )));
    }
    let mut values = BTreeMap::new();
    for param in &action.params {
        let value = given
            .get(&param.name)
            .filter(|v| !v.is_empty())
            .or(param.default.as_ref());
        let Some(value) = value else {
            if param.required {
                return Err(Error::BadRequest(format!(
                    "{} is required for action {}",
                    param.label(),
                    action.name
                )));
            }
            values.insert(param.name.clone(), String::new());
            continue;
        };
        param
            .check(value, &choices(host, app, param).await?)
            .map_err(Error::BadRequest)?;
        values.insert(param.name.clone(), value.clone());
    }
    Ok(values)
}

/// What a `choice` offers: `choices`, then each non-empty line its
/// `choices_from` command printed on the app's host; what a `backup`
/// offers: the full path of each backup of its sweep, newest first (the
/// Restore form's list).
pub async fn choices(host: &Host, app: &App, param: &Param) -> Result<Vec<String>> {
    let mut choices = param.choices.clone();
    if param.kind == ParamKind::Backup {
        let sweep = app
            .backup_sweep(param.sweep.as_deref())
            .map_err(Error::Unavailable)?;
        let offered = super::restore::offered(host, app, &sweep.name).await?;
        return Ok(offered
            .into_iter()
            .map(|b| b.path.display().to_string())
            .collect());
    }
    if param.kind != ParamKind::Choice {
        return Ok(choices);
    }
    if let Some(argv) = &param.choices_from {
        let out = host
            .capture(argv, None, &BTreeMap::new(), CHOICES_TIMEOUT)
            .await?;
        if !out.success() {
            return Err(Error::Unavailable(format!(
                "the choices of {} could not be listed: {} ended with {}: {}",
                param.label(),
                crate::host::exec::command_line(argv),
                out.status
                    .map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}")),
                out.stderr.trim()
            )));
        }
        choices.extend(
            out.stdout
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(choices)
}

/// The first step of an action with parameters: checks its values again,
/// against the config and the choices as they are when the job starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckParams {
    pub action: String,
    pub values: BTreeMap<String, String>,
}

impl Perform for CheckParams {
    fn command_line(&self) -> String {
        format!("check the parameters: {}", shown(&self.values))
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let app = job.app()?;
            let action = app
                .actions
                .iter()
                .find(|a| a.name == self.action)
                .ok_or_else(|| {
                    Error::Conflict(format!("action {} is no longer in the config", self.action))
                })?;
            let host = job.host()?;
            let now = values(&host, app, action, &self.values).await?;
            if now != self.values {
                return Err(Error::Conflict(format!(
                    "the parameters changed meaning since the request ({} now); ask again",
                    shown(&now)
                )));
            }
            Ok(vec![format!(
                "the parameters are still valid: {}",
                shown(&now)
            )])
        }))
    }
}

/// `name=value …`, each value quoted like a command-line word.
pub fn shown(values: &BTreeMap<String, String>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::host::exec::quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}
