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

use std::borrow::Cow;

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

macro_rules! chained_columns {
    () => {
        "id, at, actor, role, action, app, detail, outcome, job_id, remote, prev_hash"
    };
}

/// The columns a hash covers, in chain order ([`Canonical`]'s fields).
pub const CHAINED: &str = chained_columns!();
/// The columns of a [`Record`], in chain order, for SELECTs.
pub const COLUMNS: &str = concat!(chained_columns!(), ", hash");

/// The fields a hash covers, in their fixed order (see the module docs),
/// borrowed from wherever the row is: a [`Record`], or a page being
/// verified (where only strings with escapes are copied).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Canonical<'a> {
    pub id: i64,
    pub at: i64,
    #[serde(borrow)]
    pub actor: Cow<'a, str>,
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    #[serde(borrow)]
    pub app: Cow<'a, str>,
    #[serde(borrow)]
    pub detail: Cow<'a, str>,
    #[serde(borrow)]
    pub outcome: Cow<'a, str>,
    pub job_id: Option<i64>,
    #[serde(borrow)]
    pub remote: Cow<'a, str>,
    #[serde(borrow)]
    pub prev_hash: Cow<'a, str>,
}

impl Canonical<'_> {
    /// The hash a row with these fields should carry.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        // Serializing plain strings and integers into memory cannot fail.
        serde_json::to_writer(&mut HashWriter(&mut hasher), self)
            .unwrap_or_else(|e| unreachable!("canonical JSON of an audit row: {e}"));
        hex::encode(hasher.finalize())
    }
}

impl Record {
    pub(super) fn canonical(&self) -> Canonical<'_> {
        Canonical {
            id: self.id,
            at: self.at,
            actor: Cow::Borrowed(&self.actor),
            role: Cow::Borrowed(&self.role),
            action: Cow::Borrowed(&self.action),
            app: Cow::Borrowed(&self.app),
            detail: Cow::Borrowed(&self.detail),
            outcome: Cow::Borrowed(&self.outcome),
            job_id: self.job_id,
            remote: Cow::Borrowed(&self.remote),
            prev_hash: Cow::Borrowed(&self.prev_hash),
        }
    }
}

/// The hash `r` should carry given its other fields (its own `prev_hash` included).
pub fn row_hash(r: &Record) -> String {
    r.canonical().hash()
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

/// What else a row's transaction writes: the change the row records, so
/// the two commit together (see `Audit::record_with`).
pub type Along = Box<
    dyn for<'c> FnOnce(
            &'c mut sqlx::SqliteConnection,
        ) -> futures_util::future::BoxFuture<'c, crate::Result<()>>
        + Send,
>;

/// Appends `e` after the current last row in one short write transaction
/// (with `along`, the change it records, written first in the same one).
/// `BEGIN IMMEDIATE` takes SQLite's write lock before reading the last hash,
/// so writers in this process and in others (`opsdeck token create` while
/// `opsdeck serve` runs) are serialized and the chain never forks.
pub(super) async fn append(
    db: &SqlitePool,
    e: Event,
    along: Option<Along>,
) -> crate::Result<Record> {
    let mut tx = db.begin_with("BEGIN IMMEDIATE").await?;
    if let Some(along) = along {
        along(&mut tx).await?;
    }
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
