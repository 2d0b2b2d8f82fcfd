//! systemd steps: restart or stop an app's units (through `sudo -n` when
//! the app says so) and wait until they are active.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Bounds, Perform, StepJob};
use crate::host::exec::{Ended, command_line as quoted};
use crate::host::systemd::Systemctl;

/// How long a restart waits for its units, and `WaitActive` for each, when
/// the plan gives the step no timeout of its own (the job's step timeout
/// still bounds it).
pub(super) const WAIT_ACTIVE: Duration = Duration::from_secs(90);

/// `systemctl restart` each unit (through `sudo -n` when `sudo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    pub units: Vec<String>,
    pub sudo: bool,
}

/// Waits until every unit is active; fails when one fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitActive {
    pub units: Vec<String>,
}

/// `systemctl stop` each unit (through `sudo -n` when `sudo`); a database
/// restore's, so nothing writes while the file is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub units: Vec<String>,
    pub sudo: bool,
}

/// `[sudo -n ]systemctl VERB unit && …`, one call per unit as the sudoers
/// rule lists them.
fn each(verb: &str, units: &[String], sudo: bool) -> String {
    let sudo = if sudo { "sudo -n " } else { "" };
    units
        .iter()
        .map(|u| format!("{sudo}systemctl {verb} {}", quoted(std::slice::from_ref(u))))
        .collect::<Vec<_>>()
        .join(" && ")
}

impl Perform for Restart {
    fn command_line(&self) -> String {
        each("restart", &self.units, self.sudo)
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            Systemctl::on(job.machine()?, self.sudo)
                .restart(&self.units, WAIT_ACTIVE)
                .await?;
            Ok(vec![format!("restarted {}", self.units.join(", "))])
        }))
    }
}

impl Perform for Stop {
    fn command_line(&self) -> String {
        each("stop", &self.units, self.sudo)
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            Systemctl::on(job.machine()?, self.sudo)
                .stop(&self.units, WAIT_ACTIVE)
                .await?;
            Ok(vec![format!("stopped {}", self.units.join(", "))])
        }))
    }
}

impl Perform for WaitActive {
    fn command_line(&self) -> String {
        format!(
            "systemctl show -p ActiveState,SubState,Result {} (until active)",
            quoted(&self.units)
        )
    }

    fn perform<'a>(&'a self, job: &'a mut StepJob<'_>, bounds: Bounds) -> BoxFuture<'a, Ended> {
        Box::pin(bounds.in_process(async move {
            let systemctl = Systemctl::on(job.machine()?, false);
            let mut lines = Vec::new();
            for unit in &self.units {
                let status = systemctl.wait_active(unit, WAIT_ACTIVE).await?;
                let pid = status
                    .main_pid
                    .map(|p| format!(", main PID {p}"))
                    .unwrap_or_default();
                lines.push(format!("{unit} is {}{pid}", status.state()));
            }
            Ok(lines)
        }))
    }
}
