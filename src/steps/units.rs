//! systemd steps: restart an app's units (through `sudo -n` when the app
//! says so) and wait until they are active.

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

impl Perform for Restart {
    fn command_line(&self) -> String {
        let sudo = if self.sudo { "sudo -n " } else { "" };
        self.units
            .iter()
            .map(|u| {
                format!(
                    "{sudo}systemctl restart {}",
                    quoted(std::slice::from_ref(u))
                )
            })
            .collect::<Vec<_>>()
            .join(" && ")
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
