//! Each app's health at a glance, for the dashboard, the app page and
//! `GET /api/apps/{app}/health`: its units' states and a quick ask of each
//! health check, when the page loads (lazily, so a hung app never slows
//! the page itself).

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
    /// Each health check's answer, or why it failed, in config order.
    pub checks: Vec<CheckAnswer>,
    /// What the dashboard badge says.
    pub verdict: Verdict,
}

/// One health check at a glance.
pub struct CheckAnswer {
    /// Its `name`, else its URL.
    pub name: String,
    pub url: String,
    /// "answered 200", or why it failed.
    pub said: Result<String, String>,
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

/// The app's units (on its host, over SSH for another one) and a quick ask
/// of each health check from opsdeck's side.
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
    // At once: a glance takes as long as the slowest check.
    let checks = futures_util::future::join_all(app.health.iter().map(|health| async move {
        let quick = Health {
            timeout: health.timeout.min(GLANCE),
            ..health.clone()
        };
        CheckAnswer {
            name: health.name().to_owned(),
            url: health.url.clone(),
            said: probe::check(&quick)
                .await
                .map(|ok| format!("answered {}", ok.status))
                .map_err(|e| e.public_message()),
        }
    }))
    .await;
    let units_ok = units
        .iter()
        .all(|(_, s)| s.as_ref().is_ok_and(|s| s.active_state == "active"));
    let checks_ok = checks.iter().all(|c| c.said.is_ok());
    let verdict = if units.is_empty() && checks.is_empty() {
        Verdict::Unknown
    } else if units_ok && checks_ok {
        Verdict::Healthy
    } else {
        Verdict::Unhealthy
    };
    AppHealth {
        units,
        checks,
        verdict,
    }
}
