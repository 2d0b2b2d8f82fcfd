//! How a command reaches a host: the only place that spawns processes or
//! touches an app's files.
pub mod envfile;
pub mod exec;
pub mod git;
pub mod gitea;
pub mod preflight;
pub mod probe;
pub mod secret;
pub mod ssh;
pub mod survey;
pub mod systemd;
