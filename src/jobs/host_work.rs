//! Steps that act on the host through `host::git`, `host::systemd` and
//! `host::probe` rather than by running a configured command: checkouts,
//! restarts, waiting for units, health checks. Each returns the lines it
//! prints into the job output, or an error sentence that becomes the
//! step's failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::plan::Work;
use crate::config::Health;
use crate::host::Host;
use crate::host::exec::command_line as quoted;
use crate::host::git::{self, Sha};
use crate::host::probe;
use crate::host::release_tree::{self, ReleaseTree};
use crate::host::systemd::Systemctl;
use crate::{Error, Result};

/// How long `WaitActive` waits when the plan gives the step no timeout of
/// its own (the job's step timeout still bounds it).
const WAIT_ACTIVE: Duration = Duration::from_secs(90);

/// What the job's `Checkout` and `SwitchRelease` steps replaced (the commit
/// per work tree, the release per releases root), so the recovery can put
/// it back. Lives as long as the job: a job is never resumed after a
/// restart, so nothing needs storing.
#[derive(Debug, Default)]
pub(super) struct Replaced {
    commits: Vec<(PathBuf, Sha)>,
    releases: Vec<(PathBuf, Option<String>)>,
}

impl Replaced {
    fn commit(&self, repo: &Path) -> Option<&Sha> {
        self.commits
            .iter()
            .find(|(r, _)| r == repo)
            .map(|(_, sha)| sha)
    }

    fn release(&self, root: &Path) -> Option<&Option<String>> {
        self.releases
            .iter()
            .find(|(r, _)| r == root)
            .map(|(_, name)| name)
    }
}

/// Runs `work` on `host` (the job's app's).
pub(super) async fn run(work: &Work, host: &Host, replaced: &mut Replaced) -> Result<Vec<String>> {
    match work {
        Work::Run { .. }
        | Work::Sweep { .. }
        | Work::CleanupReleases { .. }
        | Work::RotateSecret { .. }
        | Work::RestoreEnv { .. }
        | Work::SetWebhookSecret { .. }
        | Work::RestoreWebhookSecret { .. } => Err(Error::Internal(anyhow::anyhow!(
            "{} reached the host-step runner",
            work.command_line()
        ))),
        Work::Checkout { repo, sha } => {
            let sha = Sha::parse(sha)?;
            git::ensure_clean(host, repo).await?;
            let was = git::head(host, repo).await?;
            if replaced.commit(repo).is_none() {
                replaced.commits.push((repo.clone(), was.clone()));
            }
            git::checkout(host, repo, &sha).await?;
            Ok(vec![format!(
                "{} was at {}; it is now at {sha}",
                host.place(repo),
                was.short()
            )])
        }
        Work::CheckoutPrevious { repo } => {
            let Some(sha) = replaced.commit(repo).cloned() else {
                return Err(Error::Conflict(format!(
                    "nothing to go back to: this job did not check out anything in {}",
                    repo.display()
                )));
            };
            git::checkout(host, repo, &sha).await?;
            Ok(vec![format!("{} is back at {sha}", host.place(repo))])
        }
        Work::MakeRelease {
            repo,
            sha,
            root,
            name,
            shared,
        } => {
            let sha = Sha::parse(sha)?;
            let tree = ReleaseTree::new(host.clone(), root);
            tree.export(repo, &sha, name).await?;
            crate::host::crash_point("release:exported");
            let mut lines = vec![format!(
                "{} holds {sha}",
                tree.place(&tree.release_dir(name))
            )];
            lines.extend(tree.link_shared(name, shared).await?);
            Ok(lines)
        }
        Work::SwitchRelease { root, name } => {
            let tree = ReleaseTree::new(host.clone(), root);
            let was = tree.current().await?;
            if replaced.release(root).is_none() {
                replaced.releases.push((root.clone(), was.clone()));
            }
            tree.switch(name).await?;
            let was = was.unwrap_or_else(|| "nothing".into());
            Ok(vec![format!("current was {was}; it is now {name}")])
        }
        Work::SwitchBack { root } => match replaced.release(root).cloned() {
            Some(Some(name)) => {
                ReleaseTree::new(host.clone(), root).switch(&name).await?;
                Ok(vec![format!("current is back at {name}")])
            }
            Some(None) => Ok(vec![
                "current pointed to no release before this job; it is left at the new one".into(),
            ]),
            None => Ok(vec![
                "this job did not switch current; nothing to switch back".into(),
            ]),
        },
        Work::Restart { units, sudo } => {
            Systemctl::on(host.clone(), *sudo)
                .restart(units, WAIT_ACTIVE)
                .await?;
            Ok(vec![format!("restarted {}", units.join(", "))])
        }
        Work::WaitActive { units } => {
            let systemctl = Systemctl::on(host.clone(), false);
            let mut lines = Vec::new();
            for unit in units {
                let status = systemctl.wait_active(unit, WAIT_ACTIVE).await?;
                let pid = status
                    .main_pid
                    .map(|p| format!(", main PID {p}"))
                    .unwrap_or_default();
                lines.push(format!("{unit} is {}{pid}", status.state()));
            }
            Ok(lines)
        }
        Work::Probe {
            url,
            expect,
            timeout,
        } => {
            crate::host::crash_point("probe:start");
            let health = Health {
                url: url.clone(),
                expect: expect.clone(),
                timeout: timeout.unwrap_or(WAIT_ACTIVE),
            };
            let healthy = probe::check(&health).await?;
            Ok(vec![format!(
                "{url} answered {} (after {} attempt{})",
                healthy.status,
                healthy.attempts,
                if healthy.attempts == 1 { "" } else { "s" }
            )])
        }
    }
}

/// The command a host step stands for, printed before it runs.
pub(super) fn command_line(work: &Work) -> String {
    match work {
        Work::Run { argv, .. } => quoted(argv),
        secret @ (Work::RotateSecret { .. }
        | Work::RestoreEnv { .. }
        | Work::SetWebhookSecret { .. }
        | Work::RestoreWebhookSecret { .. }) => super::secret_work::command_line(secret),
        Work::Checkout { repo, sha } => git_line(repo, &format!("checkout --detach {sha}")),
        Work::CheckoutPrevious { repo } => {
            git_line(repo, "checkout --detach <the commit this job replaced>")
        }
        Work::MakeRelease {
            repo,
            sha,
            root,
            name,
            ..
        } => format!(
            "{} && git archive {sha} | tar -x -C {}",
            cd(repo),
            quoted(&[release_tree::release_dir(root, name).display().to_string()])
        ),
        Work::SwitchRelease { root, name } => format!(
            "{} && ln -sfn {} current",
            cd(root),
            quoted(&[format!("releases/{name}")])
        ),
        Work::SwitchBack { root } => format!(
            "{} && ln -sfn releases/<the release this job replaced> current",
            cd(root)
        ),
        Work::CleanupReleases { keep } => {
            format!("sweep releases (keep {keep} good releases)")
        }
        Work::Restart { units, sudo } => {
            let sudo = if *sudo { "sudo -n " } else { "" };
            units
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
        Work::WaitActive { units } => format!(
            "systemctl show -p ActiveState,SubState,Result {} (until active)",
            quoted(units)
        ),
        Work::Sweep {
            sweep,
            dry_run: true,
            ..
        } => format!("sweep {sweep} --dry-run (list only)"),
        Work::Sweep {
            sweep, previewed, ..
        } => match previewed {
            Some(p) => format!(
                "sweep {sweep} (what dry run job {} listed, if still due)",
                p.job
            ),
            None => format!("sweep {sweep}"),
        },
        Work::Probe { url, expect, .. } => match expect {
            Some(text) => format!("GET {url} (expecting 2xx and {text:?})"),
            None => format!("GET {url} (expecting 2xx)"),
        },
    }
}

fn git_line(repo: &Path, args: &str) -> String {
    format!("{} && git {args}", cd(repo))
}

fn cd(dir: &Path) -> String {
    format!("cd {}", quoted(&[dir.display().to_string()]))
}
