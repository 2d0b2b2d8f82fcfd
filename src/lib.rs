//! opsdeck: a self-hosted operations dashboard. `main.rs` is the CLI; this
//! crate builds the whole server (state + router) for it and for the tests.

pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod host;
pub mod jobs;
pub mod ops;
pub mod web;

use std::sync::Arc;

pub use error::{Error, Result};

/// Everything a request handler or a job needs, cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<config::Config>,
    pub db: sqlx::SqlitePool,
    pub audit: audit::Audit,
    pub jobs: jobs::Engine,
}

impl Context {
    /// Opens the database, starts the job engine (recovering what a previous
    /// run left behind) and records the config load in the audit log.
    pub async fn start(config: config::Config) -> anyhow::Result<Context> {
        let config = Arc::new(config);
        let db = db::open(&config.server.data_dir).await?;
        let audit = audit::Audit::new(db.clone());
        let jobs = jobs::Engine::start(config.clone(), db.clone(), audit.clone()).await?;
        Ok(Context {
            config,
            db,
            audit,
            jobs,
        })
    }
}
