//! Shared test harness: a real opsdeck server (real SQLite in a temp dir,
//! real HTTP on a loopback port) and helpers to call it; a real systemd +
//! journald sandbox (`sandbox.rs`).
#![allow(dead_code)] // each test binary uses a different part of it

pub mod account;
pub mod browser;
pub mod chatty;
pub mod cli;
pub mod deck;
pub mod gitea;
pub mod github;
pub mod history;
pub mod oidc;
pub mod package;
pub mod repos;
pub mod runbook;
pub mod sandbox;
pub mod server;
pub mod sse;
pub mod sshd;
pub mod steps;
pub mod store;
pub mod webapp;

/// A loopback port nobody listens on right now.
/// Writes `text` to `path`, readable by its owner only (0600), as a
/// secret or an app's env file is kept.
pub fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Python script in `dir` that appends its arguments (after itself) as
/// one JSON line to the file returned second: how a test sees the exact
/// argv a step ran with.
pub fn argv_recorder(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let script = dir.join("record-argv.py");
    let out = dir.join("argv.jsonl");
    std::fs::write(
        &script,
        format!(
            "import json, sys\nopen({:?}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n",
            out.display().to_string()
        ),
    )
    .unwrap();
    (script, out)
}

/// Each argv `argv_recorder`'s script was run with, in order.
pub fn recorded_argvs(out: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
