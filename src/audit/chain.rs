//! How rows are chained.
//!
//! # The hash format (stable: exports are verified offline with it)
//!
//! `hash = lowercase_hex(SHA-256(prev_hash ‖ canonical))`, where `prev_hash` is
//! the previous row's `hash` as its 64 ASCII hex characters (the first row uses
//! [`GENESIS`], 64 zeros) and `canonical` is the UTF-8 JSON object of the row's
//! fields except `hash`, in exactly this key order, without whitespace:
//!
//! ```text
//! {"id":1,"at":1764748800000,"actor":"ben","role":"admin","action":"token.create",
//!  "app":"","detail":"{\"name\":\"ci\"}","outcome":"ok","job_id":null,"remote":"",
//!  "prev_hash":"0000…0000"}
//! ```
//!
//! - `id`, `at` (Unix milliseconds, UTC) and `job_id` are JSON integers,
//!   `job_id` is `null` when the row belongs to no job;
//! - every other field is a JSON string; `detail` is the stored JSON text of
//!   the details *as a string* (so no re-serialization can change it);
//! - strings are escaped minimally: `"` and `\` with a backslash, control
//!   characters U+0000–U+001F as `\b \f \n \r \t` or `\u00XX` (lowercase hex),
//!   everything else (`/` and U+007F included) as raw UTF-8 — what
//!   serde_json writes, and what Python's
//!   `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)` and
//!   JavaScript's `JSON.stringify` write for the same fields.
//!
//! An exported JSON Lines row carries these fields plus `hash`, so anyone can
//! recompute it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::Event;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit row, exactly as chained (and as exported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Record {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub app: String,
    pub detail: String,
    pub outcome: String,
    pub job_id: Option<i64>,
    pub remote: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The columns of a [`Record`], in chain order, for SELECTs.
pub const COLUMNS: &str =
    "id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash";

/// The fields a hash covers, in their fixed order (see the module docs).
#[derive(Serialize)]
struct Canonical<'a> {
    id: i64,
    at: i64,
    actor: &'a str,
    role: &'a str,
    action: &'a str,
    app: &'a str,
    detail: &'a str,
    outcome: &'a str,
    job_id: Option<i64>,
    remote: &'a str,
    prev_hash: &'a str,
}

/// The hash `r` should carry given its other fields (its own `prev_hash` included).
pub fn row_hash(r: &Record) -> String {
    let canonical = Canonical {
        id: r.id,
        at: r.at,
        actor: &r.actor,
        role: &r.role,
        action: &r.action,
        app: &r.app,
        detail: &r.detail,
        outcome: &r.outcome,
        job_id: r.job_id,
        remote: &r.remote,
        prev_hash: &r.prev_hash,
    };
    let mut hasher = Sha256::new();
    hasher.update(r.prev_hash.as_bytes());
    // Serializing plain strings and integers into memory cannot fail.
    serde_json::to_writer(&mut HashWriter(&mut hasher), &canonical)
        .unwrap_or_else(|e| unreachable!("canonical JSON of an audit row: {e}"));
    hex::encode(hasher.finalize())
}

/// Feeds serde_json's output straight into the hasher (no buffer).
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends `e` after the current last row in one short write transaction.
/// `BEGIN IMMEDIATE` takes SQLite's write lock before reading the last hash,
/// so writers in this process and in others (`opsdeck token create` while
/// `opsdeck serve` runs) are serialized and the chain never forks.
pub(super) async fn append(db: &SqlitePool, e: Event) -> crate::Result<Record> {
    let mut tx = db.begin_with("BEGIN IMMEDIATE").await?;
    let last: Option<(i64, String, i64)> =
        sqlx::query_as("SELECT id, hash, at FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let (last_id, prev_hash, last_at) = last.unwrap_or((0, GENESIS.to_string(), 0));
    let mut record = Record {
        id: last_id + 1,
        // Never before the previous row, even if the clock stepped back: the
        // log reads in order, and time filters can work on id ranges.
        at: chrono::Utc::now().timestamp_millis().max(last_at),
        actor: e.actor,
        role: e.role,
        action: e.action,
        app: e.app,
        detail: e.detail.to_string(),
        outcome: e.outcome.as_str().to_string(),
        job_id: e.job_id,
        remote: e.remote,
        prev_hash,
        hash: String::new(),
    };
    record.hash = row_hash(&record);
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.id)
    .bind(record.at)
    .bind(&record.actor)
    .bind(&record.role)
    .bind(&record.action)
    .bind(&record.app)
    .bind(&record.detail)
    .bind(&record.outcome)
    .bind(record.job_id)
    .bind(&record.remote)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(record)
}
