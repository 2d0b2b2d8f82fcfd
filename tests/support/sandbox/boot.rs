//! What the sandbox boots: the fence around systemd (a script run as PID 1
//! before systemd), the units masked because they would touch the host, the
//! target, and journald's settings.

/// Units that would touch the host (its /tmp, /dev, sysctls, kernel modules,
/// network interfaces, cgroup mounts, clocks, consoles) or that nothing here
/// needs. Masked before systemd starts. A template mask (`getty@.service`)
/// masks every instance.
pub(super) const MASKED: &[&str] = &[
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-clean.timer",
    "systemd-sysusers.service",
    "systemd-sysctl.service",
    "systemd-modules-load.service",
    "systemd-binfmt.service",
    "systemd-remount-fs.service",
    "systemd-journal-flush.service",
    "systemd-journald-audit.socket",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    "systemd-random-seed.service",
    "systemd-machine-id-commit.service",
    "systemd-firstboot.service",
    "systemd-hwdb-update.service",
    "ldconfig.service",
    "tmp.mount",
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "kmod-static-nodes.service",
    "modprobe@.service",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-pstore.service",
    "systemd-rfkill.service",
    "systemd-rfkill.socket",
    "systemd-backlight@.service",
    "systemd-fsck-root.service",
    "systemd-fsck@.service",
    "systemd-repart.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-boot-update.service",
    "systemd-logind.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
    "systemd-timesyncd.service",
    "getty.target",
    "getty-static.service",
    "getty@.service",
    "serial-getty@.service",
    "console-getty.service",
    "container-getty@.service",
    "dbus.service",
    "dbus.socket",
];

/// The only target booted: journald and whatever a test installs.
pub(super) const TARGET: &str = "[Unit]
Description=opsdeck test sandbox
Requires=systemd-journald.socket systemd-journald.service
After=systemd-journald.socket systemd-journald.service
";

/// journald volatile, nothing forwarded to the host, and no rate limit:
/// tests write bursts of tens of thousands of lines, and a unit's own
/// `LogRateLimitIntervalSec=` reaches journald through cgroup xattrs, which
/// this nested cgroup tree may not carry.
pub(super) const JOURNALD: &str = "[Journal]
Storage=volatile
ForwardToConsole=no
ForwardToKMsg=no
ForwardToWall=no
RateLimitIntervalSec=0
";

/// Runs as PID 1 of the new namespaces (mounts already private), fences the
/// host off, then becomes systemd. `$1` is the sandbox's own directory.
pub(super) const BOOT_SCRIPT: &str = r#"set -eu
dir="$1"
mount -t tmpfs -o mode=755,nosuid,nodev sandbox-run /run
mkdir /run/hostdev
mount --bind /dev /run/hostdev
mount -t tmpfs -o mode=755,nosuid sandbox-dev /dev
for node in null zero full random urandom tty; do
  touch "/dev/$node"
  mount --bind "/run/hostdev/$node" "/dev/$node"
done
umount /run/hostdev
rmdir /run/hostdev
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 sandbox-devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev sandbox-shm /dev/shm
ln -s /proc/self/fd /dev/fd
# Bind-remounts change only this namespace's mount, never the host's superblock.
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -o remount,bind,ro /sys
umount -l /sys/fs/cgroup
mount -t cgroup2 -o nosuid,nodev,noexec sandbox-cgroup /sys/fs/cgroup
mount --bind /etc /etc
mount -o remount,bind,ro /etc
mount -t tmpfs -o mode=755 sandbox-var-lib-systemd /var/lib/systemd
mkdir -p /run/systemd/system /run/systemd/system.control /run/systemd/journald.conf.d /run/sandbox-generators
cp "$dir/boot/sandbox.target" /run/systemd/system/
cp "$dir/boot/journald.conf" /run/systemd/journald.conf.d/sandbox.conf
while read -r unit; do ln -s /dev/null "/run/systemd/system.control/$unit"; done < "$dir/boot/masked"
export container=opsdeck-sandbox
export SYSTEMD_UNIT_PATH=/run/systemd/system.control:/run/systemd/system:/lib/systemd/system
export SYSTEMD_GENERATOR_PATH=/run/sandbox-generators
export SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/sandbox-generators
exec /lib/systemd/systemd --system --unit=sandbox.target --log-target=journal
"#;
