//! Steps run as the app's own account (`user`, `group` on an app), as the
//! runbooks' `sudo -u rfc-app …` do: the app keeps its files and opsdeck
//! stays unprivileged. `sudo -n` rather than a transient systemd unit
//! (`systemd-run --uid`): polkit cannot see a transient unit's `User=`, so
//! a rule allowing `StartTransientUnit` would let opsdeck run anything as
//! root, while a sudoers line `opsdeck ALL=(rfc-app) NOPASSWD: ALL` gives
//! exactly "run steps as rfc-app" (README, "Why sudo for app users").

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::App;

/// The account an app's steps run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub group: Option<String>,
}

impl RunAs {
    /// The app's `user` and `group`, if it has a user.
    pub fn of(app: &App) -> Option<RunAs> {
        app.user.as_ref().map(|user| RunAs {
            user: user.clone(),
            group: app.group.clone(),
        })
    }

    /// `sudo -n -u USER [-g GROUP] --`: never a password prompt (a missing
    /// sudoers line fails at once, see [`RunAs::refusal`]). sudo resets the
    /// environment, so what a step needs travels in its command line.
    pub fn sudo(&self) -> Vec<String> {
        let mut argv: Vec<String> = ["sudo", "-n", "-u", &self.user].map(str::to_owned).to_vec();
        if let Some(group) = &self.group {
            argv.extend(["-g".to_owned(), group.clone()]);
        }
        argv.push("--".to_owned());
        argv
    }

    /// `sudo … -- sh -c LINE`: the line (see `ssh::remote_line`) enters
    /// its directory as the user, not as opsdeck, which may not be allowed
    /// into the app's directories at all.
    pub fn shell(&self, line: String) -> Vec<String> {
        let mut argv = self.sudo();
        argv.extend(["sh".to_owned(), "-c".to_owned(), line]);
        argv
    }

    /// The sudoers line that lets `me` (opsdeck's account) run steps as
    /// this account.
    pub fn sudoers_line(&self, me: &str) -> String {
        match &self.group {
            Some(group) => format!("{me} ALL=({}:{group}) NOPASSWD: ALL", self.user),
            None => format!("{me} ALL=({}) NOPASSWD: ALL", self.user),
        }
    }

    /// What sudo said when it refused to run a command, with the fix; `None`
    /// when `stderr` is not one of sudo's own refusals.
    pub fn refusal(stderr: &str) -> Option<String> {
        let said = stderr.trim();
        if said.contains("sudo: a password is required")
            || said.contains("is not allowed to execute")
            || said.contains("may not run sudo")
        {
            Some(format!(
                "{said} (sudo has no rule letting opsdeck run commands as that user: add \
                 `opsdeck ALL=(USER) NOPASSWD: ALL` to /etc/sudoers.d/opsdeck, and install the \
                 unit drop-in sudo.conf; `opsdeck check` prints the exact lines)"
            ))
        } else if said.contains("sudo: unknown user") || said.contains("sudo: unknown group") {
            Some(format!(
                "{said} (create it, or fix `user`/`group` in the config)"
            ))
        } else if said.contains("effective uid is not 0") || said.contains("no new privileges") {
            Some(format!(
                "{said} (sudo cannot work under NoNewPrivileges: install the unit drop-in \
                 deploy/sudo.conf as /etc/systemd/system/opsdeck.service.d/sudo.conf)"
            ))
        } else {
            None
        }
    }

    /// Sends `signal` to process group `pgid` as this account, for the
    /// processes of a step opsdeck itself may not signal (when it is not
    /// root). Waits at most a few seconds; a group already gone is fine.
    pub fn signal_group(&self, pgid: u32, signal: Signal) {
        if nix::unistd::geteuid().is_root() {
            return;
        }
        let mut argv = self.sudo();
        argv.extend([
            "kill".to_owned(),
            "-s".to_owned(),
            signal.as_str().trim_start_matches("SIG").to_owned(),
            "--".to_owned(),
            format!("-{pgid}"),
        ]);
        let child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_names_the_user_and_group() {
        let run_as = RunAs {
            user: "rfc-app".into(),
            group: Some("www-data".into()),
        };
        assert_eq!(
            run_as.shell("exec env -- true".into()).join(" "),
            "sudo -n -u rfc-app -g www-data -- sh -c exec env -- true"
        );
        assert_eq!(
            run_as.sudoers_line("opsdeck"),
            "opsdeck ALL=(rfc-app:www-data) NOPASSWD: ALL"
        );
    }

    #[test]
    fn sudo_refusals_say_what_to_add() {
        let said = RunAs::refusal("sudo: a password is required\n").unwrap();
        assert!(said.contains("NOPASSWD"), "{said}");
        assert_eq!(RunAs::refusal("fatal: not a git repository"), None);
    }
}
