//! How a command reaches a host: the only place that spawns processes or
//! touches an app's files.
pub mod envfile;
pub mod exec;
pub mod git;
pub mod gitea;
pub mod preflight;
pub mod probe;
pub mod release_tree;
pub mod secret;
pub mod ssh;
pub mod survey;
pub mod systemd;

/// Names the point at which opsdeck kills itself (see [`crash_point`]).
pub const CRASH_AT: &str = "OPSDECK_CRASH_AT";

/// A test hook for crash safety: when `OPSDECK_CRASH_AT` names this point,
/// opsdeck sends itself SIGKILL right here, as a power cut or an OOM kill
/// would, so a test can stop it at exact points of a write instead of
/// racing a `kill -9` against it. Unset, it costs one environment lookup.
pub fn crash_point(name: &str) {
    if std::env::var_os(CRASH_AT).is_some_and(|at| at == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
