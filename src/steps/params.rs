//! Parameters of actions (`[[app.action.param]]`), command sweeps
//! (`[[app.sweep.param]]`) and command deploys (`[[app.deploy_param]]`):
//! the values a request gives are checked when it is made (`ops::params`)
//! and again by the job's first step, [`CheckParams`], when it starts —
//! the config may have changed meanwhile, and so may what `choices_from`
//! lists, the repository's commits, the release log and which backups a
//! `backup` offers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use super::{Bounds, Perform, StepJob};
use crate::config::{App, Param, ParamKind};
use crate::error::Quoted;
use crate::host::exec::Ended;
use crate::host::{Host, git};
use crate::{Error, Result, releases};

/// How long a `choices_from` command may take.
const CHOICES_TIMEOUT: Duration = Duration::from_secs(30);
/// How many recent commits a `commit` field offers.
const RECENT_COMMITS: usize = 20;
/// How many rows of the release log a `release` field looks at.
const RELEASES: i64 = 50;

/// Whose parameters a request gives values for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Of {
    /// An action, by name.
    Action(String),
    /// A command sweep, by name.
    Sweep(String),
    /// The app's deploys (`[[app.deploy_param]]`); the ref asked for, for
    /// the words only.
    Deploy(String),
}

impl Of {
    /// Its parameters, as the config has them now.
    pub fn params<'a>(&self, app: &'a App) -> Result<&'a [Param]> {
        let gone = || Error::Conflict(format!("{self} is no longer in the config"));
        match self {
            Of::Action(name) => app
                .actions
                .iter()
                .find(|a| &a.name == name)
                .map(|a| a.params.as_slice())
                .ok_or_else(gone),
            Of::Sweep(name) => app
                .sweeps
                .iter()
                .find(|s| &s.name == name)
                .map(|s| s.params.as_slice())
                .ok_or_else(gone),
            Of::Deploy(_) => Ok(&app.deploy_params),
        }
    }
}

impl fmt::Display for Of {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Of::Action(name) => write!(f, "action {name}"),
            Of::Sweep(name) => write!(f, "sweep {name}"),
            Of::Deploy(git_ref) => write!(f, "the deploy of {git_ref}"),
        }
    }
}

/// Where values are looked up: `choices_from` and `commit`s on the app's
/// host, `release`s in its release log.
pub struct Lookup<'a> {
    pub app: &'a App,
    pub host: &'a Host,
    pub db: &'a SqlitePool,
}

/// One value a field offers, and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

impl Choice {
    fn plain(value: &str) -> Choice {
        Choice {
            value: value.to_owned(),
            label: value.to_owned(),
        }
    }
}

/// The values `of` runs with: `given` checked, defaults filled in, absent
/// optional ones empty, a `commit` resolved to its full SHA. A refusal is
/// `Error::BadRequest` naming the parameter and why.
pub async fn values(
    look: &Lookup<'_>,
    of: &Of,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let params = of.params(look.app)?;
    if let Some(unknown) = given.keys().find(|k| !params.iter().any(|p| &p.name == *k)) {
        return Err(Error::BadRequest(format!(
            "{of} has no parameter named {}",
            Quoted(unknown)
        )));
    }
    let mut values = BTreeMap::new();
    for param in params {
        let value = given
            .get(&param.name)
            .filter(|v| !v.is_empty())
            .or(param.default.as_ref());
        let Some(value) = value else {
            if param.required {
                return Err(Error::BadRequest(format!(
                    "{} is required for {of}",
                    param.label()
                )));
            }
            values.insert(param.name.clone(), String::new());
            continue;
        };
        values.insert(param.name.clone(), value_of(look, param, value).await?);
    }
    Ok(values)
}

/// What `value` passes for `param`, once checked.
async fn value_of(look: &Lookup<'_>, param: &Param, value: &str) -> Result<String> {
    match param.kind {
        ParamKind::Text => param.check(value, &[]).map_err(Error::BadRequest)?,
        ParamKind::Choice | ParamKind::Release | ParamKind::Backup => {
            let offered: Vec<String> = offered(look, param)
                .await?
                .into_iter()
                .map(|c| c.value)
                .collect();
            param.check(value, &offered).map_err(Error::BadRequest)?;
        }
        ParamKind::Commit => {
            param.check(value, &[]).map_err(Error::BadRequest)?;
            let repo = look.app.repo.as_deref().ok_or_else(|| {
                Error::Conflict(format!(
                    "{} is a commit of the app's repo, and {} has none",
                    param.label(),
                    look.app.name
                ))
            })?;
            return match git::resolve(look.host, repo, value).await {
                Ok(sha) => Ok(sha.to_string()),
                Err(Error::BadRequest(why)) => {
                    Err(Error::BadRequest(format!("{}: {why}", param.label())))
                }
                Err(e) => Err(e),
            };
        }
    }
    Ok(value.to_owned())
}

/// What `param`'s field offers: a `choice`'s `choices`, then each
/// non-empty line its `choices_from` command printed on the app's host; a
/// `release`'s releases that went live, newest first; a `backup`'s
/// backups (full paths, newest first, the Restore form's list); a
/// `commit`'s recent commits (suggestions: any commit of the repository is accepted).
pub async fn offered(look: &Lookup<'_>, param: &Param) -> Result<Vec<Choice>> {
    match param.kind {
        ParamKind::Text => Ok(Vec::new()),
        ParamKind::Choice => listed(look.host, param).await,
        ParamKind::Backup => {
            let sweep = look
                .app
                .backup_sweep(param.sweep.as_deref())
                .map_err(Error::Unavailable)?;
            let backups = super::restore::offered(look.host, look.app, &sweep.name).await?;
            Ok(backups
                .into_iter()
                .map(|b| Choice::plain(&b.path.display().to_string()))
                .collect())
        }
        ParamKind::Release => {
            let mut choices: Vec<Choice> = Vec::new();
            for release in releases::list(look.db, &look.app.name, RELEASES).await? {
                let value = release.param_value();
                if !release.went_live() || choices.iter().any(|c| c.value == value) {
                    continue;
                }
                choices.push(Choice {
                    value: value.to_owned(),
                    label: format!(
                        "{value} — release {}, {} {} by {}",
                        release.id, release.kind, release.git_ref, release.actor
                    ),
                });
            }
            Ok(choices)
        }
        ParamKind::Commit => {
            let Some(repo) = look.app.repo.as_deref() else {
                return Ok(Vec::new());
            };
            Ok(git::recent(look.host, repo, RECENT_COMMITS)
                .await?
                .into_iter()
                .map(|c| Choice {
                    label: format!("{} {} — {}", c.sha.short(), c.subject, c.author),
                    value: c.sha.to_string(),
                })
                .collect())
        }
    }
}

/// A `choice`'s `choices`, then what its `choices_from` printed.
async fn listed(host: &Host, param: &Param) -> Result<Vec<Choice>> {
    let mut choices: Vec<Choice> = param.choices.iter().map(|c| Choice::plain(c)).collect();
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
                .map(Choice::plain),
        );
    }
    Ok(choices)
}

/// The first step of a job asked for with parameters: checks its values
/// again, against the config and what is offered when the job starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckParams {
    /// Stored as `"action": name`, `"sweep": name` or `"deploy": ref`.
    #[serde(flatten)]
    pub of: Of,
    pub values: BTreeMap<String, String>,
}

impl Perform for CheckParams {
    fn command_line(&self) -> String {
        format!(
            "check the parameters of {}: {}",
            self.of,
            shown(&self.values)
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let host = job.host()?;
            let look = Lookup {
                app: job.app()?,
                host: &host,
                db: job.db,
            };
            let now = values(&look, &self.of, &self.values).await?;
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
