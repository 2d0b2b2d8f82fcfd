//! What `/proc` tells about this machine's processes: the leftovers of
//! jobs a crashed run left behind (found by their tag), a process's group
//! and start time (so a recorded step group is known to be still that
//! group), and the boot it belongs to. Split from `exec.rs`, which starts
//! and streams processes; these only look at them (and kill leftovers).

use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_group_and_start() {
        let (pgid, started) = group_and_start(std::process::id()).unwrap();
        assert_eq!(pgid, nix::unistd::getpgrp().as_raw() as u32);
        assert!(started > 0);
        assert_eq!(group_and_start(u32::MAX), None);
    }
}
