//! The app's HTTP health checks after a restart, each retried until its
//! timeout; every one must pass.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::units::WAIT_ACTIVE;
use super::{Bounds, Perform, StepJob};
use crate::config::Health;
use crate::host::exec::Ended;
use crate::host::{crash_point, probe};
use crate::{Error, Result};

/// The app's health checks (`health`, one or a list), asked at once; the
/// step fails when any of them does, and prints each one's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct Probe {
    pub checks: Vec<Check>,
}

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What it is called (`health.name`), when not by its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub url: String,
    pub expect: Option<String>,
    #[serde(with = "super::millis")]
    pub timeout: Option<Duration>,
}

/// How a probe is stored in a plan: one check as the check itself (the
/// shape plans had before `health` could be a list), several as `checks`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Several { checks: Vec<Check> },
    One(Check),
}

impl From<Stored> for Probe {
    fn from(stored: Stored) -> Probe {
        match stored {
            Stored::Several { checks } => Probe { checks },
            Stored::One(check) => Probe {
                checks: vec![check],
            },
        }
    }
}

impl From<Probe> for Stored {
    fn from(mut probe: Probe) -> Stored {
        match probe.checks.len() {
            1 => Stored::One(probe.checks.remove(0)),
            _ => Stored::Several {
                checks: probe.checks,
            },
        }
    }
}

impl Probe {
    /// The app's `health` checks as a step.
    pub fn of(health: &[Health]) -> Probe {
        Probe {
            checks: health
                .iter()
                .map(|h| Check {
                    name: h.name.clone(),
                    url: h.url.clone(),
                    expect: h.expect.clone(),
                    timeout: Some(h.timeout),
                })
                .collect(),
        }
    }
}

impl Check {
    fn command_line(&self) -> String {
        match &self.expect {
            Some(text) => format!("GET {} (expecting 2xx and {text:?})", self.url),
            None => format!("GET {} (expecting 2xx)", self.url),
        }
    }

    /// Asks until it answers well or its timeout runs out: the line saying
    /// how it went, or why it failed.
    async fn ask(&self) -> Result<String> {
        let health = Health {
            name: self.name.clone(),
            url: self.url.clone(),
            expect: self.expect.clone(),
            timeout: self.timeout.unwrap_or(WAIT_ACTIVE),
            interval: None,
        };
        let named = |said: String| match &self.name {
            Some(name) => format!("{name}: {said}"),
            None => said,
        };
        match probe::check(&health).await {
            Ok(healthy) => Ok(named(format!(
                "{} answered {} (after {} attempt{})",
                self.url,
                healthy.status,
                healthy.attempts,
                if healthy.attempts == 1 { "" } else { "s" }
            ))),
            Err(e) => Err(Error::Unavailable(named(e.public_message()))),
        }
    }
}

impl Perform for Probe {
    fn command_line(&self) -> String {
        let each: Vec<String> = self.checks.iter().map(Check::command_line).collect();
        each.join("; ")
    }

    fn perform<'a>(&'a self, _job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        let lines = bounds.lines.clone();
        Box::pin(bounds.in_process(async move {
            crash_point("probe:start");
            // At once: the step takes as long as the slowest check, not the sum.
            let answers = futures_util::future::join_all(self.checks.iter().map(Check::ask)).await;
            let failed: Vec<&str> = self
                .checks
                .iter()
                .zip(&answers)
                .filter(|(_, answer)| answer.is_err())
                .map(|(check, _)| check.url.as_str())
                .collect();
            let mut said = Vec::new();
            for answer in answers {
                match answer {
                    Ok(line) => said.push(line),
                    // One check's failure is the step's, told once.
                    Err(e) if self.checks.len() == 1 => return Err(e),
                    Err(e) => said.push(e.public_message()),
                }
            }
            if failed.is_empty() {
                return Ok(said);
            }
            let _ = lines.send(said.into_iter().collect()).await;
            Err(Error::Unavailable(format!(
                "{} of {} health checks failed: {}",
                failed.len(),
                self.checks.len(),
                failed.join(", ")
            )))
        }))
    }
}

/// The probe's own timeouts end it; the step's limit allows the slowest
/// check its last try.
pub fn limit(health: &[Health]) -> Duration {
    let slowest = health.iter().map(|h| h.timeout).max().unwrap_or_default();
    slowest + Duration::from_secs(15)
}
