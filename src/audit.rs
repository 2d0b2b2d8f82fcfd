//! The audit log (DESIGN.md "Audit"): append-only, hash-chained.
//! The full chain, verify and export are being built; `record` is the
//! interface every other module uses.

use serde::Serialize;
use sqlx::SqlitePool;

use crate::auth::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }
}

/// One audit row before it is chained.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: String,
    pub role: String,
    pub action: String,
    pub app: String,
    pub detail: serde_json::Value,
    pub outcome: Outcome,
    pub job_id: Option<i64>,
    pub remote: String,
}

impl Event {
    /// `action` is dotted: `job.request`, `job.start`, `job.end`, `signin`,
    /// `token.create`, `config.load`, …
    pub fn new(actor: &Actor, action: &str, app: &str) -> Event {
        Event {
            actor: actor.login.clone(),
            role: actor.role.as_str().to_string(),
            action: action.to_string(),
            app: app.to_string(),
            detail: serde_json::json!({}),
            outcome: Outcome::Ok,
            job_id: None,
            remote: actor.remote.clone(),
        }
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Event {
        self.detail = detail;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Event {
        self.outcome = outcome;
        self
    }

    pub fn job(mut self, job_id: i64) -> Event {
        self.job_id = Some(job_id);
        self
    }
}

#[derive(Clone)]
pub struct Audit {
    db: SqlitePool,
}

impl Audit {
    pub fn new(db: SqlitePool) -> Audit {
        Audit { db }
    }

    /// Appends one row; returns its id. (Placeholder chain until the audit
    /// work lands: stores an empty hash.)
    pub async fn record(&self, e: Event) -> crate::Result<i64> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO audit_events (at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', '') RETURNING id",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(&e.actor)
        .bind(&e.role)
        .bind(&e.action)
        .bind(&e.app)
        .bind(e.detail.to_string())
        .bind(e.outcome.as_str())
        .bind(e.job_id)
        .bind(&e.remote)
        .fetch_one(&self.db)
        .await?;
        Ok(id)
    }
}
