//! opsdeck: a self-hosted operations dashboard. `main.rs` is the CLI; this
//! crate builds the whole server (state + router) for it and for the tests.

pub mod actor;
pub mod audit;
pub mod auth;
pub mod config;
pub mod context;
pub mod db;
pub mod demo;
pub mod error;
pub mod host;
pub mod insights;
pub mod jobs;
pub mod logs;
pub mod notify;
pub mod ops;
pub mod releases;
pub mod server;
pub mod steps;
pub mod web;

pub use context::Context;
pub use error::{Error, Result};
