//! Shared test harness: a real opsdeck server (real SQLite in a temp dir,
//! real HTTP on a loopback port) and helpers to call it; a real systemd +
//! journald sandbox (`sandbox.rs`).
#![allow(dead_code)] // each test binary uses a different part of it

pub mod browser;
pub mod chatty;
pub mod cli;
pub mod deck;
pub mod gitea;
pub mod oidc;
pub mod package;
pub mod repos;
pub mod sandbox;
pub mod server;
pub mod sse;
pub mod sshd;
pub mod webapp;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
