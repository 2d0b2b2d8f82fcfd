//! A secret's other store (`store = { run = [...] }`: `cloudron env set`,
//! a vault CLI): the command runs on the app's host as the app's user and
//! gets the value on its standard input — never in its argv or its
//! environment, which other users of the host can read in `/proc`. A
//! non-zero exit fails the rotation; its recovery runs the command again
//! with the previous value when the store may hold the new one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::secret::current;
use super::{Bounds, Lines, Perform, StepJob, path, say};
use crate::config::Generator;
use crate::host::exec::{self, Captured, Ended, command_line};
use crate::host::{Host, secret};
use crate::{Error, Result};

/// Hands `key`'s new value to the store command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSecret {
    pub key: String,
    pub run: Vec<String>,
    pub value: ValueFrom,
}

/// Where the value handed to the store comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum ValueFrom {
    /// The env file, which an earlier step of the rotation wrote.
    EnvFile { env_file: PathBuf },
    /// Made inside the step: the secret lives in the store only, so
    /// opsdeck never knows its previous value.
    Generate { generate: Generator },
}

/// Recovery: hands the store `key`'s value in the (restored) env file
/// again, when this job's store command may have changed the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStore {
    pub key: String,
    pub run: Vec<String>,
    pub env_file: PathBuf,
}

impl Perform for StoreSecret {
    fn command_line(&self) -> String {
        let from = match &self.value {
            ValueFrom::EnvFile { env_file } => format!("{} of {}", self.key, path(env_file)),
            ValueFrom::Generate { generate } => format!("a new {generate} value"),
        };
        format!(
            "{} < {from} (on its stdin; never shown)",
            command_line(&self.run)
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_hand(self, job, bounds)
    }
}

/// What each store step does, with the job's output at hand for what the
/// command prints and the step's limit for its timeout; the lines it
/// prints after.
trait Hand: Sync {
    fn hand(
        &self,
        job: &mut StepJob<'_>,
        lines: &Lines,
        limit: Duration,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
}

fn perform_hand<'a>(
    step: &'a impl Hand,
    job: &'a mut StepJob<'_>,
    bounds: Bounds,
) -> BoxFuture<'a, Ended> {
    Box::pin(async move {
        let (lines, limit) = (bounds.lines.clone(), bounds.limit);
        bounds.in_process(step.hand(job, &lines, limit)).await
    })
}

impl Hand for StoreSecret {
    async fn hand(
        &self,
        job: &mut StepJob<'_>,
        lines: &Lines,
        limit: Duration,
    ) -> Result<Vec<String>> {
        let key = &self.key;
        let host = job.host()?;
        let value = match &self.value {
            ValueFrom::EnvFile { env_file } => current(&host, env_file, key).await?,
            ValueFrom::Generate { generate } => {
                let value = secret::generate(*generate);
                job.redactor.learn([value.clone()]);
                value
            }
        };
        let fingerprint = job.server_key.fingerprint(&value);
        // Known before it runs: a cancel or a timeout while it runs leaves
        // the recovery a store that may hold the new value.
        let stores = &mut job.memory.secret.stores;
        if !stores.contains(key) {
            stores.push(key.clone());
        }
        // An error here (it could not start, or did not finish in time)
        // leaves the store as it may be; a refusal leaves it as it was.
        let out = feed(job, &host, &self.run, value, limit, lines).await?;
        if let Err(e) = refused(&host, &self.run, &out) {
            job.memory.secret.stores.retain(|k| k != key);
            return Err(e);
        }
        job.audit.push((
            "secret.store",
            serde_json::json!({
                "secret": key, "command": command_line(&self.run), "after": fingerprint,
                "host": host.name(),
            }),
        ));
        let mut said = vec![format!("the store now holds {key} ({fingerprint})")];
        if matches!(self.value, ValueFrom::Generate { .. }) {
            said.push(format!(
                "{key} lives in the store only: opsdeck never knew its previous value, so a later failure cannot put that back"
            ));
        }
        Ok(said)
    }
}

impl Perform for RestoreStore {
    fn command_line(&self) -> String {
        format!(
            "{} < {} of {} (on its stdin; never shown), if this job changed the store",
            command_line(&self.run),
            self.key,
            path(&self.env_file)
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        perform_hand(self, job, bounds)
    }
}

impl Hand for RestoreStore {
    async fn hand(
        &self,
        job: &mut StepJob<'_>,
        lines: &Lines,
        limit: Duration,
    ) -> Result<Vec<String>> {
        let key = &self.key;
        if !job.memory.secret.stores.contains(key) {
            return Ok(vec![format!(
                "this job did not change the store of {key}; nothing to put back"
            )]);
        }
        let host = job.host()?;
        let value = current(&host, &self.env_file, key).await?;
        let fingerprint = job.server_key.fingerprint(&value);
        let out = feed(job, &host, &self.run, value, limit, lines).await?;
        refused(&host, &self.run, &out)?;
        job.audit.push((
            "secret.store",
            serde_json::json!({
                "secret": key, "command": command_line(&self.run), "after": fingerprint,
                "host": host.name(), "restored": true,
            }),
        ));
        Ok(vec![format!(
            "the store holds the previous {key} ({fingerprint}) again"
        )])
    }
}

/// Runs the store command on `host` with `value` (and nothing after it) on
/// its stdin, printing what it printed.
async fn feed(
    job: &StepJob<'_>,
    host: &Host,
    run: &[String],
    value: String,
    limit: Duration,
    lines: &Lines,
) -> Result<Captured> {
    let env = BTreeMap::from([(exec::JOB_TAG.to_owned(), job.tag.clone())]);
    // Its own timeout ends the command's whole process group a moment
    // before the step's limit would only drop it.
    let timeout = limit
        .saturating_sub(Duration::from_secs(1))
        .max(Duration::from_secs(1));
    let out = host.feed(run, &env, value.into_bytes(), timeout).await?;
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        say(lines, line.to_owned()).await;
    }
    Ok(out)
}

/// Why the store command's run failed, if it did not exit 0.
fn refused(host: &Host, run: &[String], out: &Captured) -> Result<()> {
    if out.success() {
        return Ok(());
    }
    let ended = match out.status {
        Some(code) => format!("exited with code {code}"),
        None => "was ended by a signal".to_owned(),
    };
    Err(Error::Unavailable(format!(
        "the store command `{}` {ended} on {}: the store refused the value",
        command_line(run),
        host.name()
    )))
}
