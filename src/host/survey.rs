//! The hosts page's look at each machine opsdeck operates: can it be
//! reached, how long one round trip takes, what systemd says of the system
//! as a whole, and how much disk is free where the apps live. One short
//! command per host, all hosts at once, each with its own time limit, so a
//! dead host costs its timeout and no more.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::Result;
use crate::config::Config;
use crate::host::exec::{Captured, capture};
use crate::host::ssh::Remote;

/// How long one host may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What one host looks like now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostReport {
    /// `local`, a `[hosts.<name>]` name, or an app's `ssh://…` address.
    pub name: String,
    /// `this machine` or `user@host:port`.
    pub address: String,
    /// The apps that run there.
    pub apps: Vec<String>,
    /// `None` when it answered; otherwise why not, with the fix.
    pub error: Option<String>,
    /// One round trip, connection included (shared after the first).
    pub latency_ms: Option<u64>,
    /// `systemctl is-system-running`: `running`, `degraded`, …
    pub systemd: Option<String>,
    pub disks: Vec<Disk>,
}

/// Free space of the file system holding an app's directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disk {
    pub path: String,
    pub free_bytes: u64,
    pub size_bytes: u64,
}

impl Disk {
    /// Free space as people read it: `12.3 GiB free of 40.0 GiB (31 %)`.
    pub fn summary(&self) -> String {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let percent = (self.free_bytes * 100)
            .checked_div(self.size_bytes)
            .unwrap_or(0);
        format!(
            "{:.1} GiB free of {:.1} GiB ({percent} %)",
            gib(self.free_bytes),
            gib(self.size_bytes)
        )
    }

    /// Under a tenth free: a deploy or a backup may not fit.
    pub fn low(&self) -> bool {
        self.free_bytes * 10 < self.size_bytes
    }
}

/// The script run on each host: systemd's overall state, a separator, then
/// per path (given as arguments, never parsed by a shell) the path, a tab,
/// and its `df` line (empty when the path does not exist there).
const SCRIPT: &str = "systemctl is-system-running 2>&1 || true; echo '--'; \
                      for p in \"$@\"; do d=$(df -Pk -- \"$p\" 2>/dev/null | tail -n 1); \
                      printf '%s\\t%s\\n' \"$p\" \"$d\"; done";

/// Every host the config names, in config order: this machine first when an
/// app runs on it, then `[hosts.*]`, then inline `ssh://` addresses.
pub async fn survey(config: &Config) -> Vec<HostReport> {
    // Host name → its apps and their directories.
    let mut hosts: BTreeMap<String, (Vec<String>, Vec<PathBuf>)> = BTreeMap::new();
    let mut order = Vec::new();
    for name in config.hosts.keys() {
        order.push(name.clone());
    }
    for app in &config.apps {
        if !order.contains(&app.host) {
            order.push(app.host.clone());
        }
        let entry = hosts.entry(app.host.clone()).or_default();
        entry.0.push(app.name.clone());
        entry
            .1
            .extend(app.path.iter().chain(app.repo.iter()).cloned());
    }
    order.sort_by_key(|name| name != "local");
    let looks = order.into_iter().map(|name| {
        let (apps, paths) = hosts.remove(&name).unwrap_or_default();
        async move { look(config, name, apps, paths).await }
    });
    futures_util::future::join_all(looks).await
}

async fn look(config: &Config, name: String, apps: Vec<String>, paths: Vec<PathBuf>) -> HostReport {
    let mut report = HostReport {
        name: name.clone(),
        address: "this machine".to_owned(),
        apps,
        error: None,
        latency_ms: None,
        systemd: None,
        disks: Vec::new(),
    };
    let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), SCRIPT.into(), "sh".into()];
    argv.extend(paths.iter().map(|p| p.display().to_string()));
    let started = Instant::now();
    let answered: Result<Captured> = match Remote::resolve(config, &name) {
        Ok(None) => capture(&argv, None, &BTreeMap::new(), TIMEOUT).await,
        Ok(Some(remote)) => {
            report.address = remote.name();
            remote.capture(&argv, TIMEOUT).await
        }
        Err(e) => Err(e),
    };
    match answered {
        Ok(out) => {
            report.latency_ms = Some(started.elapsed().as_millis() as u64);
            let (systemd, disks) = parse(&out.stdout);
            report.systemd = Some(systemd);
            report.disks = disks;
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Splits the script's output into systemd's state and the disks.
fn parse(stdout: &str) -> (String, Vec<Disk>) {
    let (state, df) = stdout.split_once("--\n").unwrap_or((stdout, ""));
    let state = match state.trim() {
        "" => "unknown".to_owned(),
        s if s.contains("not been booted with systemd") || s.contains("not found") => {
            "no systemd".to_owned()
        }
        s => s.lines().last().unwrap_or(s).to_owned(),
    };
    let disks = df
        .lines()
        .filter_map(|line| {
            // `<path>\t<fs> <1k-blocks> <used> <available> <capacity> <mount>`
            let (path, df) = line.split_once('\t')?;
            let fields: Vec<&str> = df.split_whitespace().collect();
            Some(Disk {
                path: path.to_owned(),
                free_bytes: fields.get(3)?.parse::<u64>().ok()? * 1024,
                size_bytes: fields.get(1)?.parse::<u64>().ok()? * 1024,
            })
        })
        .collect();
    (state, disks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_df_lines_with_spaces_in_paths() {
        let out = "degraded\n--\n/srv/my app\t/dev/vda1 41152736 20576368 18458836 53% /mnt/a b\n/gone\t\n";
        let (state, disks) = parse(out);
        assert_eq!(state, "degraded");
        assert_eq!(
            disks,
            vec![Disk {
                path: "/srv/my app".into(),
                free_bytes: 18458836 * 1024,
                size_bytes: 41152736 * 1024,
            }]
        );
        assert!(disks[0].summary().contains("GiB free of"));
        let (state, _) = parse(
            "System has not been booted with systemd as init system (PID 1). Can't operate.\n--\n",
        );
        assert_eq!(state, "no systemd");
    }
}
