//! The audit log (DESIGN.md "Audit"): append-only and hash-chained.
//!
//! Every row links to the one before it (`chain`), SQLite triggers refuse
//! UPDATE and DELETE, `verify` recomputes the chain and `export` writes it out
//! with every chain field so a copy can be verified offline. Each row is also
//! logged as a tracing event with target `audit` and, with `[audit] journal
//! = true`, sent to journald with structured fields (`journal.rs`).

mod chain;
mod export;
mod filter;
mod journal;
mod verify;
mod watch;

pub use chain::{GENESIS, Record, row_hash};
pub use export::{Format, export, format_time};
pub use filter::{Filter, FilterInput, get, page};
pub use verify::{Problem, Verified, VerifyError, verify, verify_file, verify_from};
pub use watch::ChainStatus;

use serde::Serialize;
use sqlx::SqlitePool;

use crate::actor::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Denied,
        Outcome::Failed,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
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
    watch: watch::Watch,
    /// `[audit] journal`: also send every row to journald.
    to_journal: bool,
}

impl Audit {
    pub fn new(db: SqlitePool, config: &crate::config::AuditLog) -> Audit {
        Audit {
            db,
            watch: watch::Watch::default(),
            to_journal: config.journal,
        }
    }

    /// Appends one row to the chain and returns its id. An error here must
    /// fail the operation being recorded: nothing happens unaudited.
    ///
    /// The write runs on its own task so that a caller who gives up (a
    /// client that disconnects) cannot leave the chain half-written.
    pub async fn record(&self, e: Event) -> crate::Result<i64> {
        let db = self.db.clone();
        let record = tokio::spawn(async move { chain::append(&db, e).await })
            .await
            .map_err(|e| anyhow::anyhow!("the audit writer stopped: {e}"))??;
        self.watch.written();
        tracing::info!(
            target: "audit",
            audit_id = record.id,
            at = record.at,
            actor = %record.actor,
            role = %record.role,
            action = %record.action,
            app = %record.app,
            detail = %record.detail,
            outcome = %record.outcome,
            job_id = record.job_id,
            remote = %record.remote,
            hash = %record.hash,
            "{} {} {}", record.actor, record.action, record.outcome
        );
        if self.to_journal {
            // The row is stored and chained already; a journal that is
            // down must not undo the operation, but it must not go unnoticed.
            if let Err(e) = journal::forward(&record).await {
                tracing::warn!(
                    "cannot send audit row #{} to the journal ({e}); it is stored in the database",
                    record.id
                );
            }
        }
        Ok(record.id)
    }
}
