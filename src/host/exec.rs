//! Running programs on this host: never through a shell, always in a process
//! group of their own so that a timeout or a cancel ends the whole tree
//! (a build's compiler, a script's `sleep`, …), not just the direct child.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::lines::{LineSplitter, Lines};
use super::run_as::RunAs;
use crate::{Error, Result};

/// How long a process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// What a short command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Exit code; `None` when a signal ended it.
    pub status: Option<i32>,
    pub stdout: String,
    /// stdout held bytes that are not UTF-8 (shown as U+FFFD in `stdout`):
    /// fine for a message, not for a file's content to be written back.
    pub stdout_lossy: bool,
    pub stderr: String,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Runs a short command (git, systemctl, …) to completion and returns its
/// output. The whole process group is killed if it outlives `timeout`.
pub async fn capture(
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Captured> {
    capture_fed(argv, cwd, env, None, timeout).await
}

/// Like [`capture`], with `input` written to the command's stdin: how a
/// secret or a file's content reaches a command without appearing in its
/// argv (which every user of the host can read in `ps`).
pub async fn capture_with_input(
    argv: &[String],
    input: Vec<u8>,
    timeout: Duration,
) -> Result<Captured> {
    capture_fed(argv, None, &BTreeMap::new(), Some(input), timeout).await
}

async fn capture_fed(
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, String>,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Captured> {
    let mut command = command(argv, cwd, env)?;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = spawn(&mut command, argv)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // Written alongside the reads: a command that prints before it has
        // read everything must not deadlock against a full pipe.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A command that exits without reading all of it reports that
            // through its exit status; the broken pipe here adds nothing.
            let _ = stdin.write_all(&input).await;
        });
    }
    let pgid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.map_err(|e| {
                Error::Unavailable(format!("waiting for `{}` failed: {e}", argv[0]))
            })?;
            let (stdout, stdout_lossy) = match String::from_utf8(output.stdout) {
                Ok(text) => (text, false),
                Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
            };
            Ok(Captured {
                status: output.status.code(),
                stdout,
                stdout_lossy,
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                signal_group(pgid, Signal::SIGKILL);
            }
            Err(Error::Unavailable(format!(
                "`{}` did not finish within {}s and was stopped",
                command_line(argv),
                timeout.as_secs_f32()
            )))
        }
    }
}

/// How a streamed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself: its exit code, or `None` when a signal ended it.
    Exited(Option<i32>),
    /// It outlived its timeout; its group was killed.
    TimedOut,
    /// `stop` fired; its group was killed.
    Stopped,
}

/// A job step's program, started with stdout and stderr merged into one
/// pipe so its lines keep the order the program wrote them in.
pub struct Streaming {
    child: Child,
    output: tokio::net::unix::pipe::Receiver,
    /// The process group id (= the child's pid).
    pub pgid: u32,
    /// The account the step runs as through `sudo`: its processes are
    /// signalled as that account too, since opsdeck may not signal them.
    run_as: Option<RunAs>,
}

/// Starts `argv` in a new process group with stdout and stderr merged.
/// `env` is the child's whole environment: job steps do not inherit
/// opsdeck's own (which may hold its secrets).
pub fn start(
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Streaming> {
    let mut command = command(argv, cwd, env)?;
    command.env_clear().envs(env);
    let (read, write) = output_pipe()?;
    let write2 = write
        .try_clone()
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot duplicate the output pipe: {e}")))?;
    command
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write2));
    let child = spawn(&mut command, argv)?;
    // The parent's copies of the write end are gone with `command`, so the
    // pipe reaches end-of-file once every process of the group has exited.
    drop(command);
    let output = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot read the output pipe: {e}")))?;
    let pgid = child.id().ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("`{}` exited before it started", argv[0]))
    })?;
    Ok(Streaming {
        child,
        output,
        pgid,
        run_as: None,
    })
}

impl Streaming {
    /// The step runs as `run_as` (through `sudo`): its group is then also
    /// signalled as that account when it is ended.
    pub fn as_user(mut self, run_as: Option<&RunAs>) -> Streaming {
        self.run_as = run_as.cloned();
        self
    }

    /// Sends the output in batches of whole lines to `lines` until the
    /// program ends, `timeout` passes or `stop` completes. The group is
    /// killed in the last two cases, and also when the program exits but
    /// left processes behind: a step ends when its command ends, and
    /// leftovers would race the next step.
    pub async fn finish(
        mut self,
        lines: &mpsc::Sender<Lines>,
        timeout: Duration,
        stop: impl Future<Output = ()>,
    ) -> Ended {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 256 * 1024];
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline, stop);
        let mut eof = false;
        let ended = loop {
            tokio::select! {
                read = self.output.read(&mut buf), if !eof => match read {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => send(lines, splitter.push(&buf[..n])).await,
                },
                status = self.child.wait() => break Ended::Exited(status.ok().and_then(|s| s.code())),
                _ = &mut deadline => break Ended::TimedOut,
                _ = &mut stop => break Ended::Stopped,
            }
        };
        // Whatever is still in the group is ended, gently first; the pipe
        // is then drained to its end so no line is lost.
        terminate_group(self.pgid, self.run_as.as_ref(), &mut self.child).await;
        if !eof {
            self.drain(lines, &mut splitter, &mut buf).await;
        }
        send(lines, splitter.finish()).await;
        ended
    }

    async fn drain(
        &mut self,
        lines: &mpsc::Sender<Lines>,
        splitter: &mut LineSplitter,
        buf: &mut [u8],
    ) {
        // A process that escaped the group (setsid) may still hold the pipe:
        // give up after the grace period rather than hang the job.
        let _ = tokio::time::timeout(KILL_GRACE, async {
            while let Ok(n) = self.output.read(buf).await {
                if n == 0 {
                    break;
                }
                send(lines, splitter.push(&buf[..n])).await;
            }
        })
        .await;
    }
}

async fn send(lines: &mpsc::Sender<Lines>, batch: Lines) {
    if !batch.is_empty() {
        // A closed receiver means nobody records the output any more; the
        // program is still run to its end.
        let _ = lines.send(batch).await;
    }
}

/// SIGTERM to the group, then SIGKILL to whatever is left after
/// [`KILL_GRACE`]. Also reaps the direct child.
async fn terminate_group(pgid: u32, run_as: Option<&RunAs>, child: &mut Child) {
    if !group_alive(pgid) {
        let _ = child.wait().await;
        return;
    }
    let signal = |signal| {
        signal_group(pgid, signal);
        if let Some(run_as) = run_as {
            run_as.signal_group(pgid, signal);
        }
    };
    signal(Signal::SIGTERM);
    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
    let grace = tokio::time::Instant::now() + KILL_GRACE;
    while group_alive(pgid) && tokio::time::Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(Signal::SIGKILL);
    let _ = child.wait().await;
}

/// Whether any process is still in group `pgid` (signal 0 probes; one
/// opsdeck may not signal, another user's, is there all the same).
fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid).is_ok_and(|p| {
        !matches!(
            nix::sys::signal::killpg(Pid::from_raw(p), None),
            Err(nix::errno::Errno::ESRCH)
        )
    })
}

/// Sends `signal` to process group `pgid`; a group already gone is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// The environment variable that tags every process of a job step.
pub const JOB_TAG: &str = "OPSDECK_JOB";

/// What a job step inherits from opsdeck's own environment: enough for
/// programs to find their tools, home and locale, and nothing else, since
/// opsdeck's environment may carry its own secrets.
const INHERITED: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// A job step's environment: the inherited basics, then `env` on top.
pub fn job_env(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = INHERITED
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    all.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}

/// SIGKILLs every process whose environment has `tag` set to a value
/// starting with `prefix` (the leftovers of jobs a crashed run left
/// behind); returns how many. Repeats until none is found, since a
/// process may fork while the others are being killed.
pub fn kill_tagged(tag: &str, prefix: &str) -> usize {
    let needle = format!("{tag}={prefix}");
    let me = std::process::id();
    let mut killed = 0;
    for _ in 0..10 {
        let found: Vec<i32> = tagged_pids(&needle)
            .into_iter()
            .filter(|&p| p as u32 != me)
            .collect();
        if found.is_empty() {
            break;
        }
        for pid in found {
            if nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    killed
}

/// Live (non-zombie) processes whose environment holds an entry starting
/// with `needle`. Processes of other users are unreadable and skipped.
fn tagged_pids(needle: &str) -> Vec<i32> {
    pids()
        .filter_map(|pid| i32::try_from(pid).ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|&b| b == 0)
                    .any(|var| var.starts_with(needle.as_bytes()))
            })
        })
        .collect()
}

/// Process `pid`'s group and when it started (clock ticks since boot),
/// from `/proc/<pid>/stat`; `None` once it is gone.
pub fn group_and_start(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces or parentheses itself: state is field 3, pgrp 5,
    // starttime 22.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// This boot's id: a process start time means nothing across a reboot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

/// The pids of this machine's processes, from `/proc` (none if it cannot
/// be read).
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

/// The command line as a user would type it, for job output and the job page.
pub fn command_line(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// `arg` as one word of a POSIX shell command line.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

fn command(argv: &[String], cwd: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Command> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::BadRequest("a command needs at least a program name".into()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    Ok(command)
}

fn spawn(command: &mut Command, argv: &[String]) -> Result<Child> {
    command.spawn().map_err(|e| {
        let cwd = command.as_std().get_current_dir();
        match e.kind() {
            std::io::ErrorKind::NotFound if cwd.is_some_and(|d| !d.is_dir()) => {
                Error::Unavailable(format!(
                    "cannot run `{}`: its working directory {} does not exist",
                    argv[0],
                    cwd.map(|d| d.display().to_string()).unwrap_or_default()
                ))
            }
            std::io::ErrorKind::NotFound => {
                Error::Unavailable(format!("cannot run `{}`: no such program", argv[0]))
            }
            _ => Error::Unavailable(format!("cannot run `{}`: {e}", argv[0])),
        }
    })
}

/// A pipe whose ends are not inherited by other children started meanwhile
/// (they would hold it open and the job would never see end-of-file).
/// Also a large one (1 MiB where allowed): a chatty build then rarely
/// waits for opsdeck to read its output.
fn output_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Internal(anyhow::anyhow!("cannot create a pipe: {e}")))?;
    let _ = nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&read),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20),
    );
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_a_shell_would_split() {
        let argv = [
            "echo".to_string(),
            "a b".to_string(),
            "it's".to_string(),
            "x=1".to_string(),
        ];
        assert_eq!(command_line(&argv), "echo 'a b' 'it'\\''s' x=1");
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let env = BTreeMap::from([("GREETING".to_string(), "hi".to_string())]);
        let out = capture(
            &argv(&["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"]),
            None,
            &env,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            Captured {
                status: Some(3),
                stdout: "hi\n".into(),
                stdout_lossy: false,
                stderr: "oops\n".into()
            }
        );
    }

    #[test]
    fn reads_a_process_group_and_start() {
        let (pgid, started) = group_and_start(std::process::id()).unwrap();
        assert_eq!(pgid, nix::unistd::getpgrp().as_raw() as u32);
        assert!(started > 0);
        assert_eq!(group_and_start(u32::MAX), None);
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let err = capture(
            &argv(&["no-such-program-x"]),
            None,
            &BTreeMap::new(),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot run `no-such-program-x`: no such program"
        );
    }

    #[tokio::test]
    async fn a_timeout_stops_the_command() {
        let err = capture(
            &argv(&["sleep", "30"]),
            None,
            &BTreeMap::new(),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("did not finish within"), "{err}");
    }
}
