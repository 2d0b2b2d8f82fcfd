//! The audit log (DESIGN.md "Audit"): append-only and hash-chained.
//!
//! Every row links to the one before it (`chain`), SQLite triggers refuse
//! UPDATE and DELETE, `verify` recomputes the chain and `export` writes it out
//! with every chain field so a copy can be verified offline. Each row is also
//! logged as a tracing event with target `audit` and, with `[audit] journal
//! = true`, sent to journald with structured fields (`journal.rs`).
//!
//! What a caller can put into a row (an error text Gitea relays, a name in
//! a URL, a login) is clipped to [`MAX_TEXT`] characters when the row is
//! written, whoever writes it; refusals go through [`Audit::refused`], which
//! bounds how many rows one client can cause (`refusals.rs`).

mod chain;
mod export;
mod filter;
mod journal;
mod refusals;
mod verify;
mod watch;

pub use chain::{Along, GENESIS, Record, row_hash};
pub use export::{Format, export, format_time};
pub use filter::{Filter, FilterInput, get, page};
pub use refusals::{PER_ACTION as REFUSALS_PER_ACTION, PER_ADDRESS as REFUSALS_PER_ADDRESS};
pub use verify::{Problem, Verified, VerifyError, verify, verify_file, verify_from};
pub use watch::ChainStatus;

use serde::Serialize;
use sqlx::SqlitePool;

use crate::actor::Actor;
use crate::error::clip;

/// Longest text an audit row keeps of any string it carries: the actor,
/// the app, the address and every string in `detail`.
pub const MAX_TEXT: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
    /// A job someone cancelled (migration 0080; older rows say `failed`).
    Cancelled,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Denied,
        Outcome::Failed,
        Outcome::Cancelled,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
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

    /// A row for a request nobody signed in made (a refused token, a failed
    /// sign-in): actor `anonymous`, no role.
    pub fn anonymous(action: &str, app: &str, remote: &str) -> Event {
        Event {
            actor: "anonymous".into(),
            role: String::new(),
            remote: remote.to_string(),
            ..Event::new(&Actor::system(""), action, app)
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

    /// The row as it is stored: every string clipped to [`MAX_TEXT`].
    fn clipped(mut self) -> Event {
        for text in [
            &mut self.actor,
            &mut self.role,
            &mut self.action,
            &mut self.app,
            &mut self.remote,
        ] {
            clip_in_place(text);
        }
        clip_json(&mut self.detail);
        self
    }
}

fn clip_in_place(text: &mut String) {
    if let std::borrow::Cow::Owned(clipped) = clip(text, MAX_TEXT) {
        *text = clipped;
    }
}

fn clip_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => clip_in_place(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(clip_json),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(clip_json),
        _ => {}
    }
}

#[derive(Clone)]
pub struct Audit {
    db: SqlitePool,
    watch: watch::Watch,
    /// `[audit] journal`: also send every row to journald.
    to_journal: bool,
    refusals: refusals::Refusals,
}

impl Audit {
    pub fn new(db: SqlitePool, config: &crate::config::AuditLog) -> Audit {
        Audit {
            db,
            watch: watch::Watch::default(),
            to_journal: config.journal,
            refusals: refusals::Refusals::new(),
        }
    }

    /// Records a refused request (outcome `denied`) within the refusal
    /// allowance of its client address and action; past it the refusal is
    /// counted, and the count written as one `audit.suppressed` row once
    /// the allowance refills (see `refusals.rs`).
    pub async fn refused(&self, event: Event) -> crate::Result<()> {
        let event = event.outcome(Outcome::Denied);
        match self.refusals.judge(&event.remote, &event.action) {
            refusals::Verdict::Write => self.record(event).await.map(drop),
            refusals::Verdict::Held {
                key,
                summary_after: Some(after),
            } => {
                self.summarize_after(key, after);
                Ok(())
            }
            refusals::Verdict::Held { .. } => Ok(()),
        }
    }

    /// Writes the `audit.suppressed` row of `key` after `after`.
    fn summarize_after(&self, key: refusals::Key, after: std::time::Duration) {
        let audit = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let count = match audit.refusals.summary(&key) {
                refusals::Summary::Write(count) => count,
                refusals::Summary::Folded(Some((all, after))) => {
                    return audit.summarize_after(all, after);
                }
                refusals::Summary::Folded(None) | refusals::Summary::Nothing => return,
            };
            let (remote, action) = key;
            let event = Event::new(&Actor::system("system:opsdeck"), "audit.suppressed", "")
                .outcome(Outcome::Denied)
                .detail(serde_json::json!({
                    "action": action,
                    "remote": remote,
                    "suppressed": count,
                    "why": "more refusals than the audit log takes from one address (or all) per minute; counted here instead of one row each",
                }));
            if let Err(e) = audit.record(event).await {
                tracing::error!(
                    action,
                    remote,
                    count,
                    "cannot write the count of refusals held back from the audit log: {e}"
                );
            }
        });
    }

    /// Appends one row to the chain and returns its id. An error here must
    /// fail the operation being recorded: nothing happens unaudited.
    ///
    /// The write runs on its own task so that a caller who gives up (a
    /// client that disconnects) cannot leave the chain half-written.
    pub async fn record(&self, e: Event) -> crate::Result<i64> {
        self.write(e, None).await
    }

    /// `record`, with the change the row records (`along`) written in the
    /// same transaction: nobody sees the change without its row, and a
    /// crash keeps both or neither. A job's end is one: a client that sees
    /// "succeeded" finds its `job.end` row already in the log.
    pub async fn record_with(&self, e: Event, along: chain::Along) -> crate::Result<i64> {
        self.write(e, Some(along)).await
    }

    async fn write(&self, e: Event, along: Option<chain::Along>) -> crate::Result<i64> {
        let e = e.clipped();
        let db = self.db.clone();
        let record = tokio::spawn(async move { chain::append(&db, e, along).await })
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
