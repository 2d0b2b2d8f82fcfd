//! Each app's health at a glance, for the dashboard and the app page: its
//! units' states and one quick health check, asked when the page loads
//! (lazily, so a hung app never slows the page itself).

use std::time::Duration;

use crate::config::{App, Config, Health};
use crate::host::Host;
use crate::host::probe;
use crate::host::systemd::{Systemctl, UnitStatus};

/// How long the glance's health check may take: a dashboard is not a deploy.
const GLANCE: Duration = Duration::from_secs(3);

pub struct AppHealth {
    /// Each unit's state, or why it is unknown.
    pub units: Vec<(String, Result<UnitStatus, String>)>,
    /// The health check's answer, or why it failed; `None` without `health`.
    pub probe: Option<Result<String, String>>,
    /// What the dashboard badge says.
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    Unhealthy,
    /// Nothing to ask: no units, no health check.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
            Verdict::Unknown => "unknown",
        }
    }
}

/// The app's units (on its host, over SSH for another one) and one quick
/// health check from opsdeck's side.
pub async fn glance(config: &Config, app: &App) -> AppHealth {
    let systemctl = Host::machine(config, app).map(|host| Systemctl::on(host, false));
    let mut units = Vec::new();
    for unit in &app.units {
        let status = match &systemctl {
            Ok(systemctl) => systemctl.status(unit).await.map_err(|e| e.public_message()),
            Err(e) => Err(e.public_message()),
        };
        units.push((unit.clone(), status));
    }
    let probe = match &app.health {
        Some(health) => {
            let quick = Health {
                timeout: health.timeout.min(GLANCE),
                ..health.clone()
            };
            Some(
                probe::check(&quick)
                    .await
                    .map(|ok| format!("{} answered {}", health.url, ok.status))
                    .map_err(|e| e.public_message()),
            )
        }
        None => None,
    };
    let units_ok = units
        .iter()
        .all(|(_, s)| s.as_ref().is_ok_and(|s| s.active_state == "active"));
    let probe_ok = probe.as_ref().is_none_or(|p| p.is_ok());
    let verdict = if units.is_empty() && probe.is_none() {
        Verdict::Unknown
    } else if units_ok && probe_ok {
        Verdict::Healthy
    } else {
        Verdict::Unhealthy
    };
    AppHealth {
        units,
        probe,
        verdict,
    }
}
