//! The audit log (DESIGN.md "Audit"). Owned by the audit work; stub for now.

use sqlx::SqlitePool;

#[derive(Clone)]
pub struct Audit {
    db: SqlitePool,
}

impl Audit {
    pub fn new(db: SqlitePool) -> Audit {
        Audit { db }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.db
    }
}
