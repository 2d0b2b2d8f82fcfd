//! `opsdeck check` for what running an app's steps needs on this machine:
//! its `user` and `group` exist, sudo lets opsdeck run commands as them,
//! and no option of the unit opsdeck runs under kills a step's program.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Findings, whoami};
use crate::config::App;
use crate::host::exec::{self, command_line};
use crate::host::run_as::RunAs;

/// Programs that need writable and executable memory (a JIT):
/// `MemoryDenyWriteExecute` kills them at start.
const JIT: &[&str] = &["node", "nodejs", "npm", "npx", "yarn", "pnpm", "corepack"];

/// The app's `user` and `group` exist, and `sudo -n -u` works for them.
/// Warnings, as for units: opsdeck still serves its other apps.
pub(super) async fn account(app: &App, found: &mut Findings) {
    let Some(run_as) = RunAs::of(app) else {
        return;
    };
    if !matches!(nix::unistd::User::from_name(&run_as.user), Ok(Some(_))) {
        found.warnings.push(format!(
            "app {:?}: user {:?} does not exist on this host; every step of the app runs as it \
             (make it: useradd --system --home-dir /srv/{} {0}, or fix `user`)",
            app.name, run_as.user, app.name
        ));
        return;
    }
    if let Some(group) = &run_as.group
        && !matches!(nix::unistd::Group::from_name(group), Ok(Some(_)))
    {
        found.warnings.push(format!(
            "app {:?}: group {group:?} does not exist on this host (groupadd --system {group}, or fix `group`)",
            app.name
        ));
        return;
    }
    let mut argv = run_as.sudo();
    argv.push("true".to_owned());
    let tried = exec::capture(&argv, None, &BTreeMap::new(), Duration::from_secs(10)).await;
    let said = match tried {
        Ok(out) if out.success() => return,
        Ok(out) => out.stderr.trim().to_owned(),
        Err(e) => e.to_string(),
    };
    let fix = if said.contains("no new privileges") || said.contains("effective uid is not 0") {
        "sudo is stopped by NoNewPrivileges: install the drop-in deploy/sudo.conf as \
         /etc/systemd/system/opsdeck.service.d/sudo.conf"
            .to_owned()
    } else {
        format!(
            "add to /etc/sudoers.d/opsdeck (deploy/sudoers.d/opsdeck; check it with visudo -cf): {}",
            run_as.sudoers_line(&whoami())
        )
    };
    found.warnings.push(format!(
        "app {:?}: opsdeck may not run steps as {}: `{}` said {said:?}. {fix}",
        app.name,
        run_as.user,
        command_line(&argv)
    ));
}

/// Steps whose program the unit opsdeck runs under would kill: Node and
/// npm under `MemoryDenyWriteExecute`, which every child inherits.
pub(super) async fn unit_options(app: &App, found: &mut Findings) {
    let steps = app
        .build
        .iter()
        .chain(&app.deploy)
        .map(|c| ("build step", &c.run))
        .chain(app.actions.iter().map(|a| ("action", &a.run)))
        .chain(
            app.sweeps
                .iter()
                .filter_map(|s| s.run.as_ref().map(|run| ("sweep", run))),
        );
    let jit: Vec<_> = steps.filter(|(_, run)| runs_a_jit(run)).collect();
    if jit.is_empty() {
        return;
    }
    let Some(unit) = own_unit() else {
        return;
    };
    let argv: Vec<String> = [
        "systemctl",
        "show",
        &unit,
        "-p",
        "MemoryDenyWriteExecute",
        "--value",
    ]
    .map(str::to_owned)
    .to_vec();
    let shown = exec::capture(&argv, None, &BTreeMap::new(), Duration::from_secs(10)).await;
    if !shown.is_ok_and(|out| out.stdout.trim() == "yes") {
        return;
    }
    for (what, run) in jit {
        found.warnings.push(format!(
            "app {:?}: the {what} `{}` runs Node, which dies at start (SIGTRAP) under \
             MemoryDenyWriteExecute=yes of {unit}, inherited by every step: remove that line \
             from the unit (the shipped deploy/opsdeck.service does not set it)",
            app.name,
            command_line(run)
        ));
    }
}

/// Whether a word of `run` (or of a `sh -c` script in it) names a JIT program.
fn runs_a_jit(run: &[String]) -> bool {
    run.iter()
        .flat_map(|arg| arg.split(|c: char| c.is_whitespace() || ";&|()".contains(c)))
        .any(|word| JIT.contains(&word.rsplit('/').next().unwrap_or(word)))
}

/// The systemd unit this process runs in (from its cgroup), if any.
fn own_unit() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?
        .rsplit('/')
        .find(|part| part.ends_with(".service"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_node_in_argv_and_scripts() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert!(runs_a_jit(&argv(&["npm", "run", "build"])));
        assert!(runs_a_jit(&argv(&[
            "sh",
            "-c",
            "cd web && /usr/bin/node build.js"
        ])));
        assert!(!runs_a_jit(&argv(&[".venv/bin/pip", "install", "nodeenv"])));
    }
}
