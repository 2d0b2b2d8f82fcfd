//! `opsdeck check` on the host itself: what must be true on this machine,
//! for the user opsdeck runs as, so that deploys, restarts, secret rotation
//! and logs work — the mistakes of README's troubleshooting table, found
//! before a button is clicked. The shipped unit runs `check` as
//! `ExecStartPre`, inside its own sandboxing, so a directory missing from
//! `ReadWritePaths` shows up here too.
//!
//! Only apps on this host are looked at; an SSH app's host is not reached.

use std::path::Path;

use nix::unistd::{AccessFlags, access};

use crate::config::{App, Config};
use crate::host::systemd::Systemctl;

mod run_as;

/// What `check` found: errors stop opsdeck from starting, warnings break
/// some button.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

pub async fn run(config: &Config) -> Findings {
    let mut found = Findings::default();
    data_dir(&config.server.data_dir, &mut found);
    for app in &config.apps {
        if !app.is_local() {
            continue;
        }
        // An app with its own user keeps its files: opsdeck need not write them.
        if app.user.is_none() {
            app_files(app, &mut found);
        }
        run_as::account(app, &mut found).await;
        run_as::unit_options(app, &mut found).await;
        units(app, &mut found).await;
        if app.logs.as_ref().is_some_and(|l| !l.units.is_empty()) || !app.units.is_empty() {
            journal_access(&app.name, &mut found);
        }
    }
    found.warnings.dedup();
    found
}

fn data_dir(dir: &Path, found: &mut Findings) {
    if dir.exists() {
        if let Err(e) = access(dir, AccessFlags::W_OK) {
            found.errors.push(format!(
                "server.data_dir: {} is not writable by {} ({e}); the database lives there",
                dir.display(),
                whoami()
            ));
        }
        return;
    }
    // Missing before the first start is normal: the shipped unit's
    // StateDirectory= creates it, owned by the service's user.
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if access(parent, AccessFlags::W_OK).is_err() {
        found.warnings.push(format!(
            "server.data_dir: {} does not exist yet and {} cannot create it in {} (fine under the shipped unit: its StateDirectory= creates it)",
            dir.display(),
            whoami(),
            parent.display()
        ));
    }
}

/// The directories a deploy writes and the files a rotation rewrites (env
/// files, key files).
fn app_files(app: &App, found: &mut Findings) {
    let dirs = app.path.iter().chain(app.repo.iter());
    for dir in dirs {
        if !dir.exists() {
            continue; // config loading already warns about it
        }
        if let Err(e) = access(dir.as_path(), AccessFlags::W_OK) {
            found.warnings.push(format!(
                "app {:?}: {} is not writable by {} ({e}); deploys will fail. Give that user the directory, and under the shipped unit list it in ReadWritePaths",
                app.name,
                dir.display(),
                whoami()
            ));
        }
    }
    let mut rewritten: Vec<&Path> = Vec::new();
    for place in app.secrets.iter().filter_map(|s| s.place(app)) {
        if !rewritten.contains(&place.path()) {
            rewritten.push(place.path());
        }
    }
    for file in rewritten {
        let dir = file.parent().unwrap_or(Path::new("."));
        for (path, what) in [
            (file, "rewrites"),
            (dir, "writes a temp file and backups in"),
        ] {
            if path.exists()
                && let Err(e) = access(path, AccessFlags::R_OK | AccessFlags::W_OK)
            {
                found.warnings.push(format!(
                    "app {:?}: secret rotation {what} {}, which {} cannot read and write ({e})",
                    app.name,
                    path.display(),
                    whoami()
                ));
            }
        }
    }
}

/// Each unit exists, and opsdeck may manage it (the polkit rule or the
/// sudoers file lists it).
async fn units(app: &App, found: &mut Findings) {
    let systemctl = Systemctl::for_app(app);
    for unit in &app.units {
        let warning = match systemctl.may_manage(unit).await {
            Ok(_) => continue,
            Err(crate::Error::NotFound(why)) => format!("app {:?}: {why}", app.name),
            Err(e) => format!(
                "app {:?}: opsdeck may not restart {unit}: {}. {}",
                app.name,
                e.to_string().trim_end_matches('.'),
                if app.sudo {
                    "List it in /etc/sudoers.d/opsdeck (deploy/sudoers.d/opsdeck) and install the drop-in deploy/sudo.conf"
                } else {
                    "List it in the polkit rule /etc/polkit-1/rules.d/50-opsdeck.rules (deploy/polkit/50-opsdeck.rules)"
                }
            ),
        };
        found.warnings.push(warning);
    }
}

/// The Logs page runs `journalctl`, which shows other users' and system
/// units' lines only to root and the `systemd-journal` group.
fn journal_access(app: &str, found: &mut Findings) {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let group = nix::unistd::Group::from_name("systemd-journal")
        .ok()
        .flatten();
    let member = group.is_some_and(|g| {
        nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&g.gid))
            || nix::unistd::getegid() == g.gid
    });
    if !member {
        found.warnings.push(format!(
            "app {app:?}: {} is not in the systemd-journal group, so the Logs page shows none of the units' lines (usermod -aG systemd-journal {0}, or SupplementaryGroups=systemd-journal in the unit)",
            whoami()
        ));
    }
}

/// The account opsdeck runs as, by name.
pub(crate) fn whoami() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name)
}
