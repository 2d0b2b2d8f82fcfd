//! Apps on other hosts (`host = "ssh://user@host:port"` or a
//! `[hosts.<name>]` table): commands reach them through the system `ssh`
//! client — the tool operators already trust, no agent to install.
//!
//! - Batch mode: never a password or passphrase prompt; a missing key fails.
//! - Strict host key checking against the configured `known_hosts` (or the
//!   user's): an unknown or changed host key is refused, never learned.
//! - Connection reuse (ControlMaster): a deploy's ten steps share one
//!   connection instead of paying a handshake each. Sockets live in
//!   `<data_dir>/ssh`, private to opsdeck's user.
//! - `ssh` hands the remote side one string for the login shell to parse, so
//!   every word is quoted for a POSIX shell ([`remote_line`]): no ref,
//!   path, file name or value can be read there as shell syntax.
//! - File contents (env files, secrets) travel on stdin, never in argv.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{Config, HostAddress, SshTarget};
use crate::host::exec::{Captured, capture_with_input, command_line, quote};
use crate::host::run_as::RunAs;
use crate::{Error, Result};

/// The exit code of a [`Remote::script`]'s one known refusal (a release
/// that exists, a shared entry missing…), which its caller explains.
pub const REFUSED: i32 = 3;

/// `path` as a script's positional parameter.
pub fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// How long an idle shared connection stays open.
const PERSIST: &str = "120";
/// How long connecting may take before the step fails.
const CONNECT_TIMEOUT: &str = "10";

/// A shell opsdeck works through: on another host over SSH (as the login
/// account, or as the app's `user` through `sudo` there), or on this
/// machine as the app's `user` through `sudo`. Either way commands reach
/// it as one quoted line ([`remote_line`]) and files are worked on by the
/// same small scripts, so an app's own user is served by the code that
/// serves remote hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    via: Via,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Via {
    Ssh { ssh: Ssh, run_as: Option<RunAs> },
    Here(RunAs),
}

/// A host reached over SSH, with every option opsdeck insists on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ssh {
    target: SshTarget,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    /// The jump host, already resolved (with its own key and known_hosts).
    jump: Option<Box<Ssh>>,
    /// Where ControlMaster sockets live.
    control_dir: PathBuf,
    /// Share one connection between commands (ControlMaster).
    reuse: bool,
}

impl Remote {
    /// How `host` (an app's `host` value) is reached: `None` for this
    /// machine. Errors name what in the config is wrong.
    pub fn resolve(config: &Config, host: &str) -> Result<Option<Remote>> {
        let control_dir = config.server.data_dir.join("ssh");
        let address: HostAddress = host.parse().map_err(Error::BadRequest)?;
        let ssh = match address {
            HostAddress::Local => return Ok(None),
            HostAddress::Ssh(target) => Ssh {
                target,
                identity: None,
                known_hosts: None,
                jump: None,
                control_dir,
                reuse: true,
            },
            HostAddress::Named(name) => named(config, &name, control_dir, 0)?,
        };
        Ok(Some(Remote {
            via: Via::Ssh { ssh, run_as: None },
        }))
    }

    /// This machine, as another account.
    pub fn here(run_as: RunAs) -> Remote {
        Remote {
            via: Via::Here(run_as),
        }
    }

    /// The same host, commands run there as `run_as` (through `sudo`).
    pub fn run_as(self, run_as: Option<RunAs>) -> Remote {
        match self.via {
            Via::Ssh { ssh, .. } => Remote {
                via: Via::Ssh { ssh, run_as },
            },
            Via::Here(_) => self,
        }
    }

    /// The account commands run as on this machine through `sudo`, when
    /// that is how this shell is reached: opsdeck signals their processes
    /// through it too (see [`super::exec::Streaming::as_user`]).
    pub fn local_user(&self) -> Option<&RunAs> {
        match &self.via {
            Via::Here(run_as) => Some(run_as),
            Via::Ssh { .. } => None,
        }
    }

    /// The account commands run as through `sudo`, if not the login's.
    fn account(&self) -> Option<&RunAs> {
        match &self.via {
            Via::Here(run_as)
            | Via::Ssh {
                run_as: Some(run_as),
                ..
            } => Some(run_as),
            Via::Ssh { run_as: None, .. } => None,
        }
    }

    /// A new connection per command: for an sshd that forbids sessions
    /// sharing a connection, and to measure what sharing saves.
    pub fn without_connection_reuse(mut self) -> Remote {
        if let Via::Ssh { ssh, .. } = &mut self.via {
            ssh.reuse = false;
        }
        self
    }

    /// `user@host:port`, as pages and messages name the host; with the
    /// account steps run as first when it is not the login's.
    pub fn name(&self) -> String {
        match &self.via {
            Via::Ssh { ssh, run_as: None } => ssh.name(),
            Via::Ssh {
                ssh,
                run_as: Some(run_as),
            } => format!("{} on {}", run_as.user, ssh.name()),
            Via::Here(run_as) => format!("{} on this host", run_as.user),
        }
    }

    /// The local command line that runs `argv` on the host, in `cwd`, with
    /// `env` added to the remote login environment.
    pub fn command(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        self.local_command(false, argv, cwd, env)
    }

    /// Like [`Remote::command`], for a job step: with a terminal on the
    /// remote side, so that when opsdeck stops the local `ssh` (a cancel, a
    /// timeout, a restart's cleanup) the host hangs the step's processes up
    /// instead of leaving them running. Output then has `\r\n` line ends,
    /// which the line splitter drops.
    pub fn step_command(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        self.local_command(true, argv, cwd, env)
    }

    /// Like [`Remote::step_command`], with `secret` variables (an env
    /// file's) added as well: they travel on the step's stdin, one
    /// `KEY=value` a line, exported by the line before it runs the
    /// program — never in a command line, which every user can read in
    /// `ps`. Returns the command and what to write to its stdin. On this
    /// machine only: over SSH the step's stdin is a terminal, which would
    /// echo them into the output.
    pub fn step_command_with_secrets(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
        env: &BTreeMap<String, String>,
        secret: &BTreeMap<String, String>,
    ) -> Result<(Vec<String>, Vec<u8>)> {
        let Via::Here(run_as) = &self.via else {
            return Err(Error::Unavailable(format!(
                "the app's env file is loaded into steps on this machine only, and this one runs on {}",
                self.name()
            )));
        };
        let line = format!(
            "while IFS= read -r kv; do export \"$kv\"; done; {}",
            remote_line(argv, cwd, env)
        );
        let input = secret
            .iter()
            .map(|(key, value)| format!("{key}={value}\n"))
            .collect::<String>();
        Ok((run_as.shell(line), input.into_bytes()))
    }

    /// `ssh … LINE`, `ssh … 'sudo -n -u USER -- sh -c LINE'` or, here,
    /// `sudo -n -u USER -- sh -c LINE`.
    fn local_command(
        &self,
        tty: bool,
        argv: &[String],
        cwd: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        let line = remote_line(argv, cwd, env);
        match &self.via {
            Via::Here(run_as) => Ok(run_as.shell(line)),
            Via::Ssh { ssh, run_as } => {
                let mut all = ssh.ssh(tty)?;
                all.push(match run_as {
                    Some(run_as) => command_line(&run_as.shell(line)),
                    None => line,
                });
                Ok(all)
            }
        }
    }

    /// Runs `argv` on the host and returns what it printed. A connection
    /// that cannot be made (key, host key, network) is an error naming the
    /// host and ssh's own reason.
    pub async fn capture(&self, argv: &[String], timeout: Duration) -> Result<Captured> {
        self.capture_in(argv, None, &BTreeMap::new(), timeout).await
    }

    /// Like [`Remote::capture`], in `cwd` with `env` added to the remote
    /// login environment.
    pub async fn capture_in(
        &self,
        argv: &[String],
        cwd: Option<&Path>,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Captured> {
        let local = self.command(argv, cwd, env)?;
        self.finish(argv, capture_with_input(&local, Vec::new(), timeout).await?)
    }

    /// Runs `argv` on the host with `env` added to the remote login
    /// environment and `input` on its stdin; what it printed.
    pub async fn capture_fed(
        &self,
        argv: &[String],
        env: &BTreeMap<String, String>,
        input: Vec<u8>,
        timeout: Duration,
    ) -> Result<Captured> {
        let local = self.command(argv, None, env)?;
        self.finish(argv, capture_with_input(&local, input, timeout).await?)
    }

    /// Runs `sh -c body sh args…` on the host with `input` on stdin: how
    /// opsdeck works on files there (`what` to `place`, as an error names
    /// it). Paths and names reach the script as positional parameters,
    /// never as shell syntax; messages are in English (`LC_ALL=C`) whatever
    /// the login's locale. Exit 0 and [`REFUSED`] return what it printed.
    pub async fn script(
        &self,
        (what, place): (&str, &Path),
        body: &str,
        args: &[String],
        input: Vec<u8>,
        timeout: Duration,
    ) -> Result<Captured> {
        let mut argv: Vec<String> = ["sh", "-c", body, "sh"].map(str::to_owned).to_vec();
        argv.extend(args.iter().cloned());
        let env = BTreeMap::from([("LC_ALL".to_owned(), "C".to_owned())]);
        let local = self.command(&argv, None, &env)?;
        let out = self.finish(&argv, capture_with_input(&local, input, timeout).await?)?;
        if out.success() || out.status == Some(REFUSED) {
            return Ok(out);
        }
        Err(Error::Unavailable(format!(
            "cannot {what} {} on {}: {}",
            place.display(),
            self.name(),
            out.stderr.trim()
        )))
    }

    /// What `argv` printed, or the reason ssh itself failed.
    fn finish(&self, argv: &[String], out: Captured) -> Result<Captured> {
        let refusal = self.account().and_then(|_| RunAs::refusal(&out.stderr));
        if let Some(refusal) = refusal {
            return Err(Error::Unavailable(format!(
                "cannot run `{}` as another user on {}: {refusal}",
                shown(argv),
                self.name()
            )));
        }
        // ssh's own failures exit 255 (a remote command rarely does).
        let ssh = matches!(self.via, Via::Ssh { .. });
        if ssh && out.status == Some(255) {
            return Err(Error::Unavailable(format!(
                "cannot run `{}` on {}: {}",
                shown(argv),
                self.name(),
                explain(&out.stderr)
            )));
        }
        Ok(out)
    }
}

/// `argv` as a message shows it: a script's text says nothing about a
/// connection or a `sudo` that failed.
fn shown(argv: &[String]) -> String {
    match argv {
        [sh, c, ..] if sh == "sh" && c == "-c" => "sh -c …".to_owned(),
        _ => command_line(argv),
    }
}

impl Ssh {
    fn name(&self) -> String {
        format!(
            "{}@{}:{}",
            self.target.user, self.target.host, self.target.port
        )
    }

    /// `ssh` with opsdeck's options, up to the destination (making the
    /// shared connections' directory first).
    fn ssh(&self, tty: bool) -> Result<Vec<String>> {
        if self.reuse {
            private_dir(&self.control_dir)?;
        }
        let mut argv = vec!["ssh".to_owned()];
        argv.extend(self.options());
        if self.reuse {
            // One socket per host *and* way of checking it: ssh's own %C
            // names only the address, so two entries for one address with
            // different known_hosts files would share a connection that
            // only one of them verified.
            let mut key = self.options();
            key.push(self.target.host.clone());
            let key = Sha256::digest(key.join("\0").as_bytes());
            argv.extend([
                "-o".to_owned(),
                format!(
                    "ControlPath={}/{}",
                    self.control_dir.display(),
                    hex::encode(&key[..10])
                ),
                "-o".to_owned(),
                "ControlMaster=auto".to_owned(),
                "-o".to_owned(),
                format!("ControlPersist={PERSIST}"),
            ]);
        }
        let tty = if tty { "-tt" } else { "-T" };
        argv.extend([tty.to_owned(), "--".to_owned(), self.target.host.clone()]);
        Ok(argv)
    }

    /// The options that decide whom ssh talks to and how it checks them:
    /// shared by the connection and the jump host's `ProxyCommand`.
    fn options(&self) -> Vec<String> {
        let o = |key: &str, value: String| ["-o".to_owned(), format!("{key}={value}")];
        let mut argv: Vec<String> = Vec::new();
        argv.extend(o("BatchMode", "yes".into()));
        argv.extend(o("StrictHostKeyChecking", "yes".into()));
        argv.extend(o("ConnectTimeout", CONNECT_TIMEOUT.into()));
        argv.extend(o("ServerAliveInterval", "10".into()));
        argv.extend(o("ServerAliveCountMax", "3".into()));
        argv.extend(o("LogLevel", "ERROR".into()));
        argv.extend(o("User", self.target.user.clone()));
        argv.extend(o("Port", self.target.port.to_string()));
        if let Some(file) = &self.known_hosts {
            argv.extend(o("UserKnownHostsFile", file.display().to_string()));
            argv.extend(o("GlobalKnownHostsFile", "/dev/null".into()));
        }
        if let Some(key) = &self.identity {
            argv.extend(o("IdentityFile", key.display().to_string()));
            argv.extend(o("IdentitiesOnly", "yes".into()));
        }
        if let Some(jump) = &self.jump {
            // ProxyCommand rather than -J: -J would not pass these options
            // (strict checking, the jump's own known_hosts and key) on.
            let mut proxy = vec!["ssh".to_owned()];
            proxy.extend(jump.options());
            proxy.extend([
                "-W".into(),
                "[%h]:%p".into(),
                "--".into(),
                jump.target.host.clone(),
            ]);
            argv.extend(o("ProxyCommand", command_line(&proxy)));
        }
        argv
    }
}

/// The directory of the shared connections' sockets: whoever can reach a
/// socket can run commands on the host as opsdeck, so only opsdeck may.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let made = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    let private =
        made.and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)));
    private.map_err(|e| Error::Unavailable(format!("cannot make {}: {e}", dir.display())))
}

/// Resolves `[hosts.<name>]`, following jump hosts (at most a few deep, so a
/// loop in the config cannot recurse forever).
fn named(config: &Config, name: &str, control_dir: PathBuf, depth: usize) -> Result<Ssh> {
    let host = config.hosts.get(name).ok_or_else(|| {
        Error::BadRequest(format!("there is no [hosts.{name}] table in the config"))
    })?;
    let target: SshTarget = host
        .address
        .parse()
        .map_err(|e| Error::BadRequest(format!("hosts.{name}.address: {e}")))?;
    let jump = match &host.jump {
        None => None,
        Some(_) if depth >= 4 => {
            return Err(Error::BadRequest(format!(
                "hosts.{name}.jump: jump hosts nest more than 4 deep (a loop?)"
            )));
        }
        Some(jump) if config.hosts.contains_key(jump) => Some(Box::new(named(
            config,
            jump,
            control_dir.clone(),
            depth + 1,
        )?)),
        Some(jump) => Some(Box::new(Ssh {
            target: jump
                .parse()
                .map_err(|e| Error::BadRequest(format!("hosts.{name}.jump: {e}")))?,
            identity: host.identity_file.clone(),
            known_hosts: host.known_hosts.clone(),
            jump: None,
            control_dir: control_dir.clone(),
            reuse: true,
        })),
    };
    Ok(Ssh {
        target,
        identity: host.identity_file.clone(),
        known_hosts: host.known_hosts.clone(),
        jump,
        control_dir,
        reuse: true,
    })
}

/// The one string the remote login shell runs, every word quoted:
/// `cd 'dir' && exec env -- 'K=V' 'program' 'arg' …` (`--`: a program
/// named like an option is still a program).
pub fn remote_line(argv: &[String], cwd: Option<&Path>, env: &BTreeMap<String, String>) -> String {
    let mut words: Vec<String> = vec!["env".to_owned(), "--".to_owned()];
    words.extend(env.iter().map(|(key, value)| format!("{key}={value}")));
    words.extend(argv.iter().cloned());
    let line = format!("exec {}", command_line(&words));
    match cwd {
        Some(cwd) => format!("cd {} && {line}", quote(&cwd.display().to_string())),
        None => line,
    }
}

/// ssh's reason, with the fix for the common ones.
fn explain(stderr: &str) -> String {
    let said = stderr.trim();
    let hint = if said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        "the host's key is not the one in known_hosts: if the host was reinstalled, replace its line in known_hosts (ssh-keyscan, then compare the fingerprint out of band)"
    } else if said.contains("Host key verification failed") {
        "the host's key is not in known_hosts: add it (ssh-keyscan -p PORT HOST >> known_hosts, after checking its fingerprint)"
    } else if said.contains("Permission denied") {
        "the host refused opsdeck's key: add its public key to the remote user's authorized_keys, or set identity_file"
    } else if said.contains("Connection refused") || said.contains("timed out") {
        "nothing answers there: is sshd running, and is the port right?"
    } else {
        ""
    };
    match hint {
        "" => said.to_owned(),
        hint => format!("{said} ({hint})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_lines_quote_every_word() {
        let argv = vec![
            "git".to_owned(),
            "checkout".to_owned(),
            "main;id".to_owned(),
        ];
        let env = BTreeMap::from([("GREETING".to_owned(), "a b'c".to_owned())]);
        assert_eq!(
            remote_line(&argv, Some(Path::new("/srv/my app")), &env),
            "cd '/srv/my app' && exec env -- 'GREETING=a b'\\''c' git checkout 'main;id'"
        );
        assert_eq!(
            remote_line(&["-x".to_owned()], None, &BTreeMap::new()),
            "exec env -- -x"
        );
    }
}
