//! The job engine (DESIGN.md "Jobs"). Stub for now.

use std::sync::Arc;

use sqlx::SqlitePool;

use crate::audit::Audit;
use crate::config::Config;

#[derive(Clone)]
pub struct Engine {
    #[allow(dead_code)]
    inner: Arc<(Arc<Config>, SqlitePool, Audit)>,
}

impl Engine {
    pub async fn start(config: Arc<Config>, db: SqlitePool, audit: Audit) -> anyhow::Result<Engine> {
        Ok(Engine {
            inner: Arc::new((config, db, audit)),
        })
    }
}
