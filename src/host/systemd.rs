//! systemd units of an app: restart them, wait until they are active (or
//! failed), and read their state — through `systemctl`, like the runbooks.
//!
//! Restarts may go through `sudo -n` (the app's `sudo = true`); the commands
//! are exactly the ones `deploy/sudoers.d/opsdeck` allows
//! (`systemctl restart <unit>`, `systemctl reset-failed <unit>`, and for a
//! database restore `systemctl stop <unit>`), one unit per call. Reading
//! state needs no privilege.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::config::App;
use crate::error::Quoted;
use crate::host::Host;
use crate::host::exec::command_line;
use crate::{Error, Result};

/// How often `wait_active` looks at a unit that is still starting.
const POLL: Duration = Duration::from_millis(100);
/// `systemctl show` and `reset-failed` answer at once.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// How opsdeck reaches `systemctl` on a host.
#[derive(Debug, Clone)]
pub struct Systemctl {
    /// Wrapper for restarts (`sudo -n`), empty when not needed.
    privileged: Vec<String>,
    /// Wrapper for every call: reaches another systemd, e.g. `nsenter -t
    /// <pid> -m -p --` for a systemd in its own namespaces.
    via: Vec<String>,
    /// The machine whose systemd this is.
    host: Host,
}

/// What `systemctl show` says about a unit, in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    pub unit: String,
    /// `active`, `activating`, `failed`, `inactive`, …
    pub active_state: String,
    /// `running`, `auto-restart`, `exited`, `dead`, …
    pub sub_state: String,
    pub main_pid: Option<u32>,
    /// When it entered its current state.
    pub since: Option<DateTime<Utc>>,
    /// How often systemd restarted it automatically.
    pub n_restarts: u32,
    /// `success`, `exit-code`, `signal`, `timeout`, `start-limit-hit`, …
    pub result: String,
}

impl UnitStatus {
    /// "active (running)", as `systemctl status` shows it.
    pub fn state(&self) -> String {
        format!("{} ({})", self.active_state, self.sub_state)
    }
}

impl Systemctl {
    /// `systemctl` on `host`, restarts through `sudo -n` when asked.
    pub fn on(host: Host, sudo: bool) -> Systemctl {
        let privileged = if sudo {
            vec!["sudo".to_owned(), "-n".to_owned()]
        } else {
            Vec::new()
        };
        Systemctl {
            privileged,
            via: Vec::new(),
            host,
        }
    }

    /// `systemctl` on this machine.
    pub fn local(sudo: bool) -> Systemctl {
        Systemctl::on(Host::Local, sudo)
    }

    /// How the app's config says its units are reached, on this machine
    /// (`check` looks at this machine only).
    pub fn for_app(app: &App) -> Systemctl {
        Systemctl::local(app.sudo)
    }

    /// Reaches systemctl through a wrapper command (`nsenter …`).
    pub fn via(wrapper: Vec<String>) -> Systemctl {
        Systemctl {
            via: wrapper,
            ..Systemctl::local(false)
        }
    }

    /// Restarts each unit, after clearing its failed state and start count:
    /// a deploy, its automatic rollback and the next deploy within seconds
    /// would otherwise hit systemd's start limit (5 starts in 10 s).
    /// Fails with the unit's state when systemd could not start it.
    pub async fn restart(&self, units: &[String], timeout: Duration) -> Result<()> {
        for unit in units {
            self.status(unit).await?;
            if let Err(e) = self
                .privileged_call(&["reset-failed", unit], QUERY_TIMEOUT)
                .await
            {
                // A unit nothing has started since boot is not loaded and
                // has no failure or start count to clear.
                if !e.to_string().contains("not loaded") {
                    return Err(e);
                }
            }
            if let Err(refused) = self.privileged_call(&["restart", unit], timeout).await {
                let status = self.status(unit).await?;
                if status.active_state == "failed" {
                    return Err(failed(&status));
                }
                return Err(refused);
            }
        }
        Ok(())
    }

    /// Stops each unit and waits until it is: what a database restore does
    /// before putting another file in place, so nothing writes to it.
    pub async fn stop(&self, units: &[String], timeout: Duration) -> Result<()> {
        for unit in units {
            self.status(unit).await?;
            self.privileged_call(&["stop", unit], timeout).await?;
        }
        Ok(())
    }

    /// Proves opsdeck may manage `unit` (through polkit or sudo, as a
    /// restart would) by clearing its failed state — a no-op on a unit that
    /// is not failed, and skipped on a failed one, whose failure the
    /// operator may still want to read. `Ok(false)`: could not tell.
    pub async fn may_manage(&self, unit: &str) -> Result<bool> {
        if self.status(unit).await?.active_state == "failed" {
            return Ok(false);
        }
        match self
            .privileged_call(&["reset-failed", unit], QUERY_TIMEOUT)
            .await
        {
            Ok(_) => Ok(true),
            // systemd answers "not loaded" before it asks polkit.
            Err(e) if e.to_string().contains("not loaded") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until the unit is `active`; an error when it fails, stops, or
    /// is still not active when `timeout` runs out (e.g. restarting in a loop).
    pub async fn wait_active(&self, unit: &str, timeout: Duration) -> Result<UnitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status(unit).await?;
            match status.active_state.as_str() {
                "active" => return Ok(status),
                "failed" => return Err(failed(&status)),
                "inactive" => {
                    return Err(Error::Unavailable(format!(
                        "{unit} stopped instead of running: {}, Result={}; see its journal (journalctl -u {unit})",
                        status.state(),
                        status.result
                    )));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!(
                        "{unit} is still {} after {}s: NRestarts={}, Result={}; see its journal (journalctl -u {unit})",
                        status.state(),
                        timeout.as_secs(),
                        status.n_restarts,
                        status.result
                    )));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The unit's state; an error when systemd does not know the unit.
    pub async fn status(&self, unit: &str) -> Result<UnitStatus> {
        check_unit_name(unit)?;
        let out = self
            .call(
                &[
                    "show",
                    "--timestamp=utc",
                    "-p",
                    "LoadState,ActiveState,SubState,MainPID,StateChangeTimestamp,NRestarts,Result",
                    unit,
                ],
                QUERY_TIMEOUT,
            )
            .await?;
        let fields: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
        let field = |key: &str| fields.get(key).copied().unwrap_or_default();
        if field("LoadState") == "not-found" {
            return Err(Error::NotFound(format!(
                "{unit} is not installed on {} (systemd does not know it)",
                self.host.name()
            )));
        }
        Ok(UnitStatus {
            unit: unit.to_owned(),
            active_state: field("ActiveState").to_owned(),
            sub_state: field("SubState").to_owned(),
            main_pid: field("MainPID").parse().ok().filter(|pid| *pid != 0),
            since: NaiveDateTime::parse_from_str(
                field("StateChangeTimestamp"),
                "%a %Y-%m-%d %H:%M:%S UTC",
            )
            .ok()
            .map(|t| t.and_utc()),
            n_restarts: field("NRestarts").parse().unwrap_or(0),
            result: field("Result").to_owned(),
        })
    }

    async fn privileged_call(&self, args: &[&str], timeout: Duration) -> Result<String> {
        self.run(&self.privileged, args, timeout).await
    }

    async fn call(&self, args: &[&str], timeout: Duration) -> Result<String> {
        self.run(&[], args, timeout).await
    }

    async fn run(&self, privileged: &[String], args: &[&str], timeout: Duration) -> Result<String> {
        let argv: Vec<String> = self
            .via
            .iter()
            .chain(privileged)
            .cloned()
            .chain(std::iter::once("systemctl".to_owned()))
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect();
        // English messages: they are quoted to operators and matched above.
        let env = BTreeMap::from([("LC_ALL".to_owned(), "C".to_owned())]);
        let out = self.host.capture(&argv, None, &env, timeout).await?;
        if out.success() {
            return Ok(out.stdout);
        }
        let mut message = format!("`{}` failed: {}", command_line(&argv), out.stderr.trim());
        if !privileged.is_empty() && out.stderr.contains("sudo:") {
            message.push_str(
                "; opsdeck needs the sudoers rule of deploy/sudoers.d/opsdeck for this unit",
            );
        }
        Err(Error::Unavailable(message))
    }
}

/// "rfc-app.service failed to start: Result=exit-code; see its journal".
fn failed(status: &UnitStatus) -> Error {
    let unit = &status.unit;
    Error::Unavailable(format!(
        "{unit} failed to start: Result={}, NRestarts={}; see its journal (journalctl -u {unit})",
        status.result, status.n_restarts
    ))
}

/// Unit names come from the config; still, never let one read as an option
/// (the sudoers rule forbids a `--` before it).
fn check_unit_name(unit: &str) -> Result<()> {
    let valid = !unit.is_empty()
        && !unit.starts_with('-')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c));
    if valid {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{} is not a systemd unit name",
            Quoted(unit)
        )))
    }
}
