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

/// Like [`capture_with_input`], for a job step's short command: `env` is
/// its whole environment (see [`job_env`]), as for streamed steps.
pub async fn capture_step(
    argv: &[String],
    env: &BTreeMap<String, String>,
    input: Vec<u8>,
    timeout: Duration,
) -> Result<Captured> {
    let mut command = command(argv, None, env)?;
    command.env_clear().envs(env);
    run_captured(command, argv, Some(input), timeout).await
}

async fn capture_fed(
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, String>,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Captured> {
    run_captured(command(argv, cwd, env)?, argv, input, timeout).await
}

async fn run_captured(
    mut command: Command,
    argv: &[String],
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Captured> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = spawn(&mut command, argv)?;
    if let Some(input) = input {
        feed(&mut child, input);
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

/// Writes `input` to the child's stdin (piped), then closes it. Written
/// alongside the reads: a command that prints before it has read
/// everything must not deadlock against a full pipe.
fn feed(child: &mut Child, input: Vec<u8>) {
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A command that exits without reading all of it reports that
            // through its exit status; the broken pipe here adds nothing.
            let _ = stdin.write_all(&input).await;
        });
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

/// Where a job step's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// A pipe of its own: its lines are marked as stderr, interleaved with
    /// stdout's as they arrive, each stream keeping its own order.
    Own,
    /// The stdout pipe: for `ssh -tt`, whose far side already merges the
    /// two streams in its terminal, so there is nothing left to tell apart.
    Merged,
}

/// A job step's program, started with stdout and stderr read as two pipes
/// (or one, see [`Stderr`]).
pub struct Streaming {
    child: Child,
    output: tokio::net::unix::pipe::Receiver,
    errors: Option<tokio::net::unix::pipe::Receiver>,
    /// The process group id (= the child's pid).
    pub pgid: u32,
    /// The account the step runs as through `sudo`: its processes are
    /// signalled as that account too, since opsdeck may not signal them.
    run_as: Option<RunAs>,
}

/// Starts `argv` in a new process group, its stderr as `stderr` says.
/// `env` is the child's whole environment: job steps do not inherit
/// opsdeck's own (which may hold its secrets). `input`, if any, is
/// written to its stdin (else it reads nothing).
pub fn start(
    argv: &[String],
    cwd: Option<&Path>,
    env: &BTreeMap<String, String>,
    stderr: Stderr,
    input: Option<Vec<u8>>,
) -> Result<Streaming> {
    let mut command = command(argv, cwd, env)?;
    command.env_clear().envs(env);
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let (read, write) = output_pipe()?;
    let (errors, error_write) = match stderr {
        Stderr::Own => {
            let (read, write) = output_pipe()?;
            (Some(read), write)
        }
        Stderr::Merged => (
            None,
            write.try_clone().map_err(|e| {
                Error::Internal(anyhow::anyhow!("cannot duplicate the output pipe: {e}"))
            })?,
        ),
    };
    command
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(error_write));
    let mut child = spawn(&mut command, argv)?;
    if let Some(input) = input {
        feed(&mut child, input);
    }
    // The parent's copies of the write ends are gone with `command`, so the
    // pipes reach end-of-file once every process of the group has exited.
    drop(command);
    let receiver = |fd| {
        tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot read the output pipe: {e}")))
    };
    let output = receiver(read)?;
    let errors = errors.map(receiver).transpose()?;
    let pgid = child.id().ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("`{}` exited before it started", argv[0]))
    })?;
    Ok(Streaming {
        child,
        output,
        errors,
        pgid,
        run_as: None,
    })
}

/// One output pipe as it is read: its own line splitter (a line is never
/// spliced from two streams), and whether stderr's lines are marked.
struct Pipe {
    reader: tokio::net::unix::pipe::Receiver,
    buf: Vec<u8>,
    splitter: LineSplitter,
    stderr: bool,
    eof: bool,
}

impl Pipe {
    fn new(reader: tokio::net::unix::pipe::Receiver, stderr: bool) -> Pipe {
        Pipe {
            reader,
            buf: vec![0u8; if stderr { 64 * 1024 } else { 256 * 1024 }],
            splitter: LineSplitter::default(),
            stderr,
            eof: false,
        }
    }

    /// Reads once: the whole lines that completes, marked. Cancel-safe
    /// (no byte is taken from the pipe unless its lines are returned), so
    /// it can race the other pipe and the child's exit.
    async fn read(&mut self) -> Lines {
        let n = match self.reader.read(&mut self.buf).await {
            Ok(0) | Err(_) => {
                self.eof = true;
                return Lines::default();
            }
            Ok(n) => n,
        };
        let batch = self.splitter.push(&self.buf[..n]);
        self.marked(batch)
    }

    /// The last line, if the stream did not end with a newline.
    fn finish(&mut self) -> Lines {
        let rest = self.splitter.finish();
        self.marked(rest)
    }

    fn marked(&self, mut batch: Lines) -> Lines {
        if self.stderr {
            batch.mark_stderr();
        }
        batch
    }
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
        let mut out = Pipe::new(self.output, false);
        let mut err = self.errors.map(|errors| Pipe::new(errors, true));
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline, stop);
        let ended = loop {
            tokio::select! {
                batch = read_either(&mut out, &mut err), if open(&out, &err) => send(lines, batch).await,
                status = self.child.wait() => break Ended::Exited(status.ok().and_then(|s| s.code())),
                _ = &mut deadline => break Ended::TimedOut,
                _ = &mut stop => break Ended::Stopped,
            }
        };
        // Whatever is still in the group is ended, gently first; the pipes
        // are then drained to their end so no line is lost. A process that
        // escaped the group (setsid) may still hold one: give up after the
        // grace period rather than hang the job.
        terminate_group(self.pgid, self.run_as.as_ref(), &mut self.child).await;
        let _ = tokio::time::timeout(KILL_GRACE, async {
            while open(&out, &err) {
                send(lines, read_either(&mut out, &mut err).await).await;
            }
        })
        .await;
        send(lines, out.finish()).await;
        if let Some(err) = err.as_mut() {
            send(lines, err.finish()).await;
        }
        ended
    }
}

/// Whether either pipe may still give output.
fn open(out: &Pipe, err: &Option<Pipe>) -> bool {
    !out.eof || err.as_ref().is_some_and(|e| !e.eof)
}

/// One read from whichever open pipe has output first: lines are sent in
/// the order they arrive.
async fn read_either(out: &mut Pipe, err: &mut Option<Pipe>) -> Lines {
    match err.as_mut().filter(|e| !e.eof) {
        Some(err) if !out.eof => {
            // Output both pipes hold at once has no order between them;
            // stdout goes first.
            tokio::select! {
                biased;
                batch = out.read() => batch,
                batch = err.read() => batch,
            }
        }
        Some(err) => err.read().await,
        None => out.read().await,
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

    /// Every line with whether it was marked as stderr.
    async fn streamed(words: &[&str], stderr: Stderr) -> Vec<(String, bool)> {
        let child = start(&argv(words), None, &BTreeMap::new(), stderr, None).unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        let ended = child
            .finish(&tx, Duration::from_secs(10), std::future::pending())
            .await;
        assert_eq!(ended, Ended::Exited(Some(0)));
        drop(tx);
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            for (index, line) in batch.iter().enumerate() {
                let marked = super::super::lines::in_ranges(batch.stderr(), index);
                all.push((line.to_owned(), marked));
            }
        }
        all
    }

    #[tokio::test]
    async fn stderr_is_read_apart_and_marked_each_stream_in_its_order() {
        let script = "for i in 1 2 3; do echo o$i; echo e$i >&2; done; printf tail >&2";
        let lines = streamed(&["sh", "-c", script], Stderr::Own).await;
        let of = |marked: bool| -> Vec<&str> {
            lines
                .iter()
                .filter(|l| l.1 == marked)
                .map(|l| l.0.as_str())
                .collect()
        };
        assert_eq!(of(false), ["o1", "o2", "o3"]);
        assert_eq!(of(true), ["e1", "e2", "e3", "tail"]);
        let merged = streamed(&["sh", "-c", script], Stderr::Merged).await;
        assert_eq!(merged.len(), 7);
        assert!(merged.iter().all(|l| !l.1), "{merged:?}");
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
