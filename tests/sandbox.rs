//! The systemd sandbox itself: it boots a real systemd that runs only
//! journald and the units a test installs, and leaves the host as it found it.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::sandbox::Sandbox;

/// What a badly fenced boot changed on this kind of machine before: mounts
/// (cgroup remounted read-only), interface names (udev), /dev modes and
/// links, /tmp contents (tmpfiles), sysctls, hostname, machine id.
#[derive(Debug, PartialEq)]
struct HostState {
    mounts: Vec<String>,
    links: Vec<String>,
    dev: Vec<String>,
    hostname: String,
    nr_open: String,
    machine_id: String,
}

fn host_state() -> HostState {
    // Mount point, options, type, source and super options; without mount ids.
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').skip(3).collect::<Vec<_>>().join(" "))
        .collect();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_owned))
        .collect();
    let mut dev: Vec<String> = fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            use std::os::unix::fs::MetadataExt;
            format!("{:?} {:o} {}", e.file_name(), meta.mode(), meta.uid())
        })
        .collect();
    dev.sort();
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    HostState {
        mounts,
        links,
        dev,
        hostname: read("/proc/sys/kernel/hostname"),
        nr_open: read("/proc/sys/fs/nr_open"),
        machine_id: read("/etc/machine-id"),
    }
}

#[test]
fn boot_and_teardown_leave_the_host_unchanged() {
    let marker = tempfile::NamedTempFile::new().unwrap();
    let before = host_state();

    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    let cgroup_dirs_inside = sandbox.run_ok(&["ls", "/sys/fs/cgroup"]);
    assert!(cgroup_dirs_inside.contains("init.scope"));
    // The host keeps a writable cgroup tree while the sandbox runs.
    assert_eq!(host_state().mounts, before.mounts);
    let cgroup = sandbox.cgroup().to_owned();
    assert!(cgroup.join("init.scope").exists());
    sandbox.teardown();

    assert_eq!(host_state(), before);
    assert!(marker.path().exists(), "the host's /tmp lost a file");
    assert!(!cgroup.exists(), "cgroup left behind: {}", cgroup.display());
}

#[test]
fn only_journald_runs_until_a_test_installs_a_unit() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    assert_eq!(sandbox.systemctl(&["is-system-running"]).trim(), "running");
    let services = sandbox.systemctl(&[
        "list-units",
        "--type=service",
        "--state=active",
        "--no-legend",
        "--plain",
    ]);
    let services: Vec<&str> = services
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(services, ["systemd-journald.service"]);
    for unit in [
        "systemd-tmpfiles-setup.service",
        "systemd-udevd.service",
        "sys-kernel-debug.mount",
        "getty@tty1.service",
    ] {
        let state = sandbox.systemctl(&["show", "-P", "LoadState", unit]);
        assert_eq!(state.trim(), "masked", "{unit}");
    }

    let script = sandbox.dir().join("hello.sh");
    fs::write(
        &script,
        "echo hello from the sandbox; exec sleep infinity\n",
    )
    .unwrap();
    sandbox.install_unit(
        "hello.service",
        &format!("[Service]\nExecStart=/bin/sh {}\n", script.display()),
    );
    sandbox.run_ok(&["systemctl", "start", "hello.service"]);
    assert_eq!(
        sandbox.systemctl(&["is-active", "hello.service"]).trim(),
        "active"
    );
    sandbox.wait_for_journal(
        "hello.service",
        "hello from the sandbox",
        Duration::from_secs(10),
    );
}

#[test]
fn dropping_the_sandbox_ends_everything_inside() {
    let Some(sandbox) = Sandbox::boot() else {
        return;
    };
    sandbox.install_unit(
        "sleeper.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    sandbox.run_ok(&["systemctl", "start", "sleeper.service"]);
    let pid = sandbox.pid();
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let mut inside: Vec<String> = children.split_whitespace().map(str::to_owned).collect();
    assert_eq!(inside.len(), 2, "journald and sleep: {inside:?}");
    inside.push(pid.to_string());
    drop(sandbox);
    for pid in inside {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the teardown"
        );
    }
}
