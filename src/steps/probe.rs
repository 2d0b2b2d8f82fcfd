//! The app's HTTP health check after a restart, retried until its timeout.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::units::WAIT_ACTIVE;
use super::{Bounds, Perform, StepJob};
use crate::config::Health;
use crate::host::exec::Ended;
use crate::host::{crash_point, probe};

/// The app's HTTP health check, retried until its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub url: String,
    pub expect: Option<String>,
    #[serde(with = "super::millis")]
    pub timeout: Option<Duration>,
}

impl Perform for Probe {
    fn command_line(&self) -> String {
        match &self.expect {
            Some(text) => format!("GET {} (expecting 2xx and {text:?})", self.url),
            None => format!("GET {} (expecting 2xx)", self.url),
        }
    }

    fn perform<'a>(&'a self, _job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            crash_point("probe:start");
            let health = Health {
                url: self.url.clone(),
                expect: self.expect.clone(),
                timeout: self.timeout.unwrap_or(WAIT_ACTIVE),
            };
            let healthy = probe::check(&health).await?;
            Ok(vec![format!(
                "{} answered {} (after {} attempt{})",
                self.url,
                healthy.status,
                healthy.attempts,
                if healthy.attempts == 1 { "" } else { "s" }
            )])
        }))
    }
}
