//! A real systemd + journald for tests, booted as PID 1 of private PID, mount,
//! UTS, IPC and cgroup namespaces (DESIGN.md "Tests";
//! notes/testing-with-real-components.md).
//!
//! The namespace shares the host's filesystem and network, so the boot is
//! fenced in before systemd runs: its own `/run`, `/dev` (a handful of
//! harmless character devices, no kmsg, no disks), `/var/lib/systemd` and
//! cgroup2 tree; `/sys`, `/proc/sys` and `/etc` read-only; every boot unit that
//! touches host state masked (in `/run/systemd/system.control`, which outranks
//! `/etc/systemd/system`); no generators; `container=` set so systemd itself
//! skips hardware setup; journald volatile. `tests/sandbox.rs` proves the
//! host's mounts, links, `/dev`, `/tmp` and sysctls are unchanged afterwards.
//!
//! Use (with `mod support;`): `let Some(sandbox) = Sandbox::boot() else { return };` (None = skipped
//! because root or systemd is missing; under `CI=true` that is a failure).
//! Dropping the sandbox tears it down.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod boot;

use boot::{BOOT_SCRIPT, JOURNALD, MASKED, TARGET};

const SYSTEMD: &str = "/lib/systemd/systemd";

/// How long a boot may take before the test fails (measured: ~0.2 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// A booted systemd. Dropping it kills its PID 1, which ends everything inside.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// `unshare`, our direct child; its child is systemd.
    launcher: Option<Child>,
    systemd: u32,
    cgroup: PathBuf,
}

impl Sandbox {
    /// Boots a sandbox and waits until systemd reports `running` (or
    /// `degraded`). `None` when root or systemd is missing outside CI.
    pub fn boot() -> Option<Sandbox> {
        if !prerequisites() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("opsdeck-sandbox-")
            .tempdir()
            .unwrap();
        let boot = dir.path().join("boot");
        fs::create_dir(&boot).unwrap();
        fs::write(boot.join("sandbox.target"), TARGET).unwrap();
        fs::write(boot.join("journald.conf"), JOURNALD).unwrap();
        fs::write(boot.join("masked"), MASKED.join("\n") + "\n").unwrap();
        fs::write(boot.join("boot.sh"), BOOT_SCRIPT).unwrap();

        let cgroup = cgroup2_root().join(format!(
            "opsdeck-sandbox-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        ));
        fs::create_dir(&cgroup).unwrap();
        let launcher = Command::new("sh")
            .arg("-c")
            .arg(concat!(
                r#"echo $$ > "$1/cgroup.procs" && exec unshare --pid --fork --mount "#,
                r#"--mount-proc --propagation private --uts --ipc --cgroup -- "#,
                r#"sh "$2/boot/boot.sh" "$2""#
            ))
            .arg("sh")
            .arg(&cgroup)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(boot.join("boot.log")).unwrap())
            .stderr(fs::File::create(boot.join("boot.err")).unwrap())
            .spawn()
            .unwrap();
        let launcher_pid = launcher.id();
        let mut sandbox = Sandbox {
            dir,
            launcher: Some(launcher),
            systemd: 0,
            cgroup,
        };
        sandbox.systemd = sandbox.wait_for_child_of(launcher_pid);
        sandbox.wait_running();
        Some(sandbox)
    }

    /// The PID (in the host's namespace) of the sandbox's systemd.
    pub fn pid(&self) -> u32 {
        self.systemd
    }

    /// The sandbox's cgroup in the host's cgroup2 tree; removed at teardown.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// A scratch directory of this sandbox's own, visible inside at the same
    /// path (the sandbox shares the host's filesystem outside /run and /dev).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that runs `program` inside the sandbox, where `systemctl`
    /// and `journalctl` see its systemd and journal.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.systemd.to_string())
            .args(["-m", "-p", "--"])
            .arg(program);
        command
    }

    /// Runs `argv` inside the sandbox and returns what it printed.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.command(argv[0]).args(&argv[1..]).output().unwrap()
    }

    /// Runs `argv` inside and returns its stdout, failing the test when it fails.
    pub fn run_ok(&self, argv: &[&str]) -> String {
        let output = self.run(argv);
        assert!(
            output.status.success(),
            "{argv:?} failed in the sandbox: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `systemctl <args>` inside; stdout.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        String::from_utf8_lossy(&self.run(&argv).stdout).into_owned()
    }

    /// Runs test `name` of this test binary again, inside the sandbox: there
    /// `systemctl` and `journalctl` reach the sandbox's systemd, so opsdeck
    /// code runs as it does on a host. The test is `#[ignore]`d (it runs
    /// only when asked) and starts with `let Some(dir) = sandbox::inside()
    /// else { return };`. Fails unless exactly that test ran and passed.
    pub fn run_test_inside(&self, name: &str) {
        let output = self.run_self_inside(&[
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]);
        // stderr went straight through; stdout holds the verdict.
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{stdout}");
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{name} failed inside the sandbox"
        );
    }

    /// Runs this very executable (a test or bench binary) inside the
    /// sandbox with `args`; there, [`inside`] says so.
    pub fn run_self_inside(&self, args: &[&str]) -> Output {
        self.command(std::env::current_exe().unwrap())
            .args(args)
            .env(INSIDE, self.dir())
            .stderr(Stdio::inherit())
            .output()
            .unwrap()
    }

    /// Starts the system bus and polkitd, which the sandbox does not start
    /// by itself: `systemctl` run by a user asks systemd over D-Bus, and
    /// systemd asks polkit.
    pub fn start_bus_and_polkit(&self) {
        self.run_ok(&[
            "rm",
            "/run/systemd/system.control/dbus.service",
            "/run/systemd/system.control/dbus.socket",
        ]);
        self.run_ok(&["systemctl", "daemon-reload"]);
        self.run_ok(&["systemctl", "start", "dbus.socket", "dbus.service"]);
        self.run_ok(&["systemctl", "start", "polkit.service"]);
    }

    /// Writes a unit into the sandbox's /run/systemd/system and reloads.
    pub fn install_unit(&self, name: &str, contents: &str) {
        fs::write(self.root().join("run/systemd/system").join(name), contents).unwrap();
        self.run_ok(&["systemctl", "daemon-reload"]);
    }

    /// The messages a unit (and systemd about it) logged so far.
    pub fn journal(&self, unit: &str) -> Vec<String> {
        let out = self.run_ok(&["journalctl", "--no-pager", "-o", "cat", "-u", unit]);
        out.lines().map(str::to_owned).collect()
    }

    /// Waits until the unit's journal has a line containing `text`; journald
    /// receives lines asynchronously, so reading once could race.
    pub fn wait_for_journal(&self, unit: &str, text: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.journal(unit);
            if lines.iter().any(|l| l.contains(text)) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{unit} did not log {text:?} within {timeout:?}; it logged {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The sandbox's root as seen from the host (its /run is private).
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.systemd))
    }

    fn wait_for_child_of(&mut self, launcher: u32) -> u32 {
        let children = format!("/proc/{launcher}/task/{launcher}/children");
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let list = fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = list.split_whitespace().next() {
                return pid.parse().unwrap();
            }
            if let Some(status) = self.launcher.as_mut().unwrap().try_wait().unwrap() {
                panic!("the sandbox did not start ({status}): {}", self.boot_log());
            }
            assert!(
                Instant::now() < deadline,
                "the sandbox did not start: {}",
                self.boot_log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_running(&mut self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let state = self.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return;
            }
            if let Some(status) = self.launcher.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "systemd exited while booting ({status}): {}",
                    self.boot_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "systemd is {state:?} after {BOOT_TIMEOUT:?}: {}",
                self.boot_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn boot_log(&self) -> String {
        let boot = self.dir.path().join("boot");
        let out = fs::read_to_string(boot.join("boot.log")).unwrap_or_default();
        let err = fs::read_to_string(boot.join("boot.err")).unwrap_or_default();
        format!("{out}{err}")
    }

    /// Kills the sandbox's PID 1 (the PID we started, never a name), which
    /// ends every process inside, then removes its cgroups.
    pub fn teardown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(mut launcher) = self.launcher.take() else {
            return;
        };
        // `unshare` exits once its child, the namespace's PID 1, is gone, and
        // PID 1's exit waits for every process of the namespace to end.
        let killed = self.systemd != 0
            && nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.systemd as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok();
        if !killed {
            let _ = launcher.kill();
        }
        let _ = launcher.wait();
        remove_cgroup(&self.cgroup);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    // A killed process leaves its cgroup a moment after it is reaped.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                eprintln!("could not remove the sandbox cgroup {}: {e}", dir.display());
                return;
            }
        }
    }
}

/// This process's own directory in the host's cgroup2 tree; each sandbox
/// gets a child of it, so its systemd sees only that subtree.
fn cgroup2_root() -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split(' ').next()? == "cgroup2").then(|| left.split(' ').nth(4).unwrap())
        })
        .expect("no cgroup2 file system is mounted; the sandbox needs one");
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    PathBuf::from(mount).join(own.trim_start_matches('/'))
}

/// Names the sandbox's directory for a test run by `run_test_inside`.
const INSIDE: &str = "OPSDECK_SANDBOX_DIR";

/// The sandbox's directory when this test runs inside one (started by
/// `run_test_inside`); `None` in an ordinary run.
pub fn inside() -> Option<PathBuf> {
    std::env::var_os(INSIDE).map(PathBuf::from)
}

/// Runs a command that must succeed (inside the sandbox: `systemctl` and
/// the like reach its systemd).
pub fn sh(argv: &[&str]) {
    let status = Command::new(argv[0]).args(&argv[1..]).status().unwrap();
    assert!(status.success(), "{argv:?}");
}

/// Root and systemd; installs systemd when missing. Outside CI a missing
/// prerequisite skips the test (None); under `CI=true` it fails it.
fn prerequisites() -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("the systemd sandbox needs root")
    } else if !Path::new(SYSTEMD).exists() && !install_systemd() {
        Some("systemd is not installed and `apt-get install -y systemd` failed")
    } else {
        None
    };
    match missing {
        None => true,
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => panic!("{reason}"),
        Some(reason) => {
            eprintln!("skipped: {reason}");
            false
        }
    }
}

fn install_systemd() -> bool {
    Command::new("apt-get")
        .args(["install", "-y", "systemd"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success())
        && Path::new(SYSTEMD).exists()
}
