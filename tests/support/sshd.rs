//! A real OpenSSH server (Debian's `openssh-server`) on a loopback port of
//! the test's own, with its own host key and one authorized client key, so
//! opsdeck's SSH transport is tested against the real thing.
//!
//! Use: `let Some(sshd) = Sshd::start() else { return };` (None = skipped
//! because sshd is missing; under `CI=true` that is a failure). Dropping it
//! stops the server and every session it started.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and sshd is missing: apt-get install openssh-server"
            );
            eprintln!("skipped: {SSHD} is missing");
            return None;
        }
        // sshd's privilege separation directory, as its package makes it.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::Builder::new()
            .prefix("opsdeck-sshd-")
            .tempdir()
            .unwrap();
        let path = dir.path();
        keygen(&path.join("host_key"));
        keygen(&path.join("client_key"));
        std::fs::copy(path.join("client_key.pub"), path.join("authorized_keys")).unwrap();
        let port = free_port();
        let user = whoami();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
             AuthorizedKeysFile {keys}\nPidFile none\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nLogLevel ERROR\n\
             MaxSessions 100\nMaxStartups 100\n",
            host_key = path.join("host_key").display(),
            keys = path.join("authorized_keys").display(),
        );
        std::fs::write(path.join("sshd_config"), config).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(path.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its log (the readiness probe below makes it complain) stays
            // in its directory instead of the test's output.
            .stderr(std::fs::File::create(path.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let sshd = Sshd { child, port, dir };
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                sshd.write_known_hosts(&sshd.known_hosts(), &sshd.dir.path().join("host_key.pub"));
                return Some(sshd);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("sshd did not listen on port {port}");
    }

    /// The key opsdeck signs in with.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file holding the server's real key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// A known_hosts file that names this server with `key_pub`'s key.
    pub fn write_known_hosts(&self, file: &Path, key_pub: &Path) {
        let key = std::fs::read_to_string(key_pub).unwrap();
        let mut words = key.split_whitespace();
        let (kind, blob) = (words.next().unwrap(), words.next().unwrap());
        std::fs::write(file, format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)).unwrap();
    }

    /// A fresh key pair in the server's directory (for a "changed" host key).
    pub fn other_key(&self, name: &str) -> PathBuf {
        let key = self.dir.path().join(name);
        keygen(&key);
        key.with_extension("pub")
    }

    /// `[hosts.remote]` for opsdeck's config, with this server's key files.
    pub fn hosts_toml(&self, known_hosts: &Path) -> String {
        format!(
            "[hosts.remote]\naddress = \"ssh://{}@127.0.0.1:{}\"\nidentity_file = {:?}\nknown_hosts = {:?}\n",
            whoami(),
            self.port,
            self.client_key().display().to_string(),
            known_hosts.display().to_string()
        )
    }

    /// Drops every open connection, as a network failure would: kills the
    /// server's per-connection processes, keeps the listener.
    pub fn drop_connections(&self) -> usize {
        let listener = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{listener}/task/{listener}/children"))
                .unwrap_or_default();
        let pids: Vec<i32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        pids.len()
    }

    /// How many connections the server has open now.
    pub fn connections(&self) -> usize {
        let listener = self.child.id();
        std::fs::read_to_string(format!("/proc/{listener}/task/{listener}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.drop_connections();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "opsdeck-test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

pub fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name
}
